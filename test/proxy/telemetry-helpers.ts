// Builders for telemetry tests: a sidecar pair (outbound proxy -> inbound
// proxy -> app) with Istio's node metadata, `istio.stats` in a TypedStruct,
// and Prometheus text parsing.

import { HCM, ROUTER, get } from './helpers.ts';

export const TYPED_STRUCT = 'type.googleapis.com/udpa.type.v1.TypedStruct';
export const STATS_CONFIG = 'type.googleapis.com/stats.PluginConfig';

export const statsFilter = (value: Record<string, unknown> = {}): object => ({ name: 'istio.stats', typed_config: { '@type': TYPED_STRUCT, type_url: STATS_CONFIG, value } });

/** An Istio-like node: id, cluster and metadata (NAME, NAMESPACE, LABELS, WORKLOAD_NAME, CLUSTER_ID). */
export function istioNode(app: string, version: string, ns = 'default'): object {
  return {
    id: `sidecar~127.0.0.1~${app}-${version}-abc.${ns}~${ns}.svc.cluster.local`,
    cluster: `${app}.${ns}`,
    metadata: { NAME: `${app}-${version}-abc`, NAMESPACE: ns, WORKLOAD_NAME: `${app}-${version}`, CLUSTER_ID: 'Kubernetes', LABELS: { app, version }, SERVICE_ACCOUNT: `bookinfo-${app}` },
  };
}

export function route(cluster: string): object {
  return { name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster } }] }] };
}

/** A listener with traffic_direction and an HCM whose filters are `filters` + router. */
export function directedListener(name: string, direction: 'INBOUND' | 'OUTBOUND', cluster: string, filters: object[], hcm: Record<string, unknown> = {}, chain: Record<string, unknown> = {}): object {
  return {
    name,
    traffic_direction: direction,
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    filter_chains: [
      {
        ...chain,
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: { '@type': HCM, stat_prefix: name, route_config: route(cluster), http_filters: [...filters, { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }], ...hcm },
          },
        ],
      },
    ],
  };
}

export interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** Parses Prometheus text exposition samples (no escapes beyond \" \\ \n). */
export function parsePrometheus(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`bad exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, (_x, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

export async function scrape(adminPort: number): Promise<Sample[]> {
  const r = await get(adminPort, '/stats/prometheus');
  if (r.status !== 200) throw new Error(`scrape: ${r.status}`);
  return parsePrometheus(r.body);
}

export const find = (samples: readonly Sample[], name: string, match: Record<string, string>): Sample[] => samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
