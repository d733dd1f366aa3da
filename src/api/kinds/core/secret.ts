// Kubernetes `v1 Secret` as a TLS credential for gateways (Istio's
// `credentialName`). Only the shapes Istio reads are accepted: type
// `kubernetes.io/tls` (`tls.crt`, `tls.key`, optional `ca.crt`) and `Opaque`
// with the same keys or the generic ones (`cert`, `key`, `cacert`). Other
// secret types, and Opaque secrets without any of these keys, are passed over
// like every other Kubernetes kind.
//
// Secrets carry their content beside `metadata` (`type`, `data`,
// `stringData`), not under `spec`; the store keeps the normalized content in
// the spec slot: `{ type, data }` with `stringData` folded into base64 `data`,
// as the Kubernetes API server does. Messages never quote a value: they name
// the object and the key only.

import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { KindDefinition, ValidationContext } from '../../kind-registry.ts';
import { strict, stringMap, z } from '../../schema.ts';

export const SECRET_TYPE_TLS = 'kubernetes.io/tls';
export const SECRET_TYPE_OPAQUE = 'Opaque';

/** Where Istio finds each part of a credential, in its order of preference (generic keys first). */
export const CREDENTIAL_KEYS = {
  cert: ['cert', 'tls.crt'],
  key: ['key', 'tls.key'],
  ca: ['cacert', 'ca.crt'],
} as const;
const ALL_CREDENTIAL_KEYS: readonly string[] = [...CREDENTIAL_KEYS.cert, ...CREDENTIAL_KEYS.key, ...CREDENTIAL_KEYS.ca];

/** Kubernetes refuses Secrets over 1 MiB; so does the mesh. */
export const MAX_SECRET_BYTES = 1024 * 1024;
/** Certificates in one chain or CA bundle: more is a mistake, and each costs a parse. */
export const MAX_CERTIFICATES = 64;

const KEY_NAME = /^[-._a-zA-Z0-9]+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export const secretSpec = strict({
  type: z.string().optional(),
  data: stringMap.optional(),
  stringData: stringMap.optional(),
  immutable: z.boolean().optional(),
});
export type SecretInput = z.infer<typeof secretSpec>;

/** How a Secret is stored: every value base64 in `data`. */
export interface SecretSpec {
  readonly type: string;
  readonly data: Readonly<Record<string, string>>;
  readonly immutable?: boolean;
}

/** The decoded parts of a credential; each is PEM text. */
export interface CredentialMaterial {
  readonly certChain?: string;
  readonly privateKey?: string;
  readonly caCert?: string;
}

/** The content of a Secret, decoded: stringData wins over data for the same key, as in Kubernetes. */
function decodedContent(spec: SecretInput): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [k, v] of Object.entries(spec.data ?? {})) if (BASE64.test(v)) out.set(k, Buffer.from(v, 'base64'));
  for (const [k, v] of Object.entries(spec.stringData ?? {})) out.set(k, Buffer.from(v, 'utf8'));
  return out;
}

/** The first present, non-empty key of `keys`. */
function pick(content: ReadonlyMap<string, Buffer>, keys: readonly string[]): [string, Buffer] | undefined {
  for (const k of keys) {
    const v = content.get(k);
    if (v && v.length > 0) return [k, v];
  }
  return undefined;
}

/** The PEM blocks of type CERTIFICATE, parsed; throws with a message that quotes nothing. */
export function parseCertificateChain(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error('no PEM "CERTIFICATE" block');
  if (blocks.length > MAX_CERTIFICATES) throw new Error(`${blocks.length} certificates; at most ${MAX_CERTIFICATES}`);
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch {
      throw new Error(`certificate ${i + 1} of ${blocks.length} does not parse`);
    }
  });
}

function validateSecret(spec: SecretInput, ctx: ValidationContext): void {
  const { diag, path } = ctx;
  const type = spec.type ?? SECRET_TYPE_OPAQUE;
  let size = 0;
  for (const field of ['data', 'stringData'] as const) {
    for (const [k, v] of Object.entries(spec[field] ?? {})) {
      const p = path.key(field).key(k);
      if (!KEY_NAME.test(k) || k.length > 253) diag.error(p, 'a key must consist of alphanumerics, "-", "_" or "." (at most 253)');
      if (field === 'data' && !BASE64.test(v)) diag.error(p, 'is not valid base64');
      size += field === 'data' ? Math.floor((v.length * 3) / 4) : Buffer.byteLength(v);
    }
  }
  if (size > MAX_SECRET_BYTES) diag.error(path.key('data'), `the Secret holds about ${size} bytes; at most ${MAX_SECRET_BYTES} (1 MiB)`);
  if (diag.hasErrors) return;

  const content = decodedContent(spec);
  const where = (key: string): string => (spec.stringData?.[key] !== undefined ? path.key('stringData').key(key).text : path.key('data').key(key).text);
  if (type === SECRET_TYPE_TLS) {
    for (const k of ['tls.crt', 'tls.key']) if (!content.has(k)) diag.error(path.key('data').key(k), `a ${SECRET_TYPE_TLS} Secret needs "${k}"`);
  }
  const cert = pick(content, CREDENTIAL_KEYS.cert);
  const key = pick(content, CREDENTIAL_KEYS.key);
  if (cert && !key) diag.error(path.key('data'), `"${cert[0]}" has no private key beside it ("${cert[0] === 'cert' ? 'key' : 'tls.key'}")`);
  if (key && !cert) diag.error(path.key('data'), `"${key[0]}" has no certificate beside it ("${key[0] === 'key' ? 'cert' : 'tls.crt'}")`);
  let leaf: X509Certificate | undefined;
  if (cert) {
    try {
      leaf = parseCertificateChain(cert[1].toString('utf8'))[0];
    } catch (err) {
      diag.error(where(cert[0]), `not a PEM certificate chain: ${(err as Error).message}`);
    }
    const now = Date.now();
    if (leaf && Date.parse(leaf.validTo) < now) diag.warn(where(cert[0]), `the certificate expired on ${new Date(leaf.validTo).toISOString()}`);
    if (leaf && Date.parse(leaf.validFrom) > now) diag.warn(where(cert[0]), `the certificate is not valid before ${new Date(leaf.validFrom).toISOString()}`);
  }
  if (key) {
    let privateKey;
    try {
      privateKey = createPrivateKey(key[1]);
    } catch {
      // Never the parser's message: it could quote part of the key.
      diag.error(where(key[0]), 'not a PEM private key (PKCS#8, PKCS#1 or SEC1)');
    }
    if (privateKey && leaf && !leaf.checkPrivateKey(privateKey)) diag.error(where(key[0]), `does not match the certificate in "${cert![0]}"`);
  }
  const ca = pick(content, CREDENTIAL_KEYS.ca);
  if (ca) {
    try {
      parseCertificateChain(ca[1].toString('utf8'));
    } catch (err) {
      diag.error(where(ca[0]), `not a PEM CA bundle: ${(err as Error).message}`);
    }
  }
}

/** The stored form: stringData folded into base64 data, the type made explicit. */
function normalizeSecret(spec: SecretInput): SecretSpec {
  const data: Record<string, string> = {};
  for (const [k, v] of decodedContent(spec)) data[k] = v.toString('base64');
  return { type: spec.type ?? SECRET_TYPE_OPAQUE, data, ...(spec.immutable !== undefined ? { immutable: spec.immutable } : {}) };
}

/** Secrets that are not TLS credentials are none of the mesh's business. */
function passOverSecret(raw: Record<string, unknown>): string | undefined {
  const type = typeof raw.type === 'string' ? raw.type : SECRET_TYPE_OPAQUE;
  if (type !== SECRET_TYPE_TLS && type !== SECRET_TYPE_OPAQUE) return `Secret of type ${type} is not a TLS credential; passed over`;
  if (type === SECRET_TYPE_TLS) return undefined;
  const keys = [raw.data, raw.stringData].flatMap((m) => (m && typeof m === 'object' ? Object.keys(m) : []));
  if (!keys.some((k) => ALL_CREDENTIAL_KEYS.includes(k))) return `Opaque Secret without ${ALL_CREDENTIAL_KEYS.join(', ')} is not a TLS credential; passed over`;
  return undefined;
}

/**
 * The credential a stored Secret holds, as Istio reads it: the key pair from
 * `cert`/`key`, else `tls.crt`/`tls.key`; the CA from `cacert`, else `ca.crt`.
 */
export function credentialMaterial(spec: SecretSpec): CredentialMaterial {
  const content = decodedContent({ data: { ...spec.data } });
  const cert = pick(content, CREDENTIAL_KEYS.cert);
  const key = pick(content, CREDENTIAL_KEYS.key);
  const ca = pick(content, CREDENTIAL_KEYS.ca);
  return {
    ...(cert && key ? { certChain: cert[1].toString('utf8'), privateKey: key[1].toString('utf8') } : {}),
    ...(ca ? { caCert: ca[1].toString('utf8') } : {}),
  };
}

export const secretKind: KindDefinition<SecretInput> = {
  group: '',
  kind: 'Secret',
  versions: ['v1'],
  plural: 'secrets',
  topLevelFields: ['type', 'data', 'stringData', 'immutable'],
  spec: secretSpec,
  validate: validateSecret,
  normalize: normalizeSecret,
  passOver: passOverSecret,
};
