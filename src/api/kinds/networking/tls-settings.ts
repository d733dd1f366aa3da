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

const CONFIGMAP_PREFIX = 'configmap://';

/**
 * agent.ValidateTLS for a DestinationRule: what each client mode needs and
 * forbids. `namespace` is the rule's own: a `configmap://` credential must live there.
 */
export function checkClientTls(diag: Diagnostics, path: FieldPath, tls: ClientTlsSettings | undefined, namespace: string): void {
  if (!tls) return;
  const mode = tls.mode ?? 'DISABLE';
  if (tls.credentialName?.startsWith(CONFIGMAP_PREFIX)) {
    const ref = tls.credentialName.slice(CONFIGMAP_PREFIX.length);
    const parts = ref.split('/');
    if (ref === '' || parts.length > 2 || parts.some((p) => p === '')) {
      diag.error(path.key('credentialName'), `invalid configmap:// credentialName "${tls.credentialName}": use configmap://<name> or configmap://<namespace>/<name>`);
    } else if (parts.length === 2 && parts[0] !== namespace) {
      diag.error(path.key('credentialName'), `invalid configmap:// credentialName: namespace must match the configuration namespace "${namespace}"`);
    }
  }
  if (tls.insecureSkipVerify) {
    if (mode === 'SIMPLE' && (tls.caCertificates || tls.credentialName || tls.subjectAltNames !== undefined)) {
      diag.error(path, 'cannot specify caCertificates or credentialName or subjectAltNames when insecureSkipVerify is set true');
    }
    if (mode === 'MUTUAL' && (tls.caCertificates || tls.subjectAltNames !== undefined)) {
      diag.error(path, 'cannot specify caCertificates or subjectAltNames when insecureSkipVerify is set true');
    }
  }
  if (mode === 'ISTIO_MUTUAL') {
    // The mesh supplies the workload certificate (Istio's API: "should be empty"); files here would be ignored silently.
    for (const field of ['clientCertificate', 'privateKey', 'caCertificates', 'credentialName'] as const) {
      if (tls[field]) diag.error(path.key(field), `${field} cannot be set when mode is ISTIO_MUTUAL: the mesh provides the certificates`);
    }
    return;
  }
  if ((mode === 'SIMPLE' || mode === 'MUTUAL') && tls.credentialName) {
    if (tls.clientCertificate || tls.caCertificates || tls.privateKey || tls.caCrl) {
      diag.error(path, 'cannot specify client certificates or CA certificate or CA CRL if credentialName is set: the credential supplies them');
    }
    return;
  }
  if (mode === 'MUTUAL') {
    if (!tls.clientCertificate) diag.error(path.key('clientCertificate'), 'client certificate required for mutual tls (or set credentialName)');
    if (!tls.privateKey) diag.error(path.key('privateKey'), 'private key required for mutual tls (or set credentialName)');
  }
}

// The cipher suites Envoy's BoringSSL accepts (security.IsValidCipherSuite);
// the bracketed ones are equal-preference groups.
const CIPHER_SUITES = new Set([
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305', 'ECDHE-ECDSA-AES128-SHA', 'ECDHE-RSA-AES128-SHA',
  'ECDHE-ECDSA-AES256-SHA', 'ECDHE-RSA-AES256-SHA', 'AES128-GCM-SHA256', 'AES256-GCM-SHA384', 'AES128-SHA', 'AES256-SHA',
  'DES-CBC3-SHA', 'ECDHE-PSK-AES128-CBC-SHA', 'ECDHE-PSK-AES256-CBC-SHA', 'ECDHE-PSK-CHACHA20-POLY1305', 'PSK-AES128-CBC-SHA', 'PSK-AES256-CBC-SHA',
  '[ECDHE-ECDSA-AES128-GCM-SHA256|ECDHE-ECDSA-CHACHA20-POLY1305]', '[ECDHE-RSA-AES128-GCM-SHA256|ECDHE-RSA-CHACHA20-POLY1305]',
]);

const TLS_VERSION_ORDER: readonly string[] = TLS_VERSIONS;

/**
 * validateTLSOptions of a server: ISTIO_MUTUAL takes no certificates,
 * passthrough modes ignore them (warned), one certificate source at most,
 * SIMPLE/MUTUAL/OPTIONAL_MUTUAL need a certificate and key unless a credential
 * names them, the mutual modes also a client CA bundle.
 */
export function checkServerTls(diag: Diagnostics, path: FieldPath, tls: ServerTlsSettings | undefined): void {
  if (!tls) return;
  const mode = tls.mode ?? 'PASSTHROUGH';
  const certs = tls.tlsCertificates ?? [];
  const credentialNames = tls.credentialNames ?? [];
  if ((tls.minProtocolVersion === 'TLSV1_0' || tls.minProtocolVersion === 'TLSV1_1') && (tls.cipherSuites?.length ?? 0) === 0) {
    diag.warn(path.key('minProtocolVersion'), 'TLS version below TLSV1_2 require setting compatible ciphers as by default they no longer include compatible ciphers');
  }
  checkCipherSuites(diag, path.key('cipherSuites'), tls.cipherSuites ?? []);
  checkProtocolVersions(diag, path, tls);
  if (mode === 'ISTIO_MUTUAL') {
    if (tls.serverCertificate) diag.error(path.key('serverCertificate'), 'ISTIO_MUTUAL TLS cannot have associated server certificate');
    if (tls.privateKey) diag.error(path.key('privateKey'), 'ISTIO_MUTUAL TLS cannot have associated private key');
    if (tls.caCertificates) diag.error(path.key('caCertificates'), 'ISTIO_MUTUAL TLS cannot have associated CA bundle');
    if (certs.length > 0) diag.error(path.key('tlsCertificates'), 'ISTIO_MUTUAL TLS cannot have associated tlsCertificates');
    if (tls.credentialName) diag.error(path.key('credentialName'), 'ISTIO_MUTUAL TLS cannot have associated credentialName');
    if (credentialNames.length > 0) diag.error(path.key('credentialNames'), 'ISTIO_MUTUAL TLS cannot have associated credentialNames');
    return;
  }
  if (mode === 'PASSTHROUGH' || mode === 'AUTO_PASSTHROUGH') {
    if (tls.caCrl || tls.serverCertificate || tls.privateKey || tls.caCertificates || certs.length > 0 || tls.credentialName || credentialNames.length > 0) {
      diag.warn(path, `${mode} mode does not use certificates, they will be ignored`);
    }
  }
  const sources = [Boolean(tls.serverCertificate && tls.privateKey), Boolean(tls.credentialName), credentialNames.length > 0, certs.length > 0].filter(Boolean).length;
  if (sources > 1) diag.error(path, 'only one of credentialName, credentialNames, serverCertificate/privateKey, tlsCertificates should be specified');
  const certMode = mode === 'SIMPLE' || mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL';
  if (certMode && (tls.credentialName || credentialNames.length > 0)) return; // the credential supplies everything
  if (certMode) {
    const prefix = mode === 'SIMPLE' ? 'SIMPLE TLS' : 'MUTUAL TLS';
    if (mode !== 'SIMPLE' && !tls.caCertificates) diag.error(path.key('caCertificates'), `${prefix} requires a client CA bundle (caCertificates, or use credentialName)`);
    if (certs.length > 2) diag.warn(path.key('tlsCertificates'), `${prefix} can support up to 2 server certificates`);
    const toCheck = certs.length > 0 ? certs.map((c, i) => ({ c, p: path.key('tlsCertificates').index(i) })) : [{ c: tls, p: path }];
    for (const { c, p } of toCheck) {
      if (!c.serverCertificate) diag.error(p.key('serverCertificate'), `${prefix} requires a server certificate (or use credentialName)`);
      if (!c.privateKey) diag.error(p.key('privateKey'), `${prefix} requires a private key (or use credentialName)`);
    }
  }
  if (tls.caCrl) {
    if (tls.credentialName) diag.error(path.key('caCrl'), 'CRL is not supported with credentialName. CRL has to be specified in the credential');
    if (mode === 'SIMPLE') diag.error(path.key('caCrl'), 'CRL is not supported with SIMPLE TLS');
  }
}

function checkCipherSuites(diag: Diagnostics, path: FieldPath, suites: readonly string[]): void {
  const invalid = new Set<string>();
  const seen = new Set<string>();
  const duplicate = new Set<string>();
  for (const suite of suites) {
    if (!CIPHER_SUITES.has(suite)) invalid.add(suite);
    else if (seen.has(suite)) duplicate.add(suite);
    else seen.add(suite);
  }
  if (invalid.size > 0) diag.warn(path, `ignoring invalid cipher suites: [${[...invalid].sort().join(' ')}]`);
  if (duplicate.size > 0) diag.warn(path, `ignoring duplicate cipher suites: [${[...duplicate].sort().join(' ')}]`);
}

// Envoy rejects a TLS context whose maximum version is below its minimum.
function checkProtocolVersions(diag: Diagnostics, path: FieldPath, tls: ServerTlsSettings): void {
  const min = tls.minProtocolVersion;
  const max = tls.maxProtocolVersion;
  if (!min || !max || min === 'TLS_AUTO' || max === 'TLS_AUTO') return;
  if (TLS_VERSION_ORDER.indexOf(max) < TLS_VERSION_ORDER.indexOf(min)) {
    diag.error(path.key('maxProtocolVersion'), `maxProtocolVersion ${max} must not be lower than minProtocolVersion ${min}`);
  }
}
