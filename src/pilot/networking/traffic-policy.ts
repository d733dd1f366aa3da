// A DestinationRule's traffic policy as it applies to one cluster (port and
// subset), and its translation into Cluster fields: load balancer, circuit
// breakers, outlier detection, connection options, HTTP protocol options.

import type { DestinationRuleSpec } from '../../api/index.ts';
import type { ConnectionPoolSettings, LoadBalancerSettings, OutlierDetection, TrafficPolicy } from '../../api/kinds/networking/traffic-policy.ts';
import type { ClientTlsSettings } from '../../api/kinds/networking/tls-settings.ts';
import type { MeshConfig } from '../../api/index.ts';
import { duration, seconds, typed, u32 } from './envoy-values.ts';

/** The four settings that decide a cluster, after port-level and subset overrides. */
export interface EffectivePolicy {
  readonly loadBalancer?: LoadBalancerSettings;
  readonly connectionPool?: ConnectionPoolSettings;
  readonly outlierDetection?: OutlierDetection;
  readonly tls?: ClientTlsSettings;
}

function applyLevel(base: EffectivePolicy, tp: TrafficPolicy | undefined, port: number): EffectivePolicy {
  if (!tp) return base;
  let out: EffectivePolicy = {
    loadBalancer: tp.loadBalancer ?? base.loadBalancer,
    connectionPool: tp.connectionPool ?? base.connectionPool,
    outlierDetection: tp.outlierDetection ?? base.outlierDetection,
    tls: tp.tls ?? base.tls,
  };
  // portLevelSettings replace each setting wholesale for their port, as Istio does.
  const pl = (tp.portLevelSettings ?? []).find((p) => p.port?.number === port);
  if (pl) {
    out = {
      loadBalancer: pl.loadBalancer ?? out.loadBalancer,
      connectionPool: pl.connectionPool ?? out.connectionPool,
      outlierDetection: pl.outlierDetection ?? out.outlierDetection,
      tls: pl.tls ?? out.tls,
    };
  }
  return out;
}

/** Rule-wide policy, then its port level, then the subset's policy and its port level. */
export function effectivePolicy(dr: DestinationRuleSpec | undefined, port: number, subset: string): EffectivePolicy {
  if (!dr) return {};
  const top = applyLevel({}, dr.trafficPolicy, port);
  const s = subset ? dr.subsets?.find((x) => x.name === subset) : undefined;
  return applyLevel(top, s?.trafficPolicy, port);
}

/** Subset labels, or undefined when the rule has no such subset. */
export function subsetLabels(dr: DestinationRuleSpec | undefined, subset: string): Readonly<Record<string, string>> | undefined {
  if (!subset) return {};
  const s = dr?.subsets?.find((x) => x.name === subset);
  return s ? (s.labels ?? {}) : undefined;
}

const MAX_U32 = 4294967295;

/** Cluster fields for load balancing; `hashRouted` true means a consistent-hash policy needs route hash_policy. */
export function loadBalancerFields(lb: LoadBalancerSettings | undefined, outlier: OutlierDetection | undefined, mesh: MeshConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const ch = lb?.consistentHash;
  if (ch) {
    if (ch.maglev) {
      out.lb_policy = 'MAGLEV';
      if (ch.maglev.tableSize) out.maglev_lb_config = { table_size: u32(ch.maglev.tableSize) };
    } else {
      out.lb_policy = 'RING_HASH';
      out.ring_hash_lb_config = { minimum_ring_size: u32(ch.ringHash?.minimumRingSize ?? ch.minimumRingSize ?? 1024) };
    }
  } else {
    switch (lb?.simple) {
      case 'LEAST_CONN':
      case 'LEAST_REQUEST': out.lb_policy = 'LEAST_REQUEST'; break;
      case 'RANDOM': out.lb_policy = 'RANDOM'; break;
      case 'ROUND_ROBIN': out.lb_policy = 'ROUND_ROBIN'; break;
      case 'PASSTHROUGH': out.lb_policy = 'CLUSTER_PROVIDED'; break;
      default: break; // Envoy's default, ROUND_ROBIN: what every xDS client supports.
    }
  }
  const common: Record<string, unknown> = {};
  const locality = lb?.localityLbSetting ?? mesh.localityLbSetting;
  if (locality?.enabled !== false && (locality?.distribute?.length ?? 0) > 0) common.locality_weighted_lb_config = {};
  if (outlier?.minHealthPercent !== undefined) common.healthy_panic_threshold = { value: outlier.minHealthPercent };
  if (Object.keys(common).length > 0) out.common_lb_config = common;
  return out;
}

/** Route hash policies for a consistent-hash load balancer; empty when none. */
export function hashPolicies(lb: LoadBalancerSettings | undefined): Record<string, unknown>[] {
  const ch = lb?.consistentHash;
  if (!ch) return [];
  if (ch.httpHeaderName) return [{ header: { header_name: ch.httpHeaderName } }];
  if (ch.httpCookie) {
    const cookie: Record<string, unknown> = { name: ch.httpCookie.name };
    if (ch.httpCookie.path) cookie.path = ch.httpCookie.path;
    const ttl = duration(ch.httpCookie.ttl);
    if (ttl) cookie.ttl = ttl;
    return [{ cookie }];
  }
  if (ch.useSourceIp) return [{ connection_properties: { source_ip: true } }];
  if (ch.httpQueryParameterName) return [{ query_parameter: { name: ch.httpQueryParameterName } }];
  return [];
}

/** circuit_breakers from the connection pool over Istio's defaults (effectively unlimited, remaining tracked). */
export function circuitBreakers(cp: ConnectionPoolSettings | undefined): Record<string, unknown> {
  const t: Record<string, unknown> = {
    max_connections: u32(cp?.tcp?.maxConnections || MAX_U32),
    max_pending_requests: u32(cp?.http?.http1MaxPendingRequests || MAX_U32),
    max_requests: u32(cp?.http?.http2MaxRequests || MAX_U32),
    max_retries: u32(cp?.http?.maxRetries || MAX_U32),
    track_remaining: true,
  };
  return { thresholds: [t] };
}

export function outlierDetectionFields(od: OutlierDetection | undefined): Record<string, unknown> | undefined {
  if (!od) return undefined;
  // Success-rate ejection stays off, as Istio sets it: Envoy (and gRPC) enable
  // it when enforcing_success_rate is unset, which Istio's API never asks for.
  // grpc-js even crashes the client on it (an empty success-rate list when
  // success_rate_minimum_hosts is unset); the interop tests found that.
  const out: Record<string, unknown> = { enforcing_success_rate: u32(0) };
  const c5xx = od.consecutive5xxErrors ?? (od.consecutiveErrors || undefined);
  if (c5xx !== undefined) {
    out.consecutive_5xx = u32(c5xx);
    out.enforcing_consecutive_5xx = u32(c5xx > 0 ? 100 : 0);
  }
  if (od.consecutiveGatewayErrors !== undefined) {
    out.consecutive_gateway_failure = u32(od.consecutiveGatewayErrors);
    out.enforcing_consecutive_gateway_failure = u32(od.consecutiveGatewayErrors > 0 ? 100 : 0);
  }
  const interval = duration(od.interval);
  if (interval) out.interval = interval;
  const base = duration(od.baseEjectionTime);
  if (base) out.base_ejection_time = base;
  if (od.maxEjectionPercent !== undefined) out.max_ejection_percent = u32(od.maxEjectionPercent);
  if (od.splitExternalLocalOriginErrors) {
    out.split_external_local_origin_errors = true;
    if (od.consecutiveLocalOriginFailures !== undefined) {
      out.consecutive_local_origin_failure = u32(od.consecutiveLocalOriginFailures);
      out.enforcing_consecutive_local_origin_failure = u32(100);
    }
  }
  return out;
}

/** connect_timeout, keepalive and HTTP protocol options from the connection pool. */
export function connectionFields(cp: ConnectionPoolSettings | undefined, mesh: MeshConfig, http: 'none' | 'http1' | 'http2'): Record<string, unknown> {
  const out: Record<string, unknown> = { connect_timeout: duration(cp?.tcp?.connectTimeout) ?? duration(mesh.connectTimeout) ?? seconds(10) };
  const ka = cp?.tcp?.tcpKeepalive;
  if (ka) {
    const keepalive: Record<string, unknown> = {};
    if (ka.probes !== undefined) keepalive.keepalive_probes = u32(ka.probes);
    const time = duration(ka.time);
    if (time) keepalive.keepalive_time = u32(time.seconds);
    const interval = duration(ka.interval);
    if (interval) keepalive.keepalive_interval = u32(interval.seconds);
    out.upstream_connection_options = { tcp_keepalive: keepalive };
  }
  const h = cp?.http;
  if (http === 'none' || (http === 'http1' && !h)) return out;
  const common: Record<string, unknown> = {};
  const idle = duration(h?.idleTimeout);
  if (idle) common.idle_timeout = idle;
  if (h?.maxRequestsPerConnection) common.max_requests_per_connection = u32(h.maxRequestsPerConnection);
  const h2 = http === 'http2' || h?.h2UpgradePolicy === 'UPGRADE';
  const h2Options: Record<string, unknown> = {};
  if (h?.maxConcurrentStreams) h2Options.max_concurrent_streams = u32(h.maxConcurrentStreams);
  const protocol = h?.useClientProtocol
    ? { use_downstream_protocol_config: { http_protocol_options: {}, http2_protocol_options: h2Options } }
    : { explicit_http_config: h2 ? { http2_protocol_options: h2Options } : { http_protocol_options: {} } };
  const options: Record<string, unknown> = { ...protocol };
  if (Object.keys(common).length > 0) options.common_http_protocol_options = common;
  out.typed_extension_protocol_options = {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': typed('envoy.extensions.upstreams.http.v3.HttpProtocolOptions', options),
  };
  return out;
}

