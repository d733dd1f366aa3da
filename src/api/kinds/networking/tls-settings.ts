// TLS settings: ClientTLSSettings (DestinationRule, upstream side) and
// ServerTLSSettings (Gateway servers and Sidecar ingress, downstream side),
// with Istio's rules about which certificate fields each mode needs.

import type { Diagnostics, FieldPath } from '../../diagnostics.ts';
import { boolValue, strict, z } from '../../schema.ts';

export const clientTlsSettings = strict({
  mode: z.enum(['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL']).optional(),
  clientCertificate: z.string().optional(),
  privateKey: z.string().optional(),
  caCertificates: z.string().optional(),
  credentialName: z.string().optional(),
  subjectAltNames: z.array(z.string()).optional(),
  sni: z.string().optional(),
  insecureSkipVerify: boolValue.optional(),
  caCrl: z.string().optional(),
});
export type ClientTlsSettings = z.infer<typeof clientTlsSettings>;

const TLS_VERSIONS = ['TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3'] as const;

export const serverTlsSettings = strict({
  httpsRedirect: z.boolean().optional(),
  mode: z.enum(['PASSTHROUGH', 'SIMPLE', 'MUTUAL', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL', 'OPTIONAL_MUTUAL']).optional(),
  serverCertificate: z.string().optional(),
  privateKey: z.string().optional(),
  caCertificates: z.string().optional(),
  caCrl: z.string().optional(),
  credentialName: z.string().optional(),
  credentialNames: z.array(z.string()).optional(),
  tlsCertificates: z.array(strict({
    serverCertificate: z.string().optional(),
    privateKey: z.string().optional(),
    caCertificates: z.string().optional(),
  })).optional(),
  subjectAltNames: z.array(z.string()).optional(),
  verifyCertificateSpki: z.array(z.string()).optional(),
  verifyCertificateHash: z.array(z.string()).optional(),
  minProtocolVersion: z.enum(TLS_VERSIONS).optional(),
  maxProtocolVersion: z.enum(TLS_VERSIONS).optional(),
  cipherSuites: z.array(z.string()).optional(),
});
export type ServerTlsSettings = z.infer<typeof serverTlsSettings>;

/** validateTLS of a DestinationRule: what each client mode needs and forbids. */
export function checkClientTls(diag: Diagnostics, path: FieldPath, tls: ClientTlsSettings | undefined): void {
  if (!tls) return;
  const mode = tls.mode ?? 'DISABLE';
  if (tls.insecureSkipVerify && (tls.caCertificates || (tls.subjectAltNames?.length ?? 0) > 0)) {
    diag.error(path, 'cannot set caCertificates or subjectAltNames when insecureSkipVerify is true');
  }
  if (mode === 'ISTIO_MUTUAL') {
    // The mesh supplies the workload certificate; user files would be ignored silently.
    for (const field of ['clientCertificate', 'privateKey', 'caCertificates', 'credentialName'] as const) {
      if (tls[field]) diag.error(path.key(field), `${field} cannot be set when mode is ISTIO_MUTUAL: the mesh provides the certificates`);
    }
    return;
  }
  if ((mode === 'SIMPLE' || mode === 'MUTUAL') && tls.credentialName) {
    for (const field of ['clientCertificate', 'privateKey', 'caCertificates', 'caCrl'] as const) {
      if (tls[field]) diag.error(path.key(field), `${field} cannot be set together with credentialName: the credential supplies the certificates`);
    }
    return;
  }
  if (mode === 'MUTUAL') {
    if (!tls.clientCertificate) diag.error(path.key('clientCertificate'), 'client certificate required for mutual tls (or set credentialName)');
    if (!tls.privateKey) diag.error(path.key('privateKey'), 'private key required for mutual tls (or set credentialName)');
  }
}

const TLS_VERSION_ORDER: readonly string[] = TLS_VERSIONS;

/**
 * validateTLSOptions of a server: ISTIO_MUTUAL takes no certificates,
 * passthrough modes ignore them (warned), SIMPLE/MUTUAL need a certificate and
 * key unless a credential names them, MUTUAL also a client CA bundle.
 */
export function checkServerTls(diag: Diagnostics, path: FieldPath, tls: ServerTlsSettings | undefined): void {
  if (!tls) return;
  const mode = tls.mode ?? 'PASSTHROUGH';
  const hasCredential = Boolean(tls.credentialName) || (tls.credentialNames?.length ?? 0) > 0;
  if (tls.credentialName && (tls.credentialNames?.length ?? 0) > 0) {
    diag.error(path, 'only one of credentialName or credentialNames may be set');
  }
  if ((tls.credentialNames?.length ?? 0) > 2) diag.error(path.key('credentialNames'), 'credentialNames takes at most 2 entries (one RSA and one ECDSA certificate)');
  if (mode === 'ISTIO_MUTUAL') {
    if (tls.serverCertificate) diag.error(path.key('serverCertificate'), 'ISTIO_MUTUAL TLS cannot have an associated server certificate');
    if (tls.privateKey) diag.error(path.key('privateKey'), 'ISTIO_MUTUAL TLS cannot have an associated private key');
    if (tls.caCertificates) diag.error(path.key('caCertificates'), 'ISTIO_MUTUAL TLS cannot have an associated CA bundle');
    if (hasCredential) diag.error(path.key('credentialName'), 'ISTIO_MUTUAL TLS cannot have an associated credentialName');
    return;
  }
  if (mode === 'PASSTHROUGH' || mode === 'AUTO_PASSTHROUGH') {
    if (tls.serverCertificate || tls.privateKey || tls.caCertificates || tls.caCrl || hasCredential) {
      diag.warn(path, `${mode} mode does not use certificates, they will be ignored`);
    }
  }
  checkProtocolVersions(diag, path, tls);
  if ((mode === 'SIMPLE' || mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL') && !hasCredential) {
    const label = mode === 'SIMPLE' ? 'SIMPLE' : mode;
    const fromList = (tls.tlsCertificates?.length ?? 0) > 0;
    if (!fromList) {
      if (!tls.serverCertificate) diag.error(path.key('serverCertificate'), `${label} TLS requires a server certificate (or credentialName)`);
      if (!tls.privateKey) diag.error(path.key('privateKey'), `${label} TLS requires a private key (or credentialName)`);
    }
    if (mode !== 'SIMPLE' && !tls.caCertificates) diag.error(path.key('caCertificates'), `${label} TLS requires a client CA bundle in caCertificates (or credentialName)`);
  }
}

function checkProtocolVersions(diag: Diagnostics, path: FieldPath, tls: ServerTlsSettings): void {
  const min = tls.minProtocolVersion;
  const max = tls.maxProtocolVersion;
  if (!min || !max || min === 'TLS_AUTO' || max === 'TLS_AUTO') return;
  if (TLS_VERSION_ORDER.indexOf(max) < TLS_VERSION_ORDER.indexOf(min)) {
    diag.error(path.key('maxProtocolVersion'), `maxProtocolVersion ${max} must not be lower than minProtocolVersion ${min}`);
  }
}
