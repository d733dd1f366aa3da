// The gateway agent's side of credentials by name (credentialName): secrets
// the proxy asks for that the agent does not own (anything but `default` and
// `ROOTCA`) are fetched from the control plane's SecretDiscoveryService on
// its TLS port, authenticated by the workload certificate (mTLS), and handed
// to the proxy as they change. One StreamSecrets stream, state of the world;
// it reconnects with capped backoff and with the certificate current at that
// moment (after a rotation the old one may have expired).

import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../common/index.ts';
import { loadXdsProtos, TypeUrl, unpackMessage } from '../../xds/index.ts';
import type { DiscoveryRequest, DiscoveryResponse, NodeMessage } from '../../xds/index.ts';
import { SDS_SERVICE } from './sds-server.ts';

export interface CredentialClientOptions {
  /** host:port of the control plane's TLS port (Citadel's CA port, Istio's 15012). */
  readonly address: string;
  /** The workload's current certificate, key and trust bundle (PEM). */
  readonly credential: () => { certChainPem: string; privateKeyPem: string; rootCertPem: string };
  /** The proxy's node: the control plane checks its type (router) and namespace against the certificate. */
  readonly node: NodeMessage;
  /** Receives every response's secrets (decoded envoy Secret messages) and version; throw to NACK. */
  readonly onSecrets: (secrets: Record<string, unknown>[], version: string) => void;
  readonly log: Logger;
  /** Name checked in the control plane's certificate (default istiod.istio-system.svc). */
  readonly serverName?: string;
}

type Stream = grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;

const MAX_BACKOFF_MS = 30_000;

export class CredentialClient {
  private readonly options: CredentialClientOptions;
  private client: (grpc.Client & { StreamSecrets(): Stream }) | undefined;
  private stream: Stream | undefined;
  private names: readonly string[] = [];
  private version = '';
  private nonce = '';
  private backoffMs = 500;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(options: CredentialClientOptions) {
    this.options = options;
  }

  /** The names wanted now (state of the world); an empty list closes nothing but asks for nothing. */
  subscribe(names: readonly string[]): void {
    const sorted = [...new Set(names)].sort();
    if (sorted.join('\n') === this.names.join('\n') && (this.stream || this.timer)) return;
    this.names = sorted;
    if (sorted.length === 0) return;
    if (this.stream) this.send();
    else if (!this.timer) this.connect();
  }

  close(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.stream?.cancel();
    this.client?.close();
  }

  private connect(): void {
    this.timer = undefined;
    if (this.stopped) return;
    const c = this.options.credential();
    const Client = loadXdsProtos().service(SDS_SERVICE);
    const name = this.options.serverName ?? 'istiod.istio-system.svc';
    this.client = new Client(this.options.address, grpc.credentials.createSsl(Buffer.from(c.rootCertPem), Buffer.from(c.privateKeyPem), Buffer.from(c.certChainPem)), {
      'grpc.ssl_target_name_override': name,
      'grpc.default_authority': name,
      'grpc.use_local_subchannel_pool': 1,
    }) as unknown as CredentialClient['client'];
    const stream = this.client!.StreamSecrets();
    this.stream = stream;
    this.nonce = '';
    stream.on('data', (res: DiscoveryResponse) => this.onResponse(res));
    const lost = (err?: grpc.ServiceError): void => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      this.client?.close();
      if (this.stopped) return;
      this.options.log.warn({ address: this.options.address, code: err?.code === undefined ? undefined : grpc.status[err.code], err: err?.details ?? err?.message }, 'credential stream to the control plane closed; reconnecting');
      this.timer = setTimeout(() => this.connect(), this.backoffMs);
      this.timer.unref();
      this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
    };
    stream.on('error', lost);
    stream.on('end', () => lost());
    this.send(undefined, true);
  }

  private send(errorDetail?: string, first = false): void {
    if (!this.stream) return;
    const req: DiscoveryRequest = { type_url: TypeUrl.Secret, version_info: this.version, resource_names: [...this.names], response_nonce: this.nonce };
    if (first) req.node = this.options.node;
    if (errorDetail !== undefined) req.error_detail = { code: grpc.status.INVALID_ARGUMENT, message: errorDetail };
    this.stream.write(req);
  }

  private onResponse(res: DiscoveryResponse): void {
    this.nonce = res.nonce;
    this.backoffMs = 500;
    try {
      const secrets = res.resources.map((any) => unpackMessage<Record<string, unknown>>(any));
      this.options.onSecrets(secrets, res.version_info);
      this.version = res.version_info;
      this.send();
    } catch (err) {
      this.options.log.warn({ err: (err as Error).message }, 'credential update rejected (NACK)');
      this.send((err as Error).message);
    }
  }
}
