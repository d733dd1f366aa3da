// Istio's standard telemetry filters, added by default to every sidecar and
// gateway listener as Istio (1.18+, Telemetry API) generates them:
//
//   HTTP: `istio.metadata_exchange` first (io.istio.http.peer_metadata.Config:
//         the peer's workload labels travel in x-envoy-peer-metadata headers),
//         `istio.stats` last before the router (stats.PluginConfig);
//   TCP:  `istio.stats` just before tcp_proxy, passthrough and blackhole
//         chains included, so egress shows up as PassthroughCluster.
//
// Both configs are TypedStructs, Istio's form for its own extensions. The
// HTTP filters are `is_optional`, so an Envoy without Istio's extensions
// still accepts the listener and skips them; the network filter has no such
// flag in Envoy's API and needs a proxy that has `istio.stats` (Istio's
// proxy, or ours), as in Istio. Our proxy's `istio.stats` also does the HTTP
// header exchange itself, so `istio.metadata_exchange` is one it skips.
// There is no TCP metadata exchange (Istio's `istio-peer-exchange` ALPN):
// TCP series carry `unknown` for the peer.
//
// Turning it off, with Istio's own knobs:
//   - MeshConfig `defaultProviders.metrics: []` (no metrics provider) mesh-wide;
//   - a Telemetry (root namespace: mesh; a namespace; a workload selector)
//     whose `metrics` name no Prometheus provider, or override with
//     `disabled: true` for ALL_METRICS, optionally only in mode CLIENT
//     (outbound, gateways) or SERVER (inbound).
// The most specific Telemetry with `metrics` wins: workload > namespace > root.
// Proxyless gRPC clients never get these filters (gRPC has no such filters).

import type { ConfigObject } from '../../api/index.ts';
import type { TelemetrySpec } from '../../api/kinds/telemetry/telemetry.ts';
import type { ProxyNode } from '../model/index.ts';
import type { PushContext } from '../push-context.ts';
import { labelsMatch } from './hosts.ts';

export const TELEMETRY_TYPE = 'telemetry.istio.io/v1/Telemetry';
export const METADATA_EXCHANGE_FILTER = 'istio.metadata_exchange';
export const STATS_FILTER = 'istio.stats';

const TYPED_STRUCT = 'type.googleapis.com/udpa.type.v1.TypedStruct';
const PEER_METADATA_CONFIG = 'type.googleapis.com/io.istio.http.peer_metadata.Config';
const STATS_CONFIG = 'type.googleapis.com/stats.PluginConfig';

type Filter = Readonly<Record<string, unknown>>;

/** The telemetry filters of one listener class; every list empty when telemetry is off. */
export interface TelemetryFilters {
  /** HTTP filters placed first, before the security filters (metadata exchange). */
  readonly httpFirst: readonly Filter[];
  /** HTTP filters placed last, just before the router (istio.stats). */
  readonly httpLast: readonly Filter[];
  /** Network filters placed just before tcp_proxy. */
  readonly network: readonly Filter[];
}

export const NO_TELEMETRY: TelemetryFilters = Object.freeze({ httpFirst: [], httpLast: [], network: [] });

/** Istio's listener classes: outbound of a sidecar, inbound of a sidecar, a gateway. */
export type ListenerClass = 'outbound' | 'inbound' | 'gateway';

function typedStruct(typeUrl: string, value: Record<string, unknown>): Filter {
  return { '@type': TYPED_STRUCT, type_url: typeUrl, value };
}

const deepFreeze = <T>(o: T): T => {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
};

// Shared, immutable values: every listener of every proxy points at the same objects.
const FILTERS: Record<ListenerClass, TelemetryFilters> = deepFreeze({
  outbound: {
    httpFirst: [{ name: METADATA_EXCHANGE_FILTER, is_optional: true, typed_config: typedStruct(PEER_METADATA_CONFIG, { upstream_discovery: [{ istio_headers: {} }, { workload_discovery: {} }], upstream_propagation: [{ istio_headers: {} }] }) }],
    httpLast: [{ name: STATS_FILTER, is_optional: true, typed_config: typedStruct(STATS_CONFIG, {}) }],
    network: [{ name: STATS_FILTER, typed_config: typedStruct(STATS_CONFIG, {}) }],
  },
  // Our proxy names the inbound service from the Host header when the inbound
  // cluster (`inbound|9080||`) carries none, so inbound keeps that fallback.
  inbound: {
    httpFirst: [{ name: METADATA_EXCHANGE_FILTER, is_optional: true, typed_config: typedStruct(PEER_METADATA_CONFIG, { downstream_discovery: [{ istio_headers: {} }, { workload_discovery: {} }], downstream_propagation: [{ istio_headers: {} }] }) }],
    httpLast: [{ name: STATS_FILTER, is_optional: true, typed_config: typedStruct(STATS_CONFIG, {}) }],
    network: [{ name: STATS_FILTER, typed_config: typedStruct(STATS_CONFIG, {}) }],
  },
  // Gateways report as a client (reporter=source) and never trust the Host header for the service.
  gateway: {
    httpFirst: [{ name: METADATA_EXCHANGE_FILTER, is_optional: true, typed_config: typedStruct(PEER_METADATA_CONFIG, { upstream_discovery: [{ istio_headers: {} }, { workload_discovery: {} }], upstream_propagation: [{ istio_headers: {} }] }) }],
    httpLast: [{ name: STATS_FILTER, is_optional: true, typed_config: typedStruct(STATS_CONFIG, { disable_host_header_fallback: true }) }],
    network: [{ name: STATS_FILTER, typed_config: typedStruct(STATS_CONFIG, { disable_host_header_fallback: true }) }],
  },
});

type Mode = 'CLIENT' | 'SERVER';

function modeOf(cls: ListenerClass): Mode {
  return cls === 'inbound' ? 'SERVER' : 'CLIENT';
}

function hasSelector(spec: TelemetrySpec): boolean {
  return Object.keys(spec.selector?.matchLabels ?? {}).length > 0;
}

/** The Telemetry whose `metrics` apply to the proxy: workload > namespace > root namespace; the oldest wins a tie. */
function metricsTelemetry(push: PushContext, proxy: ProxyNode): ConfigObject<TelemetrySpec> | undefined {
  const root = push.mesh.rootNamespace;
  let best: { obj: ConfigObject<TelemetrySpec>; rank: number; age: number } | undefined;
  for (const obj of push.snapshot.objects(TELEMETRY_TYPE) as ConfigObject<TelemetrySpec>[]) {
    const spec = obj.spec ?? {};
    if (!spec.metrics || spec.targetRef !== undefined || (spec.targetRefs?.length ?? 0) > 0) continue;
    const ns = obj.metadata.namespace ?? '';
    if (ns !== proxy.namespace && ns !== root) continue;
    const selected = hasSelector(spec);
    if (selected && !labelsMatch(spec.selector!.matchLabels!, proxy.labels)) continue;
    const rank = (ns === proxy.namespace ? 2 : 0) + (selected ? 1 : 0);
    const age = Date.parse(obj.metadata.creationTimestamp ?? '') || 0;
    if (!best || rank > best.rank || (rank === best.rank && age < best.age)) best = { obj, rank, age };
  }
  return best?.obj;
}

function isPrometheus(push: PushContext, name: string): boolean {
  return push.mesh.extensionProviders.some((p) => p.name === name && p.prometheus !== undefined);
}

/** Whether Istio's standard metrics are on for the proxy in a mode, after MeshConfig defaults and Telemetry. */
export function metricsEnabled(push: PushContext, proxy: ProxyNode, mode: Mode): boolean {
  const defaults = push.mesh.defaultProviders.metrics ?? ['prometheus'];
  const telemetry = metricsTelemetry(push, proxy);
  if (!telemetry) return defaults.some((n) => isPrometheus(push, n));
  let enabled = false;
  for (const m of telemetry.spec.metrics ?? []) {
    const providers = m.providers?.map((p) => p.name) ?? defaults;
    if (!providers.some((n) => isPrometheus(push, n))) continue;
    let disabled = false;
    // Later overrides win, as Istio applies them in order.
    for (const o of m.overrides ?? []) {
      const metric = o.match?.metric ?? (o.match?.customMetric === undefined ? 'ALL_METRICS' : undefined);
      const oMode = o.match?.mode ?? 'CLIENT_AND_SERVER';
      if (metric !== 'ALL_METRICS' || (oMode !== 'CLIENT_AND_SERVER' && oMode !== mode) || o.disabled === undefined) continue;
      disabled = o.disabled;
    }
    if (!disabled) enabled = true;
  }
  return enabled;
}

/** The telemetry filters for one listener class of a proxy; NO_TELEMETRY when metrics are off for it. */
export function telemetryFilters(push: PushContext, proxy: ProxyNode, cls: ListenerClass): TelemetryFilters {
  if (proxy.generator === 'grpc') return NO_TELEMETRY;
  return metricsEnabled(push, proxy, modeOf(cls)) ? FILTERS[cls] : NO_TELEMETRY;
}

/** What the telemetry filters of a proxy depend on, for the listener memo keys: on/off per mode. */
export function telemetryKey(push: PushContext, proxy: ProxyNode): string {
  return `tm:${metricsEnabled(push, proxy, 'CLIENT') ? 'c' : '-'}${metricsEnabled(push, proxy, 'SERVER') ? 's' : '-'}`;
}

/** `filters` with the network telemetry filters in front of the terminal one (tcp_proxy). */
export function withNetworkTelemetry(t: TelemetryFilters, filters: readonly Record<string, unknown>[]): Record<string, unknown>[] {
  if (t.network.length === 0 || filters.length === 0) return [...filters];
  return [...filters.slice(0, -1), ...t.network, filters[filters.length - 1]!];
}
