// Pilot's xDS metrics under Istio's names, so existing dashboards work:
// pilot_xds_pushes{type}, pilot_xds_push_time{type}, pilot_xds,
// pilot_total_xds_rejects{type}, pilot_xds_send_time, pilot_debounce_time,
// pilot_proxy_convergence_time. Durations are in seconds, as Istio's are.

import type { Registry } from 'prom-client';
import { Counter, Gauge, Histogram } from 'prom-client';
import { XDS_SHORT_NAMES } from '../../xds/index.ts';

/** The `type` label: `cds`, `eds`, `lds`, `rds`, `sds`, or `other` (labels come from a fixed set). */
export function typeLabel(typeUrl: string): string {
  return XDS_SHORT_NAMES[typeUrl]?.toLowerCase() ?? 'other';
}

const BUCKETS = [0.01, 0.1, 0.5, 1, 3, 5, 10, 20, 30];

export interface XdsMetrics {
  push(typeUrl: string, seconds: number): void;
  reject(typeUrl: string): void;
  send(seconds: number): void;
  debounce(seconds: number): void;
  convergence(seconds: number): void;
}

export const noMetrics: XdsMetrics = { push() {}, reject() {}, send() {}, debounce() {}, convergence() {} };

export function createXdsMetrics(registry: Registry, connections: () => number): XdsMetrics {
  const registers = [registry];
  const pushes = new Counter({ name: 'pilot_xds_pushes', help: 'Pilot pushes of lds, rds, cds and eds.', labelNames: ['type'], registers });
  const pushTime = new Histogram({ name: 'pilot_xds_push_time', help: 'Total time in seconds Pilot takes to push lds, rds, cds and eds.', labelNames: ['type'], buckets: BUCKETS, registers });
  new Gauge({ name: 'pilot_xds', help: 'Number of endpoints connected to this pilot using XDS.', registers, collect() { this.set(connections()); } });
  const rejects = new Counter({ name: 'pilot_total_xds_rejects', help: 'Total number of XDS responses from pilot rejected by proxy.', labelNames: ['type'], registers });
  const sendTime = new Histogram({ name: 'pilot_xds_send_time', help: 'Total time in seconds Pilot takes to send generated configuration.', buckets: BUCKETS, registers });
  const debounceTime = new Histogram({ name: 'pilot_debounce_time', help: 'Delay in seconds between the first config enters debouncing and the merged push request is pushed into the push queue.', buckets: BUCKETS, registers });
  const convergence = new Histogram({ name: 'pilot_proxy_convergence_time', help: 'Delay in seconds between config change and a proxy receiving all required configuration.', buckets: BUCKETS, registers });
  return {
    push: (typeUrl, seconds) => {
      pushes.inc({ type: typeLabel(typeUrl) });
      pushTime.observe({ type: typeLabel(typeUrl) }, seconds);
    },
    reject: (typeUrl) => rejects.inc({ type: typeLabel(typeUrl) }),
    send: (seconds) => sendTime.observe(seconds),
    debounce: (seconds) => debounceTime.observe(seconds),
    convergence: (seconds) => convergence.observe(seconds),
  };
}
