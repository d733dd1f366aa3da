// How `mesh get secret` shows a Secret without its key material: a table of
// type, keys and the certificate's subject and expiry; `-o yaml|json` in
// Kubernetes' shape with every `data` value replaced by its size (the
// replacement is not base64, so applying such output back fails validation
// instead of storing a broken credential).

import type { ConfigObject, SecretSpec } from '../api/index.ts';
import { credentialMaterial, kubernetesForm, parseCertificateChain, secretKind } from '../api/index.ts';

/** The Secret as Kubernetes writes it, values redacted. */
export function redactedSecret(obj: ConfigObject): ConfigObject {
  const spec = obj.spec as SecretSpec;
  const data = Object.fromEntries(Object.entries(spec.data ?? {}).map(([k, v]) => [k, `<redacted: ${Math.floor((v.length * 3) / 4) - (v.endsWith('==') ? 2 : v.endsWith('=') ? 1 : 0)} bytes>`]));
  return kubernetesForm({ ...obj, spec: { ...spec, data } }, secretKind) as unknown as ConfigObject;
}

function certificateSummary(spec: SecretSpec): { subject: string; notAfter: string } {
  const { certChain, caCert } = credentialMaterial(spec);
  const pem = certChain ?? caCert;
  if (!pem) return { subject: '<none>', notAfter: '<none>' };
  try {
    const leaf = parseCertificateChain(pem)[0]!;
    return { subject: leaf.subject.replace(/\n/g, ','), notAfter: new Date(leaf.validTo).toISOString() };
  } catch {
    return { subject: '<unreadable>', notAfter: '<unreadable>' };
  }
}

/** NAMESPACE NAME TYPE DATA SUBJECT NOT-AFTER, one row per Secret. */
export function formatSecretTable(objects: readonly ConfigObject[]): string {
  if (objects.length === 0) return '';
  const header = ['NAMESPACE', 'NAME', 'TYPE', 'DATA', 'SUBJECT', 'NOT AFTER'];
  const rows = objects.map((o) => {
    const spec = o.spec as SecretSpec;
    const summary = certificateSummary(spec);
    return [o.metadata.namespace ?? '', o.metadata.name, spec.type, Object.keys(spec.data ?? {}).sort().join(','), summary.subject, summary.notAfter];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('');
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}
