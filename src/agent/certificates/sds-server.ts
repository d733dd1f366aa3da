// The agent's SDS server: hands the workload certificate to the proxy as
// Envoy secrets over envoy.service.secret.v3.SecretDiscoveryService, state of
// the world, on a unix socket or a loopback port. Two secrets, named as
// Istio names them: `default` (certificate chain + private key) and `ROOTCA`
// (the trust bundle). A new certificate is pushed to every open stream.

import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../common/index.ts';
import { createLogger } from '../../common/index.ts';
import { loadXdsProtos, packMessage, TypeUrl } from '../../xds/index.ts';
import type { AnyMessage, DiscoveryRequest, DiscoveryResponse } from '../../xds/index.ts';
import type { WorkloadSecret } from './secret-manager.ts';

export const SDS_SERVICE = 'envoy.service.secret.v3.SecretDiscoveryService';
export const WORKLOAD_SECRET_NAME = 'default';
export const ROOT_SECRET_NAME = 'ROOTCA';

/** Where secrets come from: a SecretManager fits. */
export interface SecretSource {
  current(): WorkloadSecret | undefined;
  subscribe(listener: (secret: WorkloadSecret) => void): () => void;
}

export interface SdsServerOptions {
  readonly source: SecretSource;
  readonly log?: Logger;
}

interface StreamState {
  readonly call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;
  names: readonly string[];
  /** Version of the last response sent, 0 before the first. */
  sentVersion: number;
  nonce: number;
}

export class SdsServer {
  private readonly source: SecretSource;
  private readonly log: Logger;
  private readonly streams = new Set<StreamState>();
  private readonly unsubscribe: () => void;
  private server: grpc.Server | undefined;

  constructor(options: SdsServerOptions) {
    this.source = options.source;
    this.log = options.log ?? createLogger('agent.sds');
    this.unsubscribe = this.source.subscribe(() => {
      for (const stream of this.streams) this.push(stream);
    });
  }

  /** Adds the SDS service to a server (the agent may share one with other services). */
  register(server: grpc.Server): void {
    server.addService(loadXdsProtos().serviceDefinition(SDS_SERVICE), {
      StreamSecrets: (call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>) => this.stream(call),
      FetchSecrets: (call: grpc.ServerUnaryCall<DiscoveryRequest, DiscoveryResponse>, callback: grpc.sendUnaryData<DiscoveryResponse>) => {
        const secret = this.source.current();
        if (!secret) callback({ code: grpc.status.UNAVAILABLE, details: 'no workload certificate yet' });
        else callback(null, this.response(secret, call.request.resource_names ?? [], 'fetch'));
      },
      DeltaSecrets: (call: grpc.ServerDuplexStream<unknown, unknown>) => call.destroy(Object.assign(new Error('delta SDS is not served; use StreamSecrets'), { code: grpc.status.UNIMPLEMENTED })),
    });
  }

  /** Serves on `unix:/path/to/socket` or `127.0.0.1:port` (insecure: the socket is local to the workload); resolves with the port (0 for a unix socket). */
  async listen(address: string): Promise<number> {
    const server = new grpc.Server();
    this.register(server);
    const port = await new Promise<number>((resolve, reject) => server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    this.server = server;
    return port;
  }

  async close(): Promise<void> {
    this.unsubscribe();
    for (const stream of this.streams) stream.call.end();
    this.streams.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  }

  private stream(call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>): void {
    const state: StreamState = { call, names: [], sentVersion: 0, nonce: 0 };
    this.streams.add(state);
    const drop = (): void => {
      this.streams.delete(state);
    };
    call.on('end', () => {
      drop();
      call.end();
    });
    call.on('error', drop);
    call.on('cancelled', drop);
    call.on('data', (request: DiscoveryRequest) => {
      if (request.type_url && request.type_url !== TypeUrl.Secret) {
        call.destroy(Object.assign(new Error(`SDS serves ${TypeUrl.Secret}, not ${request.type_url}`), { code: grpc.status.INVALID_ARGUMENT }));
        return;
      }
      if (request.error_detail?.code) this.log.warn({ nonce: request.response_nonce, message: request.error_detail.message }, 'proxy rejected a secret (NACK)');
      const names = [...(request.resource_names ?? [])].sort();
      const changed = names.join('\n') !== state.names.join('\n');
      state.names = names;
      // An ACK or NACK of what was sent needs no answer; a new subscription or a first request does.
      if (changed || state.sentVersion === 0) {
        state.sentVersion = 0;
        this.push(state);
      }
    });
  }

  private push(state: StreamState): void {
    const secret = this.source.current();
    if (!secret || secret.version === state.sentVersion) return;
    state.sentVersion = secret.version;
    state.nonce++;
    state.call.write(this.response(secret, state.names, String(state.nonce)));
  }

  /** The requested secrets (all when none are named) at the secret's version. */
  private response(secret: WorkloadSecret, names: readonly string[], nonce: string): DiscoveryResponse {
    const wanted = names.length === 0 ? [WORKLOAD_SECRET_NAME, ROOT_SECRET_NAME] : names;
    const resources: AnyMessage[] = [];
    for (const name of wanted) {
      if (name === WORKLOAD_SECRET_NAME) {
        resources.push(packMessage(TypeUrl.Secret, {
          name,
          tls_certificate: {
            certificate_chain: { inline_bytes: Buffer.from(secret.certChainPem) },
            private_key: { inline_bytes: Buffer.from(secret.privateKeyPem) },
          },
        }));
      } else if (name === ROOT_SECRET_NAME) {
        resources.push(packMessage(TypeUrl.Secret, { name, validation_context: { trusted_ca: { inline_bytes: Buffer.from(secret.rootCertPem) } } }));
      } else {
        this.log.debug({ name }, 'proxy asked for a secret the agent does not have');
      }
    }
    return { version_info: String(secret.version), resources, type_url: TypeUrl.Secret, nonce };
  }
}
