// TLS transport sockets: the upstream side from a DestinationRule's
// ClientTLSSettings, the downstream side from Gateway servers and from the
// mesh's own mTLS (ISTIO_MUTUAL: workload certificate `default` and trust
// bundle `ROOTCA` over SDS, ALPN `istio-peer-exchange, istio`).

import type { ClientTlsSettings, ServerTlsSettings } from '../../api/kinds/networking/tls-settings.ts';
import { TypeUrl } from '../../xds/index.ts';
import { sdsSecretConfig, typed, bool } from './envoy-values.ts';
import { ISTIO_ALPN, SDS_DEFAULT_SECRET, SDS_ROOT_SECRET } from './names.ts';

const TLS_SOCKET = 'envoy.transport_sockets.tls';

/** The Istio mTLS common context: our certificate and the mesh root, both from SDS. */
function istioCommonContext(sans: readonly string[], alpn: readonly string[]): Record<string, unknown> {
  const defaultValidation: Record<string, unknown> = {};
  if (sans.length > 0) defaultValidation.match_subject_alt_names = sans.map((s) => ({ exact: s }));
  return {
    tls_certificate_sds_secret_configs: [sdsSecretConfig(SDS_DEFAULT_SECRET)],
    combined_validation_context: {
      default_validation_context: defaultValidation,
      validation_context_sds_secret_config: sdsSecretConfig(SDS_ROOT_SECRET),
    },
    alpn_protocols: [...alpn],
  };
}

/**
 * Upstream TLS for a cluster, or undefined for DISABLE. `sni` is the default
 * SNI (Istio's `outbound_.PORT_.SUBSET_.HOST` for ISTIO_MUTUAL); `sans` are
 * the identities the service runs as.
 */
export function upstreamTransportSocket(tls: ClientTlsSettings | undefined, defaults: { sni: string; sans: readonly string[]; http2: boolean }): Record<string, unknown> | undefined {
  const mode = tls?.mode ?? 'DISABLE';
  if (!tls || mode === 'DISABLE') return undefined;
  let context: Record<string, unknown>;
  if (mode === 'ISTIO_MUTUAL') {
    const sans = tls.subjectAltNames?.length ? tls.subjectAltNames : defaults.sans;
    context = { common_tls_context: istioCommonContext(sans, ISTIO_ALPN), sni: tls.sni ?? defaults.sni };
  } else {
    const common: Record<string, unknown> = {};
    const validation: Record<string, unknown> = {};
    if (tls.subjectAltNames?.length) validation.match_subject_alt_names = tls.subjectAltNames.map((s) => ({ exact: s }));
    if (tls.credentialName) {
      // A credential holds the key pair (MUTUAL) and the CA as `<name>-cacert`, as Istio's SDS naming has it.
      if (mode === 'MUTUAL') common.tls_certificate_sds_secret_configs = [sdsSecretConfig(tls.credentialName)];
      if (!tls.insecureSkipVerify) {
        common.combined_validation_context = { default_validation_context: validation, validation_context_sds_secret_config: sdsSecretConfig(`${tls.credentialName}-cacert`) };
      }
    } else {
      if (mode === 'MUTUAL' && tls.clientCertificate && tls.privateKey) {
        common.tls_certificates = [{ certificate_chain: { filename: tls.clientCertificate }, private_key: { filename: tls.privateKey } }];
      }
      if (tls.caCertificates && !tls.insecureSkipVerify) validation.trusted_ca = { filename: tls.caCertificates };
      if (tls.caCrl) validation.crl = { filename: tls.caCrl };
      if (Object.keys(validation).length > 0) common.validation_context = validation;
    }
    if (defaults.http2) common.alpn_protocols = ['h2', 'http/1.1'];
    context = { common_tls_context: common };
    if (tls.sni) context.sni = tls.sni;
  }
  return { name: TLS_SOCKET, typed_config: typed(TypeUrl.UpstreamTlsContext, context) };
}

/** Downstream mTLS for a sidecar's inbound side: clients must present a mesh certificate. */
export function istioDownstreamTransportSocket(alpn: readonly string[] = ['h2', 'http/1.1']): Record<string, unknown> {
  return {
    name: TLS_SOCKET,
    typed_config: typed(TypeUrl.DownstreamTlsContext, {
      common_tls_context: istioCommonContext([], alpn),
      require_client_certificate: bool(true),
    }),
  };
}

/** Downstream TLS of a Gateway server; undefined for PASSTHROUGH modes (no termination). */
export function gatewayDownstreamTransportSocket(tls: ServerTlsSettings, http: boolean): Record<string, unknown> | undefined {
  const mode = tls.mode ?? 'PASSTHROUGH';
  if (mode === 'PASSTHROUGH' || mode === 'AUTO_PASSTHROUGH') return undefined;
  const alpn = http ? ['h2', 'http/1.1'] : [];
  if (mode === 'ISTIO_MUTUAL') return istioDownstreamTransportSocket(alpn);
  const common: Record<string, unknown> = {};
  const mutual = mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL';
  const validation: Record<string, unknown> = {};
  if (tls.subjectAltNames?.length) validation.match_subject_alt_names = tls.subjectAltNames.map((s) => ({ exact: s }));
  if (tls.verifyCertificateSpki?.length) validation.verify_certificate_spki = [...tls.verifyCertificateSpki];
  if (tls.verifyCertificateHash?.length) validation.verify_certificate_hash = [...tls.verifyCertificateHash];
  const credential = tls.credentialName ?? tls.credentialNames?.[0];
  if (credential) {
    common.tls_certificate_sds_secret_configs = [sdsSecretConfig(credential)];
    if (mutual) common.combined_validation_context = { default_validation_context: validation, validation_context_sds_secret_config: sdsSecretConfig(`${credential}-cacert`) };
  } else {
    const certs = tls.tlsCertificates?.length ? tls.tlsCertificates : [tls];
    common.tls_certificates = certs.filter((c) => c.serverCertificate && c.privateKey)
      .map((c) => ({ certificate_chain: { filename: c.serverCertificate }, private_key: { filename: c.privateKey } }));
    if (mutual && tls.caCertificates) common.validation_context = { ...validation, trusted_ca: { filename: tls.caCertificates } };
  }
  if (tls.minProtocolVersion || tls.maxProtocolVersion || tls.cipherSuites?.length) {
    const params: Record<string, unknown> = {};
    if (tls.minProtocolVersion) params.tls_minimum_protocol_version = envoyTlsVersion(tls.minProtocolVersion);
    if (tls.maxProtocolVersion) params.tls_maximum_protocol_version = envoyTlsVersion(tls.maxProtocolVersion);
    if (tls.cipherSuites?.length) params.cipher_suites = [...tls.cipherSuites];
    common.tls_params = params;
  }
  if (alpn.length > 0) common.alpn_protocols = alpn;
  const context: Record<string, unknown> = { common_tls_context: common };
  if (mode === 'MUTUAL') context.require_client_certificate = bool(true);
  return { name: TLS_SOCKET, typed_config: typed(TypeUrl.DownstreamTlsContext, context) };
}

/** Istio spells `TLSV1_2`, Envoy's enum `TLSv1_2`. */
function envoyTlsVersion(v: string): string {
  return v.replace('TLSV', 'TLSv');
}
