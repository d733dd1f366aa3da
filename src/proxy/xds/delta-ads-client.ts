// The incremental (delta) xDS client: one DeltaAggregatedResources stream.
// The server sends only what changed; the client keeps the resources it
// holds per type, applies the merged set through the same validated path as
// state of the world, and ACKs or NACKs by nonce. A NACK drops the merge, so
// the proxy keeps its last good config; on reconnect the client tells the
// server the versions it holds (initial_resource_versions).

import * as grpc from '@grpc/grpc-js';
import { TypeUrl, unpackMessage } from '../../xds/index.ts';
import type { DeltaDiscoveryRequest, DeltaDiscoveryResponse } from '../../xds/index.ts';
import type { XdsConfigSink } from './xds-sink.ts';
import { ORDER, STAT_SCOPE, applyResources } from './xds-sink.ts';
import { AdsStreamClient } from './ads-stream-client.ts';
import type { AdsClientOptions } from './ads-stream-client.ts';

interface DeltaSubscription {
  readonly typeUrl: string;
  readonly wildcard: boolean;
  names: Set<string>;
  /** Accepted resources by name: version and decoded body. */
  held: Map<string, { version: string; resource: Record<string, any> }>;
  started: boolean;
}

export class DeltaAdsClient extends AdsStreamClient<DeltaDiscoveryRequest, DeltaDiscoveryResponse> {
  private readonly subs = new Map<string, DeltaSubscription>();

  constructor(sink: XdsConfigSink, options: AdsClientOptions) {
    super(sink, options, 'DeltaAggregatedResources', 'delta ADS');
    for (const t of ORDER) this.subs.set(t, { typeUrl: t, wildcard: t === TypeUrl.Cluster || t === TypeUrl.Listener, names: new Set(), held: new Map(), started: false });
  }

  protected resubscribe(): void {
    for (const sub of this.subs.values()) {
      sub.started = false;
      if (sub.wildcard || sub.names.size > 0) this.subscribe(sub, [...sub.names], []);
    }
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

  protected follow(typeUrl: string, names: string[]): void {
    const sub = this.subs.get(typeUrl)!;
    const next = new Set(names);
    const add = [...next].filter((n) => !sub.names.has(n));
    const remove = [...sub.names].filter((n) => !next.has(n));
    if (add.length === 0 && remove.length === 0) return;
    sub.names = next;
    for (const n of remove) sub.held.delete(n);
    this.subscribe(sub, add, remove);
  }

  protected async handle(res: DeltaDiscoveryResponse): Promise<boolean> {
    const sub = this.subs.get(res.type_url);
    if (!sub) return false;
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
    return true;
  }
}
