// The TCP proxy (envoy.filters.network.tcp_proxy): picks a cluster (or a
// weighted one) and a host per connection and pipes bytes both ways, with
// backpressure from pipe(), over the cluster's transport socket (TLS or
// Istio's auto mTLS when it has one). No healthy host or a failed connect
// closes the downstream connection, as Envoy does.
//
// Each connect's result goes to the cluster's outlier detection (a failure
// or timeout as a local origin failure, a 503; a connect as a success), so
// a dead endpoint of a TCP service is ejected as Envoy ejects it.
//
// The cluster's max_connections circuit breaker counts its connections of
// every kind: beyond it a new connection is closed at once
// (upstream_cx_overflow, flag UO), as Envoy does.
//
// access_log: one entry when the connection ends (flags NR, UH, UO, UF), and
// with access_log_options one when the upstream connects
// (flush_access_log_on_connected) and one every access_log_flush_interval,
// each carrying the byte totals so far; Mixer's reports (connection.event
// open / continue / close) are built from them.

import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { AccessLogger, TcpConnectionLog } from '../../../access-log.ts';
import { accessLoggersFrom } from '../../../access-loggers/access-log-config.ts';
import { TypeUrl } from '../../../../xds/index.ts';
import { configError } from '../../../errors.ts';
import type { FactoryContext, NetworkFilterExtension, NetworkFilterFactory } from '../../../registry.ts';
import type { Counter, Gauge } from '../../../stats.ts';
import { durationMs } from '../../../config/values.ts';
import { originalDestinationOf } from '../../listener/listener-filter.ts';

type D = Record<string, any>;

/** The cluster tcp_proxy chose for a downstream connection (istio.stats, access logs). */
export const upstreamClusterOf = new WeakMap<Socket, string>();

export interface TcpProxySettings {
  readonly statPrefix: string;
  readonly clusters: ReadonlyArray<{ readonly name: string; readonly weight: number }>;
  readonly totalWeight: number;
  readonly idleTimeoutMs: number;
  readonly accessLoggers: readonly AccessLogger[];
  readonly flushOnConnected: boolean;
  /** 0: no periodic entries. */
  readonly flushIntervalMs: number;
}

/** What an access log entry of one connection needs, fixed when it is accepted. */
interface LoggedConnection {
  readonly down: Socket;
  readonly connectionId: string;
  readonly startTime: number;
  readonly started: number;
  readonly cluster: string;
  upstreamHost: string | undefined;
  flags: string;
}

export class TcpProxy implements NetworkFilterFactory {
  readonly settings: TcpProxySettings;
  private readonly context: FactoryContext;
  private readonly sockets = new Set<Socket>();
  private readonly stats: { downstream_cx_total: Counter; downstream_cx_no_route: Counter; upstream_flush_active: Gauge; downstream_cx_tx_bytes_total: Counter; downstream_cx_rx_bytes_total: Counter };
  readonly rdsNames: readonly string[] = [];

  constructor(settings: TcpProxySettings, context: FactoryContext) {
    this.settings = settings;
    this.context = context;
    const p = context.stats.scope('tcp', settings.statPrefix);
    this.stats = {
      downstream_cx_total: context.stats.counter(`${p}downstream_cx_total`),
      downstream_cx_no_route: context.stats.counter(`${p}downstream_cx_no_route`),
      upstream_flush_active: context.stats.gauge(`${p}upstream_flush_active`),
      downstream_cx_tx_bytes_total: context.stats.counter(`${p}downstream_cx_tx_bytes_total`),
      downstream_cx_rx_bytes_total: context.stats.counter(`${p}downstream_cx_rx_bytes_total`),
    };
  }

  get activeConnections(): number {
    return this.sockets.size;
  }

  onConnection(down: Socket): void {
    this.stats.downstream_cx_total.value++;
    const clusterName = this.pickCluster();
    upstreamClusterOf.set(down, clusterName);
    const logged: LoggedConnection | undefined = this.settings.accessLoggers.length > 0 ? { down, connectionId: randomUUID(), startTime: Date.now(), started: performance.now(), cluster: clusterName, upstreamHost: undefined, flags: '' } : undefined;
    const cluster = this.context.clusters.get(clusterName);
    const host = cluster?.config.type === 'ORIGINAL_DST' ? cluster.originalDstHost(originalDestinationOf(down)) : cluster?.pickHost();
    // No cluster (NR), no host (UH), or the cluster's max_connections circuit breaker open (UO): closed at once.
    const overflow = cluster !== undefined && cluster.stats.upstream_cx_active.value >= cluster.config.circuitBreakers.maxConnections;
    if (!cluster || !host || overflow) {
      if (!cluster) this.stats.downstream_cx_no_route.value++;
      else if (!host) cluster.stats.upstream_cx_none_healthy.value++;
      else cluster.stats.upstream_cx_overflow.value++;
      if (logged) logged.flags = !cluster ? 'NR' : !host ? 'UH' : 'UO';
      down.destroy();
      if (logged) this.log(logged, 'close');
      return;
    }
    this.sockets.add(down);
    const cs = cluster.stats;
    cs.upstream_cx_total.value++;
    cs.upstream_cx_active.value++;
    host.activeRequests++;
    // The cluster's transport socket (TLS, Istio's auto mTLS per endpoint) or plain TCP.
    const up = cluster.openConnection(host.address, host.port, { allowHalfOpen: true });
    up.setNoDelay(true);
    down.setNoDelay(true);
    if (logged) logged.upstreamHost = `${host.address}:${host.port}`;
    let connected = false;
    const outlier = cluster.outlierDetector;
    const connectTimer = setTimeout(() => {
      cs.upstream_cx_connect_timeout.value++;
      if (logged) logged.flags = 'UF';
      outlier?.report(host, 'timeout');
      up.destroy();
    }, cluster.config.connectTimeoutMs);
    const { flushOnConnected, flushIntervalMs } = this.settings;
    const periodic = logged && flushIntervalMs > 0 ? setInterval(() => this.log(logged, 'continue'), flushIntervalMs).unref() : undefined;
    up.once('connect', () => {
      connected = true;
      clearTimeout(connectTimer);
      outlier?.report(host, 200);
      if (logged && flushOnConnected) this.log(logged, 'open');
    });
    if (this.settings.idleTimeoutMs > 0) down.setTimeout(this.settings.idleTimeoutMs, () => down.destroy());
    // Half-closes travel through pipe(); an error or reset on one side resets the other.
    up.on('error', () => {
      if (!connected) {
        cs.upstream_cx_connect_fail.value++;
        if (logged) logged.flags = 'UF';
        outlier?.report(host, 'connect-failure');
      }
      down.destroy();
    });
    down.on('error', () => up.destroy());
    up.once('close', () => {
      clearTimeout(connectTimer);
      cs.upstream_cx_active.value--;
      host.activeRequests--;
      if (!down.writableEnded) down.destroy();
    });
    down.once('close', () => {
      this.stats.downstream_cx_rx_bytes_total.value += down.bytesRead;
      this.stats.downstream_cx_tx_bytes_total.value += down.bytesWritten;
      this.sockets.delete(down);
      if (!up.writableEnded) up.destroy();
      clearInterval(periodic);
      if (logged) this.log(logged, 'close');
    });
    down.pipe(up);
    up.pipe(down);
  }

  /** One entry per access logger: byte totals so far, the time since accept. */
  private log(c: LoggedConnection, event: TcpConnectionLog['event']): void {
    const entry = {
      startTime: c.startTime,
      method: '',
      path: '',
      protocol: '',
      status: 0,
      flags: c.flags,
      bytesReceived: c.down.bytesRead,
      bytesSent: c.down.bytesWritten,
      durationMs: Math.round(performance.now() - c.started),
      upstreamServiceTime: undefined,
      forwardedFor: undefined,
      userAgent: undefined,
      requestId: undefined,
      authority: undefined,
      upstreamHost: c.upstreamHost,
      upstreamCluster: c.cluster,
      socket: c.down,
      tcp: { event, connectionId: c.connectionId },
    };
    for (const logger of this.settings.accessLoggers) logger.log(entry);
  }

  private pickCluster(): string {
    const list = this.settings.clusters;
    if (list.length === 1) return list[0].name;
    let r = Math.random() * this.settings.totalWeight;
    for (const c of list) if ((r -= c.weight) < 0) return c.name;
    return list[list.length - 1].name;
  }

  drain(): void {
    // TCP has no way to ask for a close; connections end on their own or at close().
  }

  close(): void {
    for (const s of this.sockets) s.destroy();
  }
}

export const tcpProxyExtension: NetworkFilterExtension = {
  typeUrl: TypeUrl.TcpProxy,
  category: 'network',
  create(c: D, context, path) {
    if (!c.stat_prefix) throw configError(`${path}.stat_prefix`, 'must not be empty');
    let clusters: Array<{ name: string; weight: number }>;
    if (c.cluster_specifier === 'cluster') {
      if (!c.cluster) throw configError(`${path}.cluster`, 'must not be empty');
      clusters = [{ name: c.cluster, weight: 1 }];
    } else if (c.cluster_specifier === 'weighted_clusters') {
      clusters = (c.weighted_clusters.clusters ?? []).map((w: D) => ({ name: w.name, weight: w.weight }));
      if (clusters.length === 0) throw configError(`${path}.weighted_clusters.clusters`, 'must not be empty');
    } else throw configError(path, 'cluster or weighted_clusters is required');
    const totalWeight = clusters.reduce((s, x) => s + x.weight, 0);
    // access_log_options, or the deprecated fields it replaced.
    const options = c.access_log_options ?? {};
    const interval = options.access_log_flush_interval ?? c.access_log_flush_interval;
    const flushIntervalMs = durationMs(interval, 0);
    // Envoy's validation: gte 1ms.
    if (interval && flushIntervalMs < 1) throw configError(`${path}.access_log_options.access_log_flush_interval`, 'must be at least 1ms');
    return new TcpProxy({
      statPrefix: c.stat_prefix,
      clusters,
      totalWeight,
      idleTimeoutMs: durationMs(c.idle_timeout, 3_600_000),
      accessLoggers: accessLoggersFrom(c.access_log, context, `${path}.access_log`),
      flushOnConnected: options.flush_access_log_on_connected === true || c.flush_access_log_on_connected === true,
      flushIntervalMs,
    }, context);
  },
};
