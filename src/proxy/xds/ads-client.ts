// The xDS client: one ADS stream (state of the world) to the management
// server named in dynamic_resources. CDS and LDS are wildcard; EDS and RDS
// follow the names the current clusters and listeners need. Every response
// is decoded and validated as a whole; a failure is NACKed with the error
// text and the proxy keeps its last good config. Updates apply in order, one
// at a time; the stream reconnects with capped exponential backoff.

import * as grpc from '@grpc/grpc-js';
import { TypeUrl, unpackMessage } from '../../xds/index.ts';
import type { DiscoveryRequest, DiscoveryResponse } from '../../xds/index.ts';
import type { XdsConfigSink } from './xds-sink.ts';
import { ORDER, STAT_SCOPE, applyResources } from './xds-sink.ts';
import { AdsStreamClient } from './ads-stream-client.ts';
import type { AdsClientOptions } from './ads-stream-client.ts';

export type { AdsClientOptions } from './ads-stream-client.ts';

interface Subscription {
  readonly typeUrl: string;
  readonly wildcard: boolean;
  names: string[];
  /** Last accepted version_info, and the nonce of the last response seen. */
  version: string;
  nonce: string;
  requested: boolean;
}

export class AdsClient extends AdsStreamClient<DiscoveryRequest, DiscoveryResponse> {
  private readonly subs = new Map<string, Subscription>();

  constructor(sink: XdsConfigSink, options: AdsClientOptions) {
    super(sink, options, 'StreamAggregatedResources', 'ADS');
    for (const t of ORDER) this.subs.set(t, { typeUrl: t, wildcard: t === TypeUrl.Cluster || t === TypeUrl.Listener, names: [], version: '', nonce: '', requested: false });
  }

  protected resubscribe(): void {
    // A new stream re-sends every subscription with the versions we hold.
    for (const sub of this.subs.values()) {
      sub.nonce = '';
      sub.requested = false;
      if (sub.wildcard || sub.names.length > 0) this.send(sub);
    }
  }

  private send(sub: Subscription, errorDetail?: string): void {
    if (!this.stream) return;
    const req: DiscoveryRequest = { type_url: sub.typeUrl, version_info: sub.version, resource_names: sub.wildcard ? [] : sub.names, response_nonce: sub.nonce };
    if (errorDetail !== undefined) req.error_detail = { code: grpc.status.INVALID_ARGUMENT, message: errorDetail };
    sub.requested = true;
    this.write(req);
  }

  /** Changes the names of a non-wildcard subscription; sends a request when they differ. */
  protected follow(typeUrl: string, names: string[]): void {
    const sub = this.subs.get(typeUrl)!;
    const sorted = [...new Set(names)].sort();
    if (sorted.join('\n') === sub.names.join('\n') && sub.requested) return;
    sub.names = sorted;
    if (sorted.length > 0 || sub.requested) this.send(sub);
  }

  protected async handle(res: DiscoveryResponse): Promise<boolean> {
    const sub = this.subs.get(res.type_url);
    if (!sub) return false;
    sub.nonce = res.nonce;
    const scope = STAT_SCOPE[res.type_url];
    const stats = this.sink.stats;
    stats.counter(`${scope}.update_attempt`).value++;
    try {
      const resources = res.resources.map((any, i) => {
        if (any.type_url !== res.type_url) throw new Error(`resources[${i}]: type ${any.type_url} does not match the response type ${res.type_url}`);
        return unpackMessage<Record<string, any>>(any);
      });
      await applyResources(this.sink, res.type_url, resources, res.version_info);
      sub.version = res.version_info;
      stats.counter(`${scope}.update_success`).value++;
      this.send(sub);
    } catch (err) {
      const message = (err as Error).message;
      stats.counter(`${scope}.update_rejected`).value++;
      this.options.logger.warn({ type: res.type_url, version: res.version_info, err: message }, 'xDS update rejected (NACK)');
      this.send(sub, message);
    }
    return true;
  }
}
