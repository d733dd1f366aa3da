// The signing service on the wire: istio.v1.auth.IstioCertificateService
// CreateCertificate. Every call is authenticated first, by the caller's
// workload certificate (mTLS) or its bootstrap token (`authorization:
// Bearer`), and a caller gets a certificate for its own identity only. Each
// refusal has a gRPC status, a message that says why, and a metric named as
// Istio names it.

import { TLSSocket } from 'node:tls';
import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { SecureContextOptions } from 'node:tls';
import * as x509 from '../common/x509.ts';
import { Counter, Gauge } from 'prom-client';
import type { Logger, Registry } from '../common/index.ts';
import { isMeshError, parseSpiffeId } from '../common/index.ts';
import { CA_SERVICE, loadCaService } from '../xds/index.ts';
import type { IstioCertificateRequest, IstioCertificateResponse } from '../xds/index.ts';
import type { BootstrapTokenKey } from './bootstrap-token.ts';
import { verifyBootstrapToken } from './bootstrap-token.ts';
import { sameCert } from './ca-material.ts';
import type { CertificateAuthority, CsrSigner } from './certificate-authority.ts';
import type { CitadelClock } from './clock.ts';
import { CitadelError, CitadelErrorCode } from './errors.ts';

/** Istio's Citadel server metrics. */
export interface CitadelServerMetrics {
  readonly csrCount: Counter;
  readonly authenticationFailures: Counter;
  readonly csrParsingErrors: Counter;
  readonly idExtractionErrors: Counter;
  readonly csrSignErrors: Counter;
  readonly successes: Counter;
  readonly rootCertExpiry: Gauge;
  readonly certChainExpiry: Gauge;
}

export function createCitadelServerMetrics(registry: Registry): CitadelServerMetrics {
  const counter = (name: string, help: string): Counter => new Counter({ name, help, registers: [registry] });
  return {
    csrCount: counter('citadel_server_csr_count', 'CSRs received by the CA service'),
    authenticationFailures: counter('citadel_server_authentication_failure_count', 'CSRs refused because the caller proved no identity'),
    csrParsingErrors: counter('citadel_server_csr_parsing_err_count', 'CSRs that are not valid PEM PKCS#10 requests'),
    idExtractionErrors: counter('citadel_server_id_extraction_err_count', 'CSRs whose identity is not the caller\'s'),
    csrSignErrors: counter('citadel_server_csr_sign_err_count', 'CSRs that failed signing (TTL out of range, signing error)'),
    successes: counter('citadel_server_success_cert_issuance_count', 'Certificates issued'),
    rootCertExpiry: new Gauge({ name: 'citadel_server_root_cert_expiry_timestamp', help: 'Unix time (s) at which the root certificate expires', registers: [registry] }),
    certChainExpiry: new Gauge({ name: 'citadel_server_cert_chain_expiry_timestamp', help: 'Unix time (s) at which the CA signing certificate expires', registers: [registry] }),
  };
}

export interface CaServiceOptions {
  readonly ca: CertificateAuthority;
  /** Signs the CSRs; the CA itself unless a pool of signing workers is given. */
  readonly signer?: CsrSigner;
  readonly clock: CitadelClock;
  readonly metrics: CitadelServerMetrics;
  readonly log: Logger;
  /** Keys that sign bootstrap tokens, the current one first. */
  readonly tokenKeys: () => readonly BootstrapTokenKey[];
}

/** The CreateCertificate handler, to be added to a gRPC server with the CA service definition. */
export class CaService {
  private readonly options: CaServiceOptions;

  constructor(options: CaServiceOptions) {
    this.options = options;
  }

  register(server: grpc.Server): void {
    server.addService(loadCaService().definition, {
      CreateCertificate: (call: grpc.ServerUnaryCall<IstioCertificateRequest, IstioCertificateResponse>, callback: grpc.sendUnaryData<IstioCertificateResponse>) => {
        this.createCertificate(call).then(
          (response) => callback(null, response),
          (err: unknown) => callback(this.refusal(err, call.getPeer())),
        );
      },
    });
  }

  /** The part of a call the service reads, so tests and benchmarks can drive it without a socket. */
  async createCertificate(call: Pick<grpc.ServerUnaryCall<IstioCertificateRequest, IstioCertificateResponse>, 'request' | 'metadata' | 'getAuthContext'>): Promise<IstioCertificateResponse> {
    const { ca, metrics } = this.options;
    metrics.csrCount.inc();
    const identity = await this.authenticate(call);
    const seconds = Number(call.request.validity_duration ?? 0);
    const signed = await (this.options.signer ?? ca).signCsr(call.request.csr, identity, seconds * 1000);
    metrics.successes.inc();
    this.options.log.debug({ identity, serial: signed.serialNumber, notAfter: new Date(signed.notAfter).toISOString() }, 'certificate issued');
    return { cert_chain: [...signed.chainPem] };
  }

  /**
   * The caller's SPIFFE ID, proven by its client certificate or else its
   * bootstrap token; UNAUTHENTICATED with every reason when neither holds.
   */
  private async authenticate(call: Pick<grpc.ServerUnaryCall<unknown, unknown>, 'metadata' | 'getAuthContext'>): Promise<string> {
    const reasons: string[] = [];
    const presented = peerCertificates(call);
    if (presented.length > 0) {
      try {
        return await this.verifyClientCertificate(presented);
      } catch (err) {
        if (!isMeshError(err)) throw err;
        reasons.push(`client certificate: ${err.message}`);
      }
    }
    const header = call.metadata.get('authorization')[0];
    if (header !== undefined) {
      const m = /^Bearer\s+(\S+)$/i.exec(String(header));
      if (!m) reasons.push('authorization metadata is not "Bearer <token>"');
      else {
        try {
          return await verifyBootstrapToken(m[1]!, this.options.tokenKeys(), this.options.ca.options.trustDomain, this.options.clock);
        } catch (err) {
          if (!isMeshError(err)) throw err;
          reasons.push(err.message);
        }
      }
    }
    if (reasons.length === 0) reasons.push('no credential: send the bootstrap token as "authorization: Bearer <token>" or connect with the workload certificate (mTLS)');
    throw new CitadelError(CitadelErrorCode.UNAUTHENTICATED, reasons.join('; '));
  }

  /** Verifies a presented chain against the CA's own certificates and trust bundle, on the CA's clock. */
  private async verifyClientCertificate(presented: readonly x509.X509Certificate[]): Promise<string> {
    const leaf = presented[0]!;
    const now = this.options.clock.now();
    const unauthenticated = (why: string): CitadelError => new CitadelError(CitadelErrorCode.UNAUTHENTICATED, why);
    if (leaf.notAfter.getTime() < now) throw unauthenticated(`expired at ${leaf.notAfter.toISOString()}`);
    if (leaf.notBefore.getTime() > now) throw unauthenticated(`not valid before ${leaf.notBefore.toISOString()}`);
    const material = this.options.ca.material;
    const candidates = [...material.chain, ...material.roots, ...presented.slice(1)];
    let cert = leaf;
    for (let depth = 0; ; depth++) {
      if (material.roots.some((r) => sameCert(r, cert))) break;
      const current = cert;
      const issuer = candidates.find((c) => c.subject === current.issuer && !sameCert(c, current));
      const signed = issuer ? await current.verify({ publicKey: issuer.publicKey, signatureOnly: true }).catch(() => false) : false;
      if (!issuer || !signed || depth > 5) throw unauthenticated(`not issued by this mesh's CA (issuer "${current.issuer}")`);
      if (issuer.notAfter.getTime() < now) throw unauthenticated(`issuer "${issuer.subject}" expired at ${issuer.notAfter.toISOString()}`);
      cert = issuer;
    }
    const san = leaf.getExtension(x509.SubjectAlternativeNameExtension);
    const ids = (san?.names.items ?? []).filter((n) => n.type === 'url').map((n) => n.value);
    const trustDomain = this.options.ca.options.trustDomain;
    const own = ids.filter((id) => parseSpiffeId(id)?.trustDomain === trustDomain);
    if (own.length !== 1) throw unauthenticated(`carries no single SPIFFE identity of trust domain ${trustDomain} (URI SANs: ${ids.join(', ') || 'none'})`);
    return own[0]!;
  }

  private refusal(err: unknown, peer: string): Partial<grpc.StatusObject> {
    const { metrics, log } = this.options;
    if (!isMeshError(err)) {
      log.error({ err, peer }, 'CreateCertificate failed unexpectedly');
      metrics.csrSignErrors.inc();
      return { code: grpc.status.INTERNAL, details: `${CitadelErrorCode.SIGNING}: internal error` };
    }
    const table: Record<string, [grpc.status, Counter]> = {
      [CitadelErrorCode.UNAUTHENTICATED]: [grpc.status.UNAUTHENTICATED, metrics.authenticationFailures],
      [CitadelErrorCode.INVALID_CSR]: [grpc.status.INVALID_ARGUMENT, metrics.csrParsingErrors],
      [CitadelErrorCode.IDENTITY_MISMATCH]: [grpc.status.PERMISSION_DENIED, metrics.idExtractionErrors],
      [CitadelErrorCode.INVALID_TTL]: [grpc.status.INVALID_ARGUMENT, metrics.csrSignErrors],
    };
    const [code, counter] = table[err.code] ?? [grpc.status.INTERNAL, metrics.csrSignErrors];
    counter.inc();
    log.warn({ peer, code: err.code }, `CSR refused: ${err.message}`);
    return { code, details: `${err.code}: ${err.message}` };
  }
}

/**
 * Server TLS for the CA port: the client certificate is requested but not
 * required (a first CSR comes with a bootstrap token and no certificate), and
 * the chain is judged by the service, not the handshake, so an expired or
 * foreign certificate gets a clear refusal instead of a reset connection.
 * `update` swaps the serving certificate or trust bundle without a restart.
 */
export class CitadelServerCredentials extends grpc.ServerCredentials {
  constructor(context: SecureContextOptions) {
    super({ requestCert: true, rejectUnauthorized: false }, context);
  }

  update(context: SecureContextOptions): void {
    this.updateSecureContextOptions(context);
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

export { CA_SERVICE };

/**
 * The chain the client presented in the handshake. grpc-js exposes the peer
 * certificate only when the handshake verified it; for the ones it did not
 * (expired, foreign) the TLS socket of the call's HTTP/2 session is read, so
 * the refusal can say why. No socket found means no certificate.
 */
function peerCertificates(call: Pick<grpc.ServerUnaryCall<unknown, unknown>, 'getAuthContext'>): x509.X509Certificate[] {
  let peer: PeerCertificate | undefined = call.getAuthContext()?.sslPeerCertificate;
  if (!peer?.raw) {
    const socket = tlsSocketOf(call);
    const detailed = socket?.getPeerCertificate(true);
    peer = detailed && detailed.raw ? detailed : undefined;
  }
  const chain: x509.X509Certificate[] = [];
  for (let c: PeerCertificate | undefined = peer; c?.raw && chain.length < 6; ) {
    chain.push(new x509.X509Certificate(c.raw));
    const next = (c as PeerCertificate & { issuerCertificate?: PeerCertificate }).issuerCertificate;
    if (!next || next === c || next.raw?.equals(c.raw)) break;
    c = next;
  }
  return chain;
}

function tlsSocketOf(call: unknown): TLSSocket | undefined {
  let node = call as Record<string, unknown> | undefined;
  for (let i = 0; i < 6 && node && typeof node === 'object'; i++) {
    const socket = ((node.stream as { session?: { socket?: unknown } } | undefined)?.session?.socket);
    if (socket instanceof TLSSocket) return socket;
    node = (node.call ?? node.nextCall) as Record<string, unknown> | undefined;
  }
  return undefined;
}
