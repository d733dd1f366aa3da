// All clusters by name, swapped atomically: a request looks a cluster up once
// and keeps that object, so an update never changes a request mid-flight.
// Unchanged clusters (same decoded resource) keep their pool and hosts.

import { isDeepStrictEqual } from 'node:util';
import type { ClusterConfig, LoadAssignment } from '../config/cluster-config.ts';
import type { StatsStore } from '../stats.ts';
import { Cluster } from './cluster.ts';
import type { Clock } from '../clock.ts';
import { realClock } from '../clock.ts';

export interface ClusterInfo {
  readonly cluster: Cluster;
  /** xDS version_info, or undefined for static clusters. */
  readonly version: string | undefined;
  readonly lastUpdated: Date;
}

export class ClusterManager {
  private clusters = new Map<string, ClusterInfo>();
  // EDS assignments outlive cluster updates: a re-created cluster keeps its endpoints.
  private readonly assignments = new Map<string, LoadAssignment>();
  private readonly store: StatsStore;
  /** The clock clusters run outlier detection and health checks on (a ManualClock in tests). */
  readonly clock: Clock;

  constructor(store: StatsStore, clock: Clock = realClock) {
    this.store = store;
    this.clock = clock;
  }

  get(name: string): Cluster | undefined {
    return this.clusters.get(name)?.cluster;
  }

  all(): readonly ClusterInfo[] {
    return [...this.clusters.values()];
  }

  /**
   * Replaces the set of dynamic (or, with `isStatic`, static) clusters.
   * Static clusters are never removed by a dynamic update.
   */
  update(configs: readonly ClusterConfig[], version: string | undefined, isStatic = false): void {
    const next = new Map<string, ClusterInfo>();
    for (const [name, info] of this.clusters) if ((info.version === undefined) !== isStatic) next.set(name, info);
    const c = (n: string): void => void this.store.counter(`cluster_manager.${n}`).value++;
    for (const config of configs) {
      const old = this.clusters.get(config.name);
      if (old && isDeepStrictEqual(old.cluster.config.raw, config.raw)) {
        next.set(config.name, { ...old, version });
        continue;
      }
      const cluster = new Cluster(config, this.store, this.clock);
      const la = config.edsServiceName ? this.assignments.get(config.edsServiceName) : undefined;
      if (la) cluster.setEndpoints(la.endpoints);
      next.set(config.name, { cluster, version, lastUpdated: new Date() });
      c(old ? 'cluster_modified' : 'cluster_added');
      old?.cluster.close();
    }
    for (const [name, info] of this.clusters) {
      if (!next.has(name)) {
        info.cluster.close();
        c('cluster_removed');
      }
    }
    this.clusters = next;
    this.store.gauge('cluster_manager.active_clusters').value = next.size;
  }

  /** EDS resource names the current clusters want. */
  edsNames(): string[] {
    return [...this.clusters.values()].map((i) => i.cluster.config.edsServiceName).filter((n): n is string => n !== undefined);
  }

  applyLoadAssignment(la: LoadAssignment): void {
    this.assignments.set(la.clusterName, la);
    for (const { cluster } of this.clusters.values()) if (cluster.config.edsServiceName === la.clusterName) cluster.applyLoadAssignment(la);
  }

  /** Waits for every cluster's first host set (DNS clusters resolve asynchronously). */
  async initialized(): Promise<void> {
    await Promise.all([...this.clusters.values()].map((i) => i.cluster.initialized));
  }

  close(): void {
    for (const info of this.clusters.values()) info.cluster.close();
    this.clusters = new Map();
  }
}
