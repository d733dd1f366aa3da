// The resilience parts of a Cluster -> readonly domain objects: outlier
// detection, active health checks, and the load-balancing extras (ring hash,
// Maglev, panic threshold, locality weighting). Defaults are Envoy's.

import { configError } from '../errors.ts';
import { durationMs, wrapped } from './values.ts';

type D = Record<string, any>;

export interface OutlierDetectionConfig {
  readonly consecutive5xx: number;
  readonly consecutiveGatewayFailure: number;
  readonly intervalMs: number;
  readonly baseEjectionTimeMs: number;
  readonly maxEjectionTimeMs: number;
  readonly maxEjectionPercent: number;
  /** Enforcement percentages 0..100. */
  readonly enforcingConsecutive5xx: number;
  readonly enforcingConsecutiveGatewayFailure: number;
  readonly enforcingSuccessRate: number;
  readonly successRateMinimumHosts: number;
  readonly successRateRequestVolume: number;
  /** stdev_factor / 1000 (Envoy: 1900 -> 1.9). */
  readonly successRateStdevFactor: number;
}

export interface HealthCheckConfig {
  readonly kind: 'http' | 'tcp' | 'grpc';
  readonly timeoutMs: number;
  readonly intervalMs: number;
  readonly unhealthyThreshold: number;
  readonly healthyThreshold: number;
  /** http: request path and Host; grpc: service name and authority. */
  readonly path: string;
  readonly host: string | undefined;
  /** http: half-open [start, end) ranges; Envoy's default is 200 only. */
  readonly expectedStatuses: ReadonlyArray<readonly [number, number]>;
  readonly serviceName: string;
  /** tcp: bytes to send, and bytes each of which must be found in the reply. */
  readonly send: Buffer | undefined;
  readonly receive: readonly Buffer[];
}

export interface LbExtras {
  /** 0..100; below it a priority routes to all its hosts (Envoy's panic mode). */
  readonly panicThresholdPercent: number;
  readonly localityWeighted: boolean;
  readonly ringMinSize: number;
  readonly ringMaxSize: number;
  readonly maglevTableSize: number;
}

function u32(w: { value: number } | null | undefined, fallback: number, path: string, max = Infinity): number {
  const v = wrapped(w, fallback);
  if (!(v >= 0 && v <= max)) throw configError(path, `${v} is not in [0, ${max}]`);
  return v;
}

export function decodeOutlierDetection(o: D | null | undefined, path: string): OutlierDetectionConfig | undefined {
  if (!o) return undefined;
  const p = `${path}.outlier_detection`;
  const intervalMs = durationMs(o.interval, 10_000);
  if (intervalMs <= 0) throw configError(`${p}.interval`, 'must be positive');
  const baseEjectionTimeMs = durationMs(o.base_ejection_time, 30_000);
  return {
    consecutive5xx: u32(o.consecutive_5xx, 5, `${p}.consecutive_5xx`),
    consecutiveGatewayFailure: u32(o.consecutive_gateway_failure, 5, `${p}.consecutive_gateway_failure`),
    intervalMs,
    baseEjectionTimeMs,
    maxEjectionTimeMs: Math.max(baseEjectionTimeMs, durationMs(o.max_ejection_time, 300_000)),
    maxEjectionPercent: u32(o.max_ejection_percent, 10, `${p}.max_ejection_percent`, 100),
    enforcingConsecutive5xx: u32(o.enforcing_consecutive_5xx, 100, `${p}.enforcing_consecutive_5xx`, 100),
    enforcingConsecutiveGatewayFailure: u32(o.enforcing_consecutive_gateway_failure, 0, `${p}.enforcing_consecutive_gateway_failure`, 100),
    enforcingSuccessRate: u32(o.enforcing_success_rate, 100, `${p}.enforcing_success_rate`, 100),
    successRateMinimumHosts: u32(o.success_rate_minimum_hosts, 5, `${p}.success_rate_minimum_hosts`),
    successRateRequestVolume: u32(o.success_rate_request_volume, 100, `${p}.success_rate_request_volume`),
    successRateStdevFactor: u32(o.success_rate_stdev_factor, 1900, `${p}.success_rate_stdev_factor`) / 1000,
  };
}

function payload(pl: D | null | undefined, path: string): Buffer | undefined {
  if (!pl) return undefined;
  if (pl.payload === 'text') {
    if (!/^([0-9a-fA-F]{2})*$/.test(pl.text)) throw configError(`${path}.text`, 'must be hex-encoded bytes');
    return Buffer.from(pl.text, 'hex');
  }
  if (pl.payload === 'binary') return Buffer.from(pl.binary, typeof pl.binary === 'string' ? 'base64' : undefined);
  return undefined;
}

export function decodeHealthChecks(list: readonly D[] | null | undefined, path: string): HealthCheckConfig[] {
  return (list ?? []).map((h, i) => {
    const p = `${path}.health_checks[${i}]`;
    const timeoutMs = durationMs(h.timeout, 0);
    const intervalMs = durationMs(h.interval, 0);
    if (timeoutMs <= 0) throw configError(`${p}.timeout`, 'is required and must be positive');
    if (intervalMs <= 0) throw configError(`${p}.interval`, 'is required and must be positive');
    if (!h.unhealthy_threshold) throw configError(`${p}.unhealthy_threshold`, 'is required');
    if (!h.healthy_threshold) throw configError(`${p}.healthy_threshold`, 'is required');
    const base = { timeoutMs, intervalMs, unhealthyThreshold: Math.max(1, h.unhealthy_threshold.value), healthyThreshold: Math.max(1, h.healthy_threshold.value) };
    switch (h.health_checker) {
      case 'http_health_check': {
        const c = h.http_health_check;
        if (!c.path) throw configError(`${p}.http_health_check.path`, 'must not be empty');
        const expectedStatuses = (c.expected_statuses ?? []).map((r: D, j: number): [number, number] => {
          const start = Number(r.start);
          const end = Number(r.end);
          if (!(start >= 100 && end <= 600 && start < end)) throw configError(`${p}.http_health_check.expected_statuses[${j}]`, `[${start}, ${end}) is not a range within [100, 600)`);
          return [start, end];
        });
        return { kind: 'http', ...base, path: c.path, host: c.host || undefined, expectedStatuses: expectedStatuses.length ? expectedStatuses : [[200, 201]], serviceName: '', send: undefined, receive: [] };
      }
      case 'tcp_health_check': {
        const c = h.tcp_health_check;
        const receive = (c.receive ?? []).map((r: D, j: number) => payload(r, `${p}.tcp_health_check.receive[${j}]`)).filter((b: Buffer | undefined): b is Buffer => b !== undefined);
        return { kind: 'tcp', ...base, path: '', host: undefined, expectedStatuses: [], serviceName: '', send: payload(c.send, `${p}.tcp_health_check.send`), receive };
      }
      case 'grpc_health_check': {
        const c = h.grpc_health_check;
        return { kind: 'grpc', ...base, path: '', host: c.authority || undefined, expectedStatuses: [], serviceName: c.service_name ?? '', send: undefined, receive: [] };
      }
      default:
        throw configError(p, `health checker ${h.health_checker ?? '(none set)'} is not supported (http_health_check, tcp_health_check, grpc_health_check)`);
    }
  });
}

export function decodeLbExtras(c: D, path: string): LbExtras {
  const common: D = c.common_lb_config ?? {};
  const panic = common.healthy_panic_threshold ? Number(common.healthy_panic_threshold.value) : 50;
  if (!(panic >= 0 && panic <= 100)) throw configError(`${path}.common_lb_config.healthy_panic_threshold`, `${panic} is not in [0, 100]`);
  const ring: D = c.ring_hash_lb_config ?? {};
  const ringMinSize = ring.minimum_ring_size ? Number(ring.minimum_ring_size.value) : 1024;
  const ringMaxSize = ring.maximum_ring_size ? Number(ring.maximum_ring_size.value) : 8 * 1024 * 1024;
  if (ringMinSize > ringMaxSize) throw configError(`${path}.ring_hash_lb_config.minimum_ring_size`, `${ringMinSize} exceeds maximum_ring_size ${ringMaxSize}`);
  const maglevTableSize = c.maglev_lb_config?.table_size ? Number(c.maglev_lb_config.table_size.value) : 65537;
  if (!isPrime(maglevTableSize)) throw configError(`${path}.maglev_lb_config.table_size`, `${maglevTableSize} must be a prime number`);
  return {
    panicThresholdPercent: panic,
    localityWeighted: common.locality_config_specifier === 'locality_weighted_lb_config',
    ringMinSize,
    ringMaxSize: Math.min(ringMaxSize, 8 * 1024 * 1024),
    maglevTableSize,
  };
}

function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  for (let i = 2; i * i <= n; i++) if (n % i === 0) return false;
  return true;
}
