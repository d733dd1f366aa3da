// What both xDS clients (state of the world and delta) share: where accepted
// resources go, the order of the APIs, and the stat scopes of each.

import { TypeUrl } from '../../xds/index.ts';
import type { StatsStore } from '../stats.ts';

/** Where accepted resources go (the Proxy class provides it); apply* throw to NACK. */
export interface XdsConfigSink {
  readonly stats: StatsStore;
  readonly clusters: { edsNames(): string[] };
  readonly listeners: { rdsNames(): string[] };
  applyClusters(resources: readonly Record<string, any>[], version: string): unknown;
  applyEndpoints(resources: readonly Record<string, any>[]): void;
  applyListeners(resources: readonly Record<string, any>[], version: string): Promise<unknown>;
  applyRoutes(resources: readonly Record<string, any>[], version: string): void;
  /** SDS over ADS: the secret names TLS contexts wait for, and where responses go. */
  readonly secrets?: { names(source: { kind: 'ads' }): string[] };
  applySecrets?(resources: readonly Record<string, any>[], version: string): void;
}


/** The xDS APIs the proxy consumes, in the order Envoy applies them. */
export const ORDER = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration, TypeUrl.Secret];

export const STAT_SCOPE: Record<string, string> = {
  [TypeUrl.Cluster]: 'cluster_manager.cds',
  [TypeUrl.ClusterLoadAssignment]: 'cluster_manager.eds',
  [TypeUrl.Listener]: 'listener_manager.lds',
  [TypeUrl.RouteConfiguration]: 'http.rds',
  [TypeUrl.Secret]: 'sds',
};

/** Applies one API's full resource set; throws (-> NACK) without changing anything when invalid. */
export async function applyResources(sink: XdsConfigSink, typeUrl: string, resources: Record<string, any>[], version: string): Promise<void> {
  switch (typeUrl) {
    case TypeUrl.Cluster:
      sink.applyClusters(resources, version);
      break;
    case TypeUrl.ClusterLoadAssignment:
      sink.applyEndpoints(resources);
      break;
    case TypeUrl.Listener:
      await sink.applyListeners(resources, version);
      break;
    case TypeUrl.RouteConfiguration:
      sink.applyRoutes(resources, version);
      break;
    case TypeUrl.Secret:
      sink.applySecrets?.(resources, version);
      break;
  }
}
