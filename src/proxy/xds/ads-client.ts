// The xDS client: one ADS stream (state of the world) to the management
// server named in dynamic_resources. CDS and LDS are wildcard; EDS and RDS
// follow the names the current clusters and listeners need. Every response
// is decoded and validated as a whole; a failure is NACKed with the error
// text and the proxy keeps its last good config. Updates apply in order, one
// at a time; the stream reconnects with capped exponential backoff.

import * as grpc from '@grpc/grpc-js';
import { ADS_SERVICE, TypeUrl, loadXdsProtos, unpackMessage } from '../../xds/index.ts';
import type { DiscoveryRequest, DiscoveryResponse, NodeMessage } from '../../xds/index.ts';
import type { Logger } from '../../common/index.ts';
import type { XdsConfigSink } from './xds-sink.ts';
import { ORDER, STAT_SCOPE, applyResources } from './xds-sink.ts';
import { ReconnectBackoff } from './reconnect-backoff.ts';


interface Subscription {
  readonly typeUrl: string;
  readonly wildcard: boolean;
  names: string[];
  /** Last accepted version_info, and the nonce of the last response seen. */
  version: string;
  nonce: string;
  requested: boolean;
}

export interface AdsClientOptions {
  /** host:port of the management server. */
  readonly target: string;
  readonly node: NodeMessage;
  readonly logger: Logger;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

type Stream = grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;

export class AdsClient {
  private readonly proxy: XdsConfigSink;
  private readonly options: AdsClientOptions;
  private readonly client: grpc.Client & { StreamAggregatedResources(): Stream };
  private readonly subs = new Map<string, Subscription>();
  private stream: Stream | undefined;
  private queue: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly backoff: ReconnectBackoff;
  private sentNode = false;
  private readonly seen = new Set<string>();
  private markInitialized!: () => void;
  /** Resolves once CDS and LDS each answered once (accepted or not). */
  readonly initialized: Promise<void> = new Promise((r) => (this.markInitialized = r));

  constructor(proxy: XdsConfigSink, options: AdsClientOptions) {
    this.proxy = proxy;
    this.options = options;
    this.backoff = new ReconnectBackoff(options);
    const Client = loadXdsProtos().service(ADS_SERVICE);
    this.client = new Client(options.target, grpc.credentials.createInsecure()) as unknown as AdsClient['client'];
    for (const t of ORDER) this.subs.set(t, { typeUrl: t, wildcard: t === TypeUrl.Cluster || t === TypeUrl.Listener, names: [], version: '', nonce: '', requested: false });
  }

  start(): void {
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.backoff.cancel();
    this.stream?.cancel();
    this.client.close();
    this.markInitialized();
  }

  private connect(): void {
    if (this.stopped) return;
    const stream = this.client.StreamAggregatedResources();
    this.stream = stream;
    this.sentNode = false;
    const connected = this.proxy.stats.gauge('control_plane.connected_state');
    stream.on('metadata', () => {
      connected.value = 1;
      this.backoff.reset();
    });
    stream.on('data', (res: DiscoveryResponse) => {
      connected.value = 1;
      this.queue = this.queue.then(() => this.onResponse(stream, res));
    });
    const retry = (err?: Error): void => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      connected.value = 0;
      if (this.stopped) return;
      const backoffMs = this.backoff.schedule(() => this.connect());
      this.options.logger.warn({ err: err?.message, backoffMs }, 'ADS stream closed; reconnecting');
    };
    stream.on('error', retry);
    stream.on('end', () => retry());
    // A new stream re-sends every subscription with the versions we hold.
    for (const sub of this.subs.values()) {
      sub.nonce = '';
      sub.requested = false;
      if (sub.wildcard || sub.names.length > 0) this.send(sub);
    }
  }

  private send(sub: Subscription, errorDetail?: string): void {
    const stream = this.stream;
    if (!stream) return;
    const req: DiscoveryRequest = { type_url: sub.typeUrl, version_info: sub.version, resource_names: sub.wildcard ? [] : sub.names, response_nonce: sub.nonce };
    if (!this.sentNode) {
      req.node = this.options.node;
      this.sentNode = true;
    }
    if (errorDetail !== undefined) req.error_detail = { code: grpc.status.INVALID_ARGUMENT, message: errorDetail };
    sub.requested = true;
    stream.write(req);
  }

  /** Changes the names of a non-wildcard subscription; sends a request when they differ. */
  private follow(typeUrl: string, names: string[]): void {
    const sub = this.subs.get(typeUrl)!;
    const sorted = [...new Set(names)].sort();
    if (sorted.join('\n') === sub.names.join('\n') && sub.requested) return;
    sub.names = sorted;
    if (sorted.length > 0 || sub.requested) this.send(sub);
  }

  private async onResponse(stream: Stream, res: DiscoveryResponse): Promise<void> {
    if (stream !== this.stream) return;
    const sub = this.subs.get(res.type_url);
    if (!sub) return;
    sub.nonce = res.nonce;
    const scope = STAT_SCOPE[res.type_url];
    const stats = this.proxy.stats;
    stats.counter(`${scope}.update_attempt`).value++;
    try {
      const resources = res.resources.map((any, i) => {
        if (any.type_url !== res.type_url) throw new Error(`resources[${i}]: type ${any.type_url} does not match the response type ${res.type_url}`);
        return unpackMessage<Record<string, any>>(any);
      });
      await applyResources(this.proxy, res.type_url, resources, res.version_info);
      sub.version = res.version_info;
      stats.counter(`${scope}.update_success`).value++;
      this.send(sub);
    } catch (err) {
      const message = (err as Error).message;
      stats.counter(`${scope}.update_rejected`).value++;
      this.options.logger.warn({ type: res.type_url, version: res.version_info, err: message }, 'xDS update rejected (NACK)');
      this.send(sub, message);
    }
    if (res.type_url === TypeUrl.Cluster) this.follow(TypeUrl.ClusterLoadAssignment, this.proxy.clusters.edsNames());
    if (res.type_url === TypeUrl.Listener) this.follow(TypeUrl.RouteConfiguration, this.proxy.listeners.rdsNames());
    // SDS over ADS: secrets named by the clusters and listeners just applied.
    if ((res.type_url === TypeUrl.Cluster || res.type_url === TypeUrl.Listener) && this.proxy.secrets) this.follow(TypeUrl.Secret, this.proxy.secrets.names({ kind: 'ads' }));
    this.seen.add(res.type_url);
    if (this.seen.has(TypeUrl.Cluster) && this.seen.has(TypeUrl.Listener)) this.markInitialized();
  }
}
