// The agent's side of istio.v1.auth.IstioCertificateService: sends a CSR
// over TLS (verifying the CA's serving certificate against the mesh roots),
// authenticated by the bootstrap token on the first request and by the
// current workload certificate (mTLS) on renewals.

import * as grpc from '@grpc/grpc-js';
import { loadCaService } from '../../xds/index.ts';
import type { IstioCertificateRequest, IstioCertificateResponse } from '../../xds/index.ts';
import { AgentError, AgentErrorCode } from './errors.ts';

export interface CaClientOptions {
  /** host:port of Citadel's CA port (Istio: 15012). */
  readonly address: string;
  /** Roots that verify the CA's serving certificate (the mesh trust bundle). */
  readonly rootCertsPem: string;
  /** Name checked in the CA's certificate (default istiod.istio-system.svc). */
  readonly serverName?: string;
  readonly timeoutMs?: number;
}

/** How a request proves who the workload is. */
export type CaCredential =
  | { readonly kind: 'token'; readonly token: string }
  | { readonly kind: 'certificate'; readonly certChainPem: string; readonly privateKeyPem: string };

type CaStub = grpc.Client & {
  CreateCertificate(request: IstioCertificateRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<IstioCertificateResponse>): grpc.ClientUnaryCall;
};

export class CaClient {
  private readonly options: CaClientOptions;
  private rootCertsPem: string;
  private tokenStub: CaStub | undefined;

  constructor(options: CaClientOptions) {
    this.options = options;
    this.rootCertsPem = options.rootCertsPem;
  }

  /** Trust a new bundle for the CA's serving certificate (after a root rotation). */
  updateRoots(rootCertsPem: string): void {
    if (rootCertsPem === this.rootCertsPem) return;
    this.rootCertsPem = rootCertsPem;
    this.tokenStub?.close();
    this.tokenStub = undefined;
  }

  /** Sends the CSR; resolves with IstioCertificateResponse.cert_chain, rejects with CA_REQUEST and the CA's reason. */
  async createCertificate(csrPem: string, ttlSeconds: number, credential: CaCredential): Promise<string[]> {
    const metadata = new grpc.Metadata();
    let stub: CaStub;
    if (credential.kind === 'token') {
      stub = this.tokenStub ??= this.stub(grpc.credentials.createSsl(Buffer.from(this.rootCertsPem)));
      metadata.set('authorization', `Bearer ${credential.token}`);
    } else {
      stub = this.stub(grpc.credentials.createSsl(Buffer.from(this.rootCertsPem), Buffer.from(credential.privateKeyPem), Buffer.from(credential.certChainPem)));
    }
    try {
      const response = await new Promise<IstioCertificateResponse>((resolve, reject) => {
        stub.CreateCertificate(
          { csr: csrPem, validity_duration: String(Math.max(0, Math.floor(ttlSeconds))) },
          metadata,
          { deadline: Date.now() + (this.options.timeoutMs ?? 10_000) },
          (err, value) => (err || !value ? reject(err ?? new Error('empty response')) : resolve(value)),
        );
      });
      return response.cert_chain;
    } catch (err) {
      const e = err as grpc.ServiceError;
      const status = typeof e.code === 'number' ? grpc.status[e.code] : 'UNKNOWN';
      throw new AgentError(AgentErrorCode.CA_REQUEST, `CA ${this.options.address} refused the CSR (${status}): ${e.details ?? e.message}`, { cause: err });
    } finally {
      if (stub !== this.tokenStub) stub.close();
    }
  }

  close(): void {
    this.tokenStub?.close();
    this.tokenStub = undefined;
  }

  private stub(credentials: grpc.ChannelCredentials): CaStub {
    const { Client } = loadCaService();
    return new Client(this.options.address, credentials, {
      'grpc.ssl_target_name_override': this.options.serverName ?? 'istiod.istio-system.svc',
      'grpc.default_authority': this.options.serverName ?? 'istiod.istio-system.svc',
      // Each credential gets its own connection: a renewal must present the certificate it was built with.
      'grpc.use_local_subchannel_pool': 1,
    }) as unknown as CaStub;
  }
}
