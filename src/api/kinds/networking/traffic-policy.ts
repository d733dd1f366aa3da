// TrafficPolicy of a DestinationRule (load balancing, connection pool, outlier
// detection, TLS, per-port settings, tunnelling) and the connection pool that
// Sidecar ingress listeners reuse.

import type { Diagnostics, FieldPath } from '../../diagnostics.ts';
import { boolValue, duration, int32, percent, portSelector, strict, uint32, z } from '../../schema.ts';
import { checkPercentage, checkPort, isIpAddress } from '../../validators.ts';
import { checkMsDuration, checkOneOf, checkPercentInt, fqdnProblem } from './checks.ts';
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
    duration: duration,
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

/** validateTrafficPolicy: at least one setting, then every part. */
export function checkTrafficPolicy(diag: Diagnostics, path: FieldPath, tp: TrafficPolicy | undefined): void {
  if (!tp) return;
  if (Object.values(tp).every((v) => v === undefined)) {
    diag.error(path, 'traffic policy must have at least one field');
    return;
  }
  checkOutlierDetection(diag, path.key('outlierDetection'), tp.outlierDetection);
  checkConnectionPool(diag, path.key('connectionPool'), tp.connectionPool);
  checkLoadBalancer(diag, path.key('loadBalancer'), tp.loadBalancer, tp.outlierDetection);
  checkClientTls(diag, path.key('tls'), tp.tls);
  (tp.portLevelSettings ?? []).forEach((pl, i) => {
    const p = path.key('portLevelSettings').index(i);
    if (!pl.port) diag.error(p.key('port'), 'port traffic policy must name a port');
    else checkPort(diag, p.key('port').key('number'), pl.port.number);
    if (!pl.loadBalancer && !pl.connectionPool && !pl.outlierDetection && !pl.tls) {
      diag.error(p, 'port traffic policy must have at least one of loadBalancer, connectionPool, outlierDetection or tls');
      return;
    }
    checkOutlierDetection(diag, p.key('outlierDetection'), pl.outlierDetection);
    checkConnectionPool(diag, p.key('connectionPool'), pl.connectionPool);
    checkLoadBalancer(diag, p.key('loadBalancer'), pl.loadBalancer, pl.outlierDetection);
    checkClientTls(diag, p.key('tls'), pl.tls);
  });
  if (tp.tunnel) {
    const p = path.key('tunnel');
    const protocol = tp.tunnel.protocol;
    if (protocol !== undefined && protocol !== '' && protocol !== 'CONNECT' && protocol !== 'POST') {
      diag.error(p.key('protocol'), `invalid tunnel protocol "${protocol}": must be "CONNECT" or "POST"`);
    }
    if (!isIpAddress(tp.tunnel.targetHost) && fqdnProblem(tp.tunnel.targetHost)) {
      diag.error(p.key('targetHost'), `tunnel target host "${tp.tunnel.targetHost}" must be a valid FQDN or IP address`);
    }
    checkPort(diag, p.key('targetPort'), tp.tunnel.targetPort);
  }
  if (tp.retryBudget?.percent) checkPercentage(diag, path.key('retryBudget').key('percent').key('value'), tp.retryBudget.percent.value);
}

export function checkOutlierDetection(diag: Diagnostics, path: FieldPath, od: OutlierDetection | undefined): void {
  if (!od) return;
  if (od.baseEjectionTime !== undefined) checkMsDuration(diag, path.key('baseEjectionTime'), od.baseEjectionTime);
  if (od.interval !== undefined) checkMsDuration(diag, path.key('interval'), od.interval);
  if (od.consecutiveErrors !== undefined && od.consecutiveErrors !== 0) {
    diag.warn(path.key('consecutiveErrors'), 'consecutiveErrors is deprecated; use consecutiveGatewayErrors or consecutive5xxErrors');
  }
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

export function checkConnectionPool(diag: Diagnostics, path: FieldPath, cp: ConnectionPoolSettings | undefined): void {
  if (!cp) return;
  if (!cp.http && !cp.tcp) {
    diag.error(path, 'connection pool must have at least one of tcp or http');
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
      diag.error(p.key('useClientProtocol'), 'useClientProtocol must not be true when h2UpgradePolicy is UPGRADE');
    }
  }
  if (cp.tcp) {
    const p = path.key('tcp');
    if (cp.tcp.maxConnections !== undefined && cp.tcp.maxConnections < 0) diag.error(p.key('maxConnections'), `max connections must be non-negative (got ${cp.tcp.maxConnections})`);
    for (const field of ['connectTimeout', 'maxConnectionDuration', 'idleTimeout'] as const) {
      const v = cp.tcp[field];
      if (v !== undefined) checkMsDuration(diag, p.key(field), v);
    }
    const ka = cp.tcp.tcpKeepalive;
    if (ka?.time !== undefined) checkMsDuration(diag, p.key('tcpKeepalive').key('time'), ka.time);
    if (ka?.interval !== undefined) checkMsDuration(diag, p.key('tcpKeepalive').key('interval'), ka.interval);
  }
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let i = 2; i * i <= n; i++) if (n % i === 0) return false;
  return true;
}

export function checkLoadBalancer(diag: Diagnostics, path: FieldPath, lb: LoadBalancerSettings | undefined, od: OutlierDetection | undefined): void {
  if (!lb) return;
  if (lb.simple !== undefined && lb.consistentHash !== undefined) {
    diag.error(path, 'only one of simple or consistentHash may be set');
  }
  const ch = lb.consistentHash;
  if (ch) {
    const p = path.key('consistentHash');
    checkOneOf(diag, p, ch, ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName']);
    checkOneOf(diag, p, ch, ['ringHash', 'maglev']);
    if (ch.httpCookie) {
      if (ch.httpCookie.name === '') diag.error(p.key('httpCookie').key('name'), 'name required for httpCookie');
      if (ch.httpCookie.ttl !== undefined && !(ch.httpCookie.ttl === '0s' || ch.httpCookie.ttl === '0')) checkMsDuration(diag, p.key('httpCookie').key('ttl'), ch.httpCookie.ttl);
    }
    if (ch.minimumRingSize !== undefined) {
      diag.warn(p.key('minimumRingSize'), 'minimumRingSize is deprecated; use ringHash.minimumRingSize');
      if (ch.ringHash || ch.maglev) diag.error(p.key('minimumRingSize'), 'only one of minimumRingSize or ringHash/maglev may be set');
    }
    if (ch.maglev) {
      const size = ch.maglev.tableSize ?? 0;
      if (size === 0) diag.error(p.key('maglev').key('tableSize'), 'tableSize must be set for maglev');
      else if (!isPrime(size)) diag.error(p.key('maglev').key('tableSize'), `tableSize ${size} must be a prime number for maglev`);
    }
  }
  if (lb.warmupDurationSecs !== undefined) checkMsDuration(diag, path.key('warmupDurationSecs'), lb.warmupDurationSecs);
  if (lb.warmupDurationSecs !== undefined && lb.warmup !== undefined) diag.error(path, 'only one of warmupDurationSecs or warmup may be set');
  if (lb.warmup) {
    const p = path.key('warmup');
    checkMsDuration(diag, p.key('duration'), lb.warmup.duration);
    const mp = lb.warmup.minimumPercent;
    if (mp !== undefined && (mp < 0 || mp > 100)) diag.error(p.key('minimumPercent'), `minimumPercent ${mp} is not in range 0..100`);
    const ag = lb.warmup.aggression;
    if (ag !== undefined && ag < 1) diag.error(p.key('aggression'), `aggression ${ag} must be at least 1`);
  }
  checkLocalityLb(diag, path.key('localityLbSetting'), lb.localityLbSetting, od);
}

const TOPOLOGY_LABELS = new Set(['topology.kubernetes.io/region', 'topology.kubernetes.io/zone', 'topology.istio.io/subzone']);

function checkLocalityLb(diag: Diagnostics, path: FieldPath, lls: z.infer<typeof localityLbSetting> | undefined, od: OutlierDetection | undefined): void {
  if (!lls) return;
  const distribute = lls.distribute ?? [];
  const failover = lls.failover ?? [];
  const priority = lls.failoverPriority ?? [];
  if (distribute.length > 0 && failover.length > 0) diag.error(path, 'can not simultaneously specify "distribute" and "failover"');
  if (failover.length > 0) {
    priority.forEach((label, i) => {
      if (TOPOLOGY_LABELS.has(label)) diag.error(path.key('failoverPriority').index(i), `can not simultaneously set "failover" and topology label "${label}" in "failoverPriority"`);
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
      if (weight <= 0 || weight > 100) diag.error(p.key('to').key(loc), `locality weight ${weight} must be in range [1, 100]`);
      total += weight;
    }
    if (total !== 100) diag.error(p.key('to'), `total locality weight ${total} != 100`);
    checkLocalities(diag, tos);
  });
  checkLocalities(diag, froms);
  if ((failover.length > 0 || priority.length > 0) && !od) {
    diag.warn(path, 'outlier detection policy must be provided for failover to take effect');
  }
  failover.forEach((f, i) => {
    const p = path.key('failover').index(i);
    const from = f.from ?? '';
    const to = f.to ?? '';
    if (from === to) diag.error(p, 'locality lb failover settings must specify different regions');
    if (from.includes('/') || to.includes('/')) diag.error(p, 'locality lb failover only specifies regions (no "/")');
    if (from.includes('*') || to.includes('*')) diag.error(p, 'locality lb failover region should not contain the "*" wildcard');
  });
}

/** Localities `region/zone/subzone` with one trailing `*` at most, none overlapping another. */
function checkLocalities(diag: Diagnostics, items: readonly { locality: string; path: FieldPath }[]): void {
  const seen: string[][] = [];
  for (const { locality, path } of items) {
    const stars = [...locality].filter((c) => c === '*').length;
    if (stars > 1 || (stars === 1 && !locality.endsWith('*'))) {
      diag.error(path, `locality "${locality}": the wildcard "*" may appear once, at the end`);
      continue;
    }
    const parts = locality.split('/');
    const overlaps = seen.some((other) => {
      for (let i = 0; i < Math.min(parts.length, other.length); i++) {
        if (parts[i] === '*' || other[i] === '*') return true;
        if (parts[i] !== other[i]) return false;
      }
      return parts.length === other.length;
    });
    if (overlaps) diag.error(path, `locality "${locality}" overlaps with a previously specified one`);
    seen.push(parts);
  }
}
