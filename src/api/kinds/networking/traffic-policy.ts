// TrafficPolicy of a DestinationRule (load balancing, connection pool, outlier
// detection, TLS, per-port settings, tunnelling) and the connection pool that
// Sidecar ingress listeners reuse.

import type { Diagnostics, FieldPath } from '../../diagnostics.ts';
import { boolValue, duration, int32, percent, portSelector, strict, uint32, z } from '../../schema.ts';
import { checkPort, isIpAddress } from '../../validators.ts';
import { checkMsDuration, checkOneOf, checkPercentInt, checkPercentage, fqdnProblem } from './checks.ts';
import { checkClientTls, clientTlsSettings } from './tls-settings.ts';

const uint64 = z.number().int().min(0);

export const connectionPoolSettings = strict({
  tcp: strict({
    maxConnections: int32.optional(),
    connectTimeout: duration.optional(),
    tcpKeepalive: strict({
      probes: uint32.optional(),
      time: duration.optional(),
      interval: duration.optional(),
    }).optional(),
    maxConnectionDuration: duration.optional(),
    idleTimeout: duration.optional(),
  }).optional(),
  http: strict({
    http1MaxPendingRequests: int32.optional(),
    http2MaxRequests: int32.optional(),
    maxRequestsPerConnection: int32.optional(),
    maxRetries: int32.optional(),
    idleTimeout: duration.optional(),
    h2UpgradePolicy: z.enum(['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE']).optional(),
    useClientProtocol: z.boolean().optional(),
    maxConcurrentStreams: int32.optional(),
  }).optional(),
});
export type ConnectionPoolSettings = z.infer<typeof connectionPoolSettings>;

const consistentHash = strict({
  httpHeaderName: z.string().optional(),
  httpCookie: strict({
    name: z.string(),
    path: z.string().optional(),
    ttl: duration.optional(),
    attributes: z.array(strict({ name: z.string(), value: z.string().optional() })).optional(),
  }).optional(),
  useSourceIp: z.boolean().optional(),
  httpQueryParameterName: z.string().optional(),
  ringHash: strict({ minimumRingSize: uint64.optional() }).optional(),
  maglev: strict({ tableSize: uint64.optional() }).optional(),
  minimumRingSize: uint64.optional(),
});

const localityLbSetting = strict({
  distribute: z.array(strict({ from: z.string().optional(), to: z.record(z.string(), uint32).optional() })).optional(),
  failover: z.array(strict({ from: z.string().optional(), to: z.string().optional() })).optional(),
  failoverPriority: z.array(z.string()).optional(),
  enabled: boolValue.optional(),
});

export const loadBalancerSettings = strict({
  simple: z.enum(['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST']).optional(),
  consistentHash: consistentHash.optional(),
  localityLbSetting: localityLbSetting.optional(),
  warmupDurationSecs: duration.optional(),
  warmup: strict({
    duration: duration.optional(),
    minimumPercent: z.number().optional(),
    aggression: z.number().optional(),
  }).optional(),
});
export type LoadBalancerSettings = z.infer<typeof loadBalancerSettings>;

export const outlierDetection = strict({
  splitExternalLocalOriginErrors: z.boolean().optional(),
  consecutiveLocalOriginFailures: uint32.optional(),
  consecutiveGatewayErrors: uint32.optional(),
  consecutive5xxErrors: uint32.optional(),
  interval: duration.optional(),
  baseEjectionTime: duration.optional(),
  maxEjectionPercent: int32.optional(),
  minHealthPercent: int32.optional(),
  consecutiveErrors: int32.optional(),
});
export type OutlierDetection = z.infer<typeof outlierDetection>;

const portTrafficPolicy = strict({
  port: portSelector.optional(),
  loadBalancer: loadBalancerSettings.optional(),
  connectionPool: connectionPoolSettings.optional(),
  outlierDetection: outlierDetection.optional(),
  tls: clientTlsSettings.optional(),
});

export const trafficPolicy = strict({
  loadBalancer: loadBalancerSettings.optional(),
  connectionPool: connectionPoolSettings.optional(),
  outlierDetection: outlierDetection.optional(),
  tls: clientTlsSettings.optional(),
  portLevelSettings: z.array(portTrafficPolicy).optional(),
  tunnel: strict({
    protocol: z.string().optional(),
    targetHost: z.string(),
    targetPort: uint32,
  }).optional(),
  proxyProtocol: strict({ version: z.enum(['V1', 'V2']).optional() }).optional(),
  retryBudget: strict({ percent: percent.optional(), minRetryConcurrency: uint32.optional() }).optional(),
});
export type TrafficPolicy = z.infer<typeof trafficPolicy>;

/**
 * validateTrafficPolicy: at least one setting, tunnel and proxyProtocol apart,
 * then every part. `namespace` is the owning rule's (for configmap:// credentials).
 */
export function checkTrafficPolicy(diag: Diagnostics, path: FieldPath, tp: TrafficPolicy | undefined, namespace: string): void {
  if (!tp) return;
  if (Object.values(tp).every((v) => v === undefined)) {
    diag.error(path, 'traffic policy must have at least one field');
    return;
  }
  if (tp.tunnel && tp.proxyProtocol) {
    diag.error(path, 'tunnel and proxyProtocol must not be set together');
    return;
  }
  checkOutlierDetection(diag, path.key('outlierDetection'), tp.outlierDetection);
  checkConnectionPool(diag, path.key('connectionPool'), tp.connectionPool);
  checkLoadBalancer(diag, path.key('loadBalancer'), tp.loadBalancer, tp.outlierDetection);
  checkClientTls(diag, path.key('tls'), tp.tls, namespace);
  (tp.portLevelSettings ?? []).forEach((pl, i) => {
    const p = path.key('portLevelSettings').index(i);
    if (!pl.port) diag.error(p.key('port'), 'portTrafficPolicy must have valid port');
    // Istio leaves the number unchecked; a port outside 1..65535 can never match, so it is reported.
    else checkPort(diag, p.key('port').key('number'), pl.port.number);
    if (!pl.loadBalancer && !pl.connectionPool && !pl.outlierDetection && !pl.tls) {
      diag.error(p, 'port traffic policy must have at least one field (loadBalancer, connectionPool, outlierDetection or tls)');
      return;
    }
    checkOutlierDetection(diag, p.key('outlierDetection'), pl.outlierDetection);
    checkConnectionPool(diag, p.key('connectionPool'), pl.connectionPool);
    checkLoadBalancer(diag, p.key('loadBalancer'), pl.loadBalancer, pl.outlierDetection);
    checkClientTls(diag, p.key('tls'), pl.tls, namespace);
  });
  if (tp.tunnel) {
    const p = path.key('tunnel');
    const protocol = tp.tunnel.protocol;
    if (protocol !== undefined && protocol !== '' && protocol !== 'CONNECT' && protocol !== 'POST') {
      diag.error(p.key('protocol'), `tunnel protocol must be "CONNECT" or "POST" (got "${protocol}")`);
    }
    const problem = fqdnProblem(tp.tunnel.targetHost);
    if (problem && !isIpAddress(tp.tunnel.targetHost)) {
      diag.error(p.key('targetHost'), `tunnel target host must be valid FQDN or IP address: ${problem}`);
    }
    if (!(tp.tunnel.targetPort >= 1 && tp.tunnel.targetPort <= 65535)) {
      diag.error(p.key('targetPort'), `tunnel target port is invalid: port number ${tp.tunnel.targetPort} must be in the range 1..65535`);
    }
  }
  if (tp.retryBudget?.percent) checkPercentage(diag, path.key('retryBudget').key('percent').key('value'), tp.retryBudget.percent.value);
}

/** validateOutlierDetection. */
export function checkOutlierDetection(diag: Diagnostics, path: FieldPath, od: OutlierDetection | undefined): void {
  if (!od) return;
  if (od.baseEjectionTime !== undefined) checkMsDuration(diag, path.key('baseEjectionTime'), od.baseEjectionTime);
  if (od.consecutiveErrors !== undefined && od.consecutiveErrors !== 0) {
    diag.warn(path.key('consecutiveErrors'), 'outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or consecutive5xxErrors instead');
  }
  if (!od.splitExternalLocalOriginErrors && (od.consecutiveLocalOriginFailures ?? 0) > 0) {
    diag.error(path.key('consecutiveLocalOriginFailures'), 'outlier detection consecutive local origin failures is specified, but split external local origin errors is set to false');
  }
  if (od.interval !== undefined) checkMsDuration(diag, path.key('interval'), od.interval);
  checkPercentInt(diag, path.key('maxEjectionPercent'), od.maxEjectionPercent);
  checkPercentInt(diag, path.key('minHealthPercent'), od.minHealthPercent);
}

const NON_NEGATIVE_HTTP = [
  ['http1MaxPendingRequests', 'http1 max pending requests'],
  ['http2MaxRequests', 'http2 max requests'],
  ['maxRequestsPerConnection', 'max requests per connection'],
  ['maxRetries', 'max retries'],
  ['maxConcurrentStreams', 'max concurrent streams'],
] as const;

/** validateConnectionPool. */
export function checkConnectionPool(diag: Diagnostics, path: FieldPath, cp: ConnectionPoolSettings | undefined): void {
  if (!cp) return;
  if (!cp.http && !cp.tcp) {
    diag.error(path, 'connection pool must have at least one field (tcp or http)');
    return;
  }
  if (cp.http) {
    const p = path.key('http');
    for (const [field, label] of NON_NEGATIVE_HTTP) {
      const v = cp.http[field];
      if (v !== undefined && v < 0) diag.error(p.key(field), `${label} must be non-negative (got ${v})`);
    }
    if (cp.http.idleTimeout !== undefined) checkMsDuration(diag, p.key('idleTimeout'), cp.http.idleTimeout);
    if (cp.http.h2UpgradePolicy === 'UPGRADE' && cp.http.useClientProtocol) {
      diag.error(p.key('useClientProtocol'), 'use client protocol must not be true when h2UpgradePolicy is UPGRADE');
    }
  }
  if (cp.tcp) {
    const p = path.key('tcp');
    if (cp.tcp.maxConnections !== undefined && cp.tcp.maxConnections < 0) diag.error(p.key('maxConnections'), `max connections must be non-negative (got ${cp.tcp.maxConnections})`);
    if (cp.tcp.connectTimeout !== undefined) checkMsDuration(diag, p.key('connectTimeout'), cp.tcp.connectTimeout);
    if (cp.tcp.maxConnectionDuration !== undefined) checkMsDuration(diag, p.key('maxConnectionDuration'), cp.tcp.maxConnectionDuration);
    // An idle timeout of 0s turns the timeout off.
    if (cp.tcp.idleTimeout !== undefined) checkMsDuration(diag, p.key('idleTimeout'), cp.tcp.idleTimeout, { allowZero: true });
    const ka = cp.tcp.tcpKeepalive;
    if (ka?.time !== undefined) checkMsDuration(diag, p.key('tcpKeepalive').key('time'), ka.time);
    if (ka?.interval !== undefined) checkMsDuration(diag, p.key('tcpKeepalive').key('interval'), ka.interval);
  }
}

// Envoy's own primality test for maglev table sizes (it counts 1 as prime).
function isPrime(n: number): boolean {
  if (n !== 0 && n < 4) return true;
  if (n % 2 === 0) return false;
  for (let f = 3; f * f <= n; f += 2) if (n % f === 0) return false;
  return true;
}

const MAGLEV_MAX_TABLE_SIZE = 5000011;

/** validateLoadBalancer. */
export function checkLoadBalancer(diag: Diagnostics, path: FieldPath, lb: LoadBalancerSettings | undefined, od: OutlierDetection | undefined): void {
  if (!lb) return;
  // simple and consistentHash are the members of one oneof (lb_policy).
  if (lb.simple !== undefined && lb.consistentHash !== undefined) diag.error(path, 'only one of simple or consistentHash may be set');
  const ch = lb.consistentHash;
  if (ch) {
    const p = path.key('consistentHash');
    checkOneOf(diag, p, ch, ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName']);
    checkOneOf(diag, p, ch, ['ringHash', 'maglev']);
    if (ch.httpCookie && ch.httpCookie.name === '') diag.error(p.key('httpCookie').key('name'), 'name required for httpCookie');
    if (ch.minimumRingSize !== undefined && ch.minimumRingSize !== 0) {
      diag.warn(p.key('minimumRingSize'), "consistent hash minimumRingSize is deprecated, use ConsistentHashLB's ringHash configuration instead");
      if (ch.ringHash || ch.maglev) diag.error(p.key('minimumRingSize'), 'only one of minimumRingSize or maglev/ringHash can be specified');
    }
    if (ch.maglev) {
      const size = ch.maglev.tableSize ?? 0;
      const sp = p.key('maglev').key('tableSize');
      if (size === 0) diag.error(sp, 'tableSize must be set for maglev');
      if (size >= MAGLEV_MAX_TABLE_SIZE) diag.error(sp, `tableSize must be less than ${MAGLEV_MAX_TABLE_SIZE} for maglev`);
      if (size !== 0 && !isPrime(size)) diag.error(sp, `tableSize must be a prime number for maglev (got ${size}), such as 65537`);
    }
  }
  checkLocalityLb(diag, path.key('localityLbSetting'), lb.localityLbSetting, od);
  if (lb.warmupDurationSecs !== undefined) checkMsDuration(diag, path.key('warmupDurationSecs'), lb.warmupDurationSecs);
  if (lb.warmup) {
    const p = path.key('warmup');
    if (lb.warmup.duration === undefined) diag.error(p.key('duration'), 'duration is required');
    else checkMsDuration(diag, p.key('duration'), lb.warmup.duration);
    const mp = lb.warmup.minimumPercent;
    if (mp !== undefined && mp > 100) diag.error(p.key('minimumPercent'), `minimumPercent value should be less than or equal to 100 (got ${mp})`);
    const ag = lb.warmup.aggression;
    if (ag !== undefined && ag < 1) diag.error(p.key('aggression'), `aggression should be greater than or equal to 1 (got ${ag})`);
    if (lb.warmupDurationSecs !== undefined) diag.warn(path.key('warmupDurationSecs'), 'warmupDurationSecs is deprecated and ignored when warmup is set; use warmup.duration');
  }
}

const TOPOLOGY_LABELS = new Set(['topology.kubernetes.io/region', 'topology.kubernetes.io/zone', 'topology.istio.io/subzone']);

/** agent.ValidateLocalityLbSetting. */
function checkLocalityLb(diag: Diagnostics, path: FieldPath, lls: z.infer<typeof localityLbSetting> | undefined, od: OutlierDetection | undefined): void {
  if (!lls) return;
  const distribute = lls.distribute ?? [];
  const failover = lls.failover ?? [];
  const priority = lls.failoverPriority ?? [];
  if (distribute.length > 0 && failover.length > 0) {
    diag.error(path, "can not simultaneously specify 'distribute' and 'failover'");
    return;
  }
  if (failover.length > 0) {
    priority.forEach((label, i) => {
      if (TOPOLOGY_LABELS.has(label)) diag.error(path.key('failoverPriority').index(i), `can not simultaneously set 'failover' and topology label '${label}' in 'failoverPriority'`);
    });
  }
  const froms: { locality: string; path: FieldPath }[] = [];
  distribute.forEach((d, i) => {
    const p = path.key('distribute').index(i);
    froms.push({ locality: d.from ?? '', path: p.key('from') });
    let total = 0;
    const tos: { locality: string; path: FieldPath }[] = [];
    for (const [loc, weight] of Object.entries(d.to ?? {})) {
      tos.push({ locality: loc, path: p.key('to').key(loc) });
      if (weight <= 0 || weight > 100) diag.error(p.key('to').key(loc), `locality weight must be in range [1, 100] (got ${weight})`);
      total += weight;
    }
    if (total !== 100) diag.error(p.key('to'), `total locality weight ${total} != 100`);
    checkLocalities(diag, tos);
  });
  checkLocalities(diag, froms);
  if ((failover.length > 0 || priority.length > 0) && !od) {
    diag.warn(path, 'outlier detection policy must be provided for failover');
  }
  failover.forEach((f, i) => {
    const p = path.key('failover').index(i);
    const from = f.from ?? '';
    const to = f.to ?? '';
    if (from === to) diag.error(p, 'locality lb failover settings must specify different regions');
    if (from.includes('/') || to.includes('/')) diag.error(p, 'locality lb failover only specify region (no zone or subzone)');
    if (from.includes('*') || to.includes('*')) diag.error(p, "locality lb failover region should not contain '*' wildcard");
  });
}

/**
 * validateLocalities: `region[/zone[/subzone]]`, one trailing `*` at most, no
 * empty parts, and no locality inside one given before (`us/*` covers `us/a/b`).
 */
function checkLocalities(diag: Diagnostics, items: readonly { locality: string; path: FieldPath }[]): void {
  // region -> zone -> subzone; '*' at a level covers everything below it.
  const seen = new Map<string, Map<string, Set<string>>>();
  for (const { locality, path } of items) {
    const stars = [...locality].filter((c) => c === '*').length;
    if (stars > 1 || (stars === 1 && !locality.endsWith('*'))) {
      diag.error(path, `locality ${locality} wildcard '*' number can not exceed 1 and must be in the end`);
      return;
    }
    const overlap = (): void => diag.error(path, `locality ${locality} overlap with previous specified ones`);
    if (seen.has('*')) return overlap();
    const parts = locality.split('/');
    if (parts.length > 3) parts.splice(2, parts.length - 2, parts.slice(2).join('/'));
    if (parts.some((x) => x === '')) {
      diag.error(path, `locality ${locality} must not contain empty region/zone/subzone info`);
      return;
    }
    const [region, zone, subzone] = parts as [string, string?, string?];
    const zones = seen.get(region);
    if (zone === undefined) {
      if (zones) return overlap();
      seen.set(region, new Map([['*', new Set(['*'])]]));
      continue;
    }
    if (zones?.has('*')) return overlap();
    if (subzone === undefined) {
      if (zones?.has(zone)) return overlap();
      if (zones) zones.set(zone, new Set(['*']));
      else seen.set(region, new Map([[zone, new Set(['*'])]]));
      continue;
    }
    const subzones = zones?.get(zone);
    if (subzones && (subzones.has('*') || subzones.has(subzone))) return overlap();
    if (subzones) subzones.add(subzone);
    else if (zones) zones.set(zone, new Set([subzone]));
    else seen.set(region, new Map([[zone, new Set([subzone])]]));
  }
}
