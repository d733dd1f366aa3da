// The incremental (delta) xDS client: one DeltaAggregatedResources stream.
// The server sends only what changed; the client keeps the resources it
// holds per type, applies the merged set through the same validated path as
// state of the world, and ACKs or NACKs by nonce. A NACK drops the merge, so
// the proxy keeps its last good config; on reconnect the client tells the
// server the versions it holds (initial_resource_versions).

import * as grpc from '@grpc/grpc-js';
import { ADS_SERVICE, TypeUrl, loadXdsProtos, unpackMessage } from '../../xds/index.ts';
import type { DeltaDiscoveryRequest, DeltaDiscoveryResponse } from '../../xds/index.ts';
import type { AdsClientOptions } from './ads-client.ts';
import type { XdsConfigSink } from './xds-sink.ts';
import { ORDER, STAT_SCOPE, applyResources } from './xds-sink.ts';
import { ReconnectBackoff } from './reconnect-backoff.ts';

interface DeltaSubscription {
  readonly typeUrl: string;
  readonly wildcard: boolean;
  names: Set<string>;
  /** Accepted resources by name: version and decoded body. */
  held: Map<string, { version: string; resource: Record<string, any> }>;
  started: boolean;
}

type Stream = grpc.ClientDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;

export class DeltaAdsClient {
  private readonly sink: XdsConfigSink;
  private readonly options: AdsClientOptions;
  private readonly client: grpc.Client & { DeltaAggregatedResources(): Stream };
  private readonly subs = new Map<string, DeltaSubscription>();
  private stream: Stream | undefined;
  private queue: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly backoff: ReconnectBackoff;
  private sentNode = false;
  private readonly seen = new Set<string>();
  private markInitialized!: () => void;
  readonly initialized: Promise<void> = new Promise((r) => (this.markInitialized = r));

  constructor(sink: XdsConfigSink, options: AdsClientOptions) {
    this.sink = sink;
    this.options = options;
    this.backoff = new ReconnectBackoff(options);
    const Client = loadXdsProtos().service(ADS_SERVICE);
    this.client = new Client(options.target, grpc.credentials.createInsecure()) as unknown as DeltaAdsClient['client'];
    for (const t of ORDER) this.subs.set(t, { typeUrl: t, wildcard: t === TypeUrl.Cluster || t === TypeUrl.Listener, names: new Set(), held: new Map(), started: false });
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
    const stream = this.client.DeltaAggregatedResources();
    this.stream = stream;
    this.sentNode = false;
    const connected = this.sink.stats.gauge('control_plane.connected_state');
    stream.on('data', (res: DeltaDiscoveryResponse) => {
      connected.value = 1;
      this.backoff.reset();
      this.queue = this.queue.then(() => this.onResponse(stream, res));
    });
    const retry = (err?: Error): void => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      connected.value = 0;
      if (this.stopped) return;
      const backoffMs = this.backoff.schedule(() => this.connect());
      this.options.logger.warn({ err: err?.message, backoffMs }, 'delta ADS stream closed; reconnecting');
    };
    stream.on('error', retry);
    stream.on('end', () => retry());
    for (const sub of this.subs.values()) {
      sub.started = false;
      if (sub.wildcard || sub.names.size > 0) this.subscribe(sub, [...sub.names], []);
    }
  }

  private write(req: DeltaDiscoveryRequest): void {
    if (!this.stream) return;
    if (!this.sentNode) {
      req.node = this.options.node;
      this.sentNode = true;
    }
    this.stream.write(req);
  }

  private subscribe(sub: DeltaSubscription, add: string[], remove: string[]): void {
    const req: DeltaDiscoveryRequest = { type_url: sub.typeUrl, resource_names_subscribe: add, resource_names_unsubscribe: remove };
    if (!sub.started) {
      // The first request of a type on a stream names what we already hold.
      req.initial_resource_versions = Object.fromEntries([...sub.held].map(([n, h]) => [n, h.version]));
      if (sub.wildcard) req.resource_names_subscribe = ['*'];
      sub.started = true;
    }
    this.write(req);
  }

  private follow(typeUrl: string, names: string[]): void {
    const sub = this.subs.get(typeUrl)!;
    const next = new Set(names);
    const add = [...next].filter((n) => !sub.names.has(n));
    const remove = [...sub.names].filter((n) => !next.has(n));
    if (add.length === 0 && remove.length === 0) return;
    sub.names = next;
    for (const n of remove) sub.held.delete(n);
    this.subscribe(sub, add, remove);
  }

  private async onResponse(stream: Stream, res: DeltaDiscoveryResponse): Promise<void> {
    if (stream !== this.stream) return;
    const sub = this.subs.get(res.type_url);
    if (!sub) return;
    const scope = STAT_SCOPE[res.type_url];
    const stats = this.sink.stats;
    stats.counter(`${scope}.update_attempt`).value++;
    try {
      const merged = new Map(sub.held);
      for (const name of res.removed_resources) merged.delete(name);
      res.resources.forEach((r, i) => {
        if (!r.resource) throw new Error(`resources[${i}] "${r.name}": no resource body`);
        if (r.resource.type_url !== res.type_url) throw new Error(`resources[${i}] "${r.name}": type ${r.resource.type_url} does not match the response type ${res.type_url}`);
        merged.set(r.name, { version: r.version, resource: unpackMessage<Record<string, any>>(r.resource) });
      });
      await applyResources(this.sink, res.type_url, [...merged.values()].map((h) => h.resource), res.system_version_info);
      sub.held = merged;
      stats.counter(`${scope}.update_success`).value++;
      this.write({ type_url: res.type_url, response_nonce: res.nonce });
    } catch (err) {
      const message = (err as Error).message;
      stats.counter(`${scope}.update_rejected`).value++;
      this.options.logger.warn({ type: res.type_url, err: message }, 'delta xDS update rejected (NACK)');
      this.write({ type_url: res.type_url, response_nonce: res.nonce, error_detail: { code: grpc.status.INVALID_ARGUMENT, message } });
    }
    if (res.type_url === TypeUrl.Cluster) this.follow(TypeUrl.ClusterLoadAssignment, this.sink.clusters.edsNames());
    if (res.type_url === TypeUrl.Listener) this.follow(TypeUrl.RouteConfiguration, this.sink.listeners.rdsNames());
    // SDS over ADS: secrets named by the clusters and listeners just applied.
    if ((res.type_url === TypeUrl.Cluster || res.type_url === TypeUrl.Listener) && this.sink.secrets) this.follow(TypeUrl.Secret, this.sink.secrets.names({ kind: 'ads' }));
    this.seen.add(res.type_url);
    if (this.seen.has(TypeUrl.Cluster) && this.seen.has(TypeUrl.Listener)) this.markInitialized();
  }
}
