// SDS from a separate secret server reached through a cluster (Istio's
// `sds-grpc`, served by the agent): one SecretDiscoveryService.StreamSecrets
// stream per cluster, state of the world, ACK/NACK like ADS, reconnecting
// with capped backoff. Names follow what the TLS contexts ask for.

import * as grpc from '@grpc/grpc-js';
import { TypeUrl, loadXdsProtos, unpackMessage } from '../../xds/index.ts';
import type { DiscoveryRequest, DiscoveryResponse, NodeMessage } from '../../xds/index.ts';
import type { Logger } from '../../common/index.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import type { SecretManager } from './secret-manager.ts';

const SDS_SERVICE = 'envoy.service.secret.v3.SecretDiscoveryService';
type Stream = grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;

class SdsClient {
  private readonly cluster: string;
  private readonly owner: SdsClusterClients;
  private client: (grpc.Client & { StreamSecrets(): Stream }) | undefined;
  private stream: Stream | undefined;
  names: readonly string[] = [];
  private version = '';
  private nonce = '';
  private sentNode = false;
  private backoffMs = 500;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(cluster: string, owner: SdsClusterClients) {
    this.cluster = cluster;
    this.owner = owner;
  }

  update(names: readonly string[]): void {
    this.names = names;
    if (!this.stream) this.connect();
    else this.send();
  }

  private connect(): void {
    if (this.stopped) return;
    const host = this.owner.clusters.get(this.cluster)?.pickHost();
    if (!host) {
      // The SDS cluster may arrive later (CDS) or still be resolving.
      this.retry();
      return;
    }
    const Client = loadXdsProtos().service(SDS_SERVICE);
    this.client = new Client(`${host.address}:${host.port}`, grpc.credentials.createInsecure()) as unknown as SdsClient['client'];
    const stream = this.client!.StreamSecrets();
    this.stream = stream;
    this.sentNode = false;
    this.nonce = '';
    stream.on('data', (res: DiscoveryResponse) => this.onResponse(res));
    const lost = (err?: Error): void => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      this.client?.close();
      if (!this.stopped) this.owner.logger.warn({ cluster: this.cluster, err: err?.message }, 'SDS stream closed; reconnecting');
      this.retry();
    };
    stream.on('error', lost);
    stream.on('end', () => lost());
    this.send();
  }

  private retry(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => this.connect(), this.backoffMs);
    this.timer.unref();
    this.backoffMs = Math.min(this.backoffMs * 2, 30_000);
  }

  private send(errorDetail?: string): void {
    if (!this.stream) return;
    const req: DiscoveryRequest = { type_url: TypeUrl.Secret, version_info: this.version, resource_names: [...this.names], response_nonce: this.nonce };
    if (!this.sentNode) {
      req.node = this.owner.node;
      this.sentNode = true;
    }
    if (errorDetail !== undefined) req.error_detail = { code: grpc.status.INVALID_ARGUMENT, message: errorDetail };
    this.stream.write(req);
  }

  private onResponse(res: DiscoveryResponse): void {
    this.nonce = res.nonce;
    this.backoffMs = 500;
    try {
      const resources = res.resources.map((any) => unpackMessage<Record<string, any>>(any));
      this.owner.secrets.apply({ kind: 'cluster', cluster: this.cluster }, resources, res.version_info);
      this.version = res.version_info;
      this.send();
    } catch (err) {
      this.owner.logger.warn({ cluster: this.cluster, err: (err as Error).message }, 'SDS update rejected (NACK)');
      this.send((err as Error).message);
    }
  }

  close(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.stream?.cancel();
    this.client?.close();
  }
}

/** One SDS stream per secret-server cluster, started when a TLS context first names a secret there. */
export class SdsClusterClients {
  readonly secrets: SecretManager;
  readonly clusters: ClusterManager;
  readonly node: NodeMessage;
  readonly logger: Logger;
  private readonly clients = new Map<string, SdsClient>();

  constructor(secrets: SecretManager, clusters: ClusterManager, node: NodeMessage, logger: Logger) {
    this.secrets = secrets;
    this.clusters = clusters;
    this.node = node;
    this.logger = logger;
  }

  subscribe(cluster: string, names: readonly string[]): void {
    let c = this.clients.get(cluster);
    if (!c) this.clients.set(cluster, (c = new SdsClient(cluster, this)));
    c.update(names);
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
