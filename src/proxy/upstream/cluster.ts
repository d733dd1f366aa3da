// A live upstream cluster: its hosts (static, EDS-fed or DNS-resolved), the
// load balancer over the best priority with routable hosts, the HTTP/1.1
// keep-alive connection pool, circuit breaker counters and Envoy's
// `cluster.<name>.*` stats. A new Cluster resource builds a new instance;
// the old one drains (see ClusterManager).

import { Agent } from 'node:http';
import type { ClientRequestArgs } from 'node:http';
import { lookup } from 'node:dns';
import type { LookupAddress } from 'node:dns';
import { createConnection } from 'node:net';
import type { Socket } from 'node:net';
import type { TlsStats } from '../transport-sockets/tls/tls-stats.ts';
import { tlsStats } from '../transport-sockets/tls/tls-stats.ts';
import { matchTransportSocket } from '../transport-sockets/transport-socket.ts';
import type { Duplex } from 'node:stream';
import type { ClusterConfig, EndpointConfig, LoadAssignment } from '../config/cluster-config.ts';
import type { Counter, Gauge, StatsStore } from '../stats.ts';
import { Host } from './host.ts';
import { Http2ConnectionPool } from './http2-pool.ts';
import { Http1ConnectionPool } from './http1-pool.ts';
import type { Clock } from '../clock.ts';
import { realClock } from '../clock.ts';
import { DEFAULT_PRIORITY_LB_OPTIONS, PriorityLoadBalancer } from './priority-lb.ts';
import { OutlierDetector } from './outlier-detection.ts';
import { HealthChecker } from './health-checker.ts';

export interface ClusterStats {
  readonly upstream_rq_total: Counter;
  readonly upstream_rq_active: Gauge;
  readonly upstream_rq_pending_active: Gauge;
  readonly upstream_rq_pending_total: Counter;
  readonly upstream_rq_pending_overflow: Counter;
  readonly upstream_rq_timeout: Counter;
  readonly upstream_cx_total: Counter;
  readonly upstream_cx_active: Gauge;
  readonly upstream_cx_connect_fail: Counter;
  readonly upstream_cx_connect_timeout: Counter;
  readonly upstream_cx_overflow: Counter;
  readonly upstream_cx_none_healthy: Counter;
  readonly membership_total: Gauge;
  readonly membership_healthy: Gauge;
  readonly update_success: Counter;
}

const STAT_NAMES: ReadonlyArray<keyof ClusterStats> = [
  'upstream_rq_total', 'upstream_rq_active', 'upstream_rq_pending_active', 'upstream_rq_pending_total', 'upstream_rq_pending_overflow', 'upstream_rq_timeout',
  'upstream_cx_total', 'upstream_cx_active', 'upstream_cx_connect_fail', 'upstream_cx_connect_timeout', 'upstream_cx_overflow', 'upstream_cx_none_healthy',
  'membership_total', 'membership_healthy', 'update_success',
];
const GAUGES = new Set(['upstream_rq_active', 'upstream_rq_pending_active', 'upstream_cx_active', 'membership_total', 'membership_healthy']);

/** Marks a socket error raised because connect_timeout passed. */
export const CONNECT_TIMEOUT = 'MESH_UPSTREAM_CONNECT_TIMEOUT';

function byFamily(addrs: LookupAddress[], family: ClusterConfig['dnsLookupFamily']): LookupAddress[] {
  const v4 = addrs.filter((a) => a.family === 4);
  const v6 = addrs.filter((a) => a.family === 6);
  switch (family) {
    case 'V4_ONLY':
      return v4;
    case 'V6_ONLY':
      return v6;
    case 'V4_PREFERRED':
      return v4.length ? v4 : v6;
    case 'ALL':
      return addrs;
    default:
      return v6.length ? v6 : v4;
  }
}

export class Cluster {
  readonly config: ClusterConfig;
  readonly name: string;
  readonly stats: ClusterStats;
  readonly agent: Agent;
  private readonly store: StatsStore;
  private readonly statPrefix: string;
  private hosts: Host[] = [];
  /** Priorities, localities and panic over the per-host-set LB (priority-lb.ts). */
  private lb: PriorityLoadBalancer;
  private overprovisioningFactor = 140;
  readonly clock: Clock;
  /** Passive health (outlier_detection); the router reports results to it. */
  readonly outlierDetector: OutlierDetector | undefined;
  /** Active health (health_checks; Envoy uses the first). */
  readonly healthChecker: HealthChecker | undefined;
  /** Retries in flight, for the max_retries circuit breaker. */
  readonly retryStats: { readonly upstream_rq_retry: Counter; readonly upstream_rq_retry_success: Counter; readonly upstream_rq_retry_overflow: Counter; readonly upstream_rq_retry_limit_exceeded: Counter; readonly upstream_rq_per_try_timeout: Counter; readonly lb_healthy_panic: Counter };
  activeRetries = 0;
  private readonly responseCounters = new Map<number, Counter>();
  private dnsTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private h2Pool: Http2ConnectionPool | undefined;
  private h1Pool: Http1ConnectionPool | undefined;
  private tlsStats: TlsStats | undefined;
  /** Resolves once the cluster has its first host set (Envoy's warming). */
  readonly initialized: Promise<void>;
  private markInitialized!: () => void;

  constructor(config: ClusterConfig, store: StatsStore, clock: Clock = realClock) {
    this.config = config;
    this.name = config.name;
    this.store = store;
    this.clock = clock;
    this.statPrefix = store.scope('cluster', config.name);
    const stats: Record<string, Counter | Gauge> = {};
    for (const n of STAT_NAMES) stats[n] = GAUGES.has(n) ? store.gauge(this.statPrefix + n) : store.counter(this.statPrefix + n);
    this.stats = stats as unknown as ClusterStats;
    const rc = (n: string): Counter => store.counter(this.statPrefix + n);
    this.retryStats = { upstream_rq_retry: rc('upstream_rq_retry'), upstream_rq_retry_success: rc('upstream_rq_retry_success'), upstream_rq_retry_overflow: rc('upstream_rq_retry_overflow'), upstream_rq_retry_limit_exceeded: rc('upstream_rq_retry_limit_exceeded'), upstream_rq_per_try_timeout: rc('upstream_rq_per_try_timeout'), lb_healthy_panic: rc('lb_healthy_panic') };
    this.lb = this.buildLb();
    const refresh = (): void => this.refreshLoadBalancer();
    this.outlierDetector = config.outlierDetection ? new OutlierDetector(config.outlierDetection, () => this.hosts, refresh, store, this.statPrefix, clock) : undefined;
    const hc = config.healthChecks?.[0];
    this.healthChecker = hc ? new HealthChecker(hc, config.name, refresh, store, this.statPrefix, clock) : undefined;
    this.initialized = new Promise((r) => (this.markInitialized = r));
    this.agent = this.createAgent();
    if (config.type === 'STATIC') this.setEndpoints(config.loadAssignment!.endpoints);
    else if (config.type === 'STRICT_DNS' || config.type === 'LOGICAL_DNS') this.resolveDns();
    else if (config.type === 'ORIGINAL_DST') this.markInitialized();
    else if (config.loadAssignment) this.setEndpoints(config.loadAssignment.endpoints);
  }

  /** Counter for `upstream_rq_<code>` and `upstream_rq_<N>xx`; fetched once per code. */
  countResponse(status: number): void {
    let c = this.responseCounters.get(status);
    if (!c) {
      c = this.store.counter(`${this.statPrefix}upstream_rq_${status}`);
      this.responseCounters.set(status, c);
      this.responseCounters.set(-Math.floor(status / 100), this.store.counter(`${this.statPrefix}upstream_rq_${Math.floor(status / 100)}xx`));
    }
    c.value++;
    this.responseCounters.get(-Math.floor(status / 100))!.value++;
  }

  /**
   * Whether a request goes upstream over HTTP/2: the cluster's protocol
   * options decide (cluster-protocol.ts), `use_downstream_protocol_config`
   * following the downstream request's protocol.
   */
  usesHttp2(downstreamHttp2: boolean): boolean {
    const kind = this.config.httpProtocol?.kind ?? 'http1';
    return kind === 'http2' || (kind === 'downstream' && downstreamHttp2);
  }

  /** The HTTP/2 connection pool, made on first use. */
  get http2Pool(): Http2ConnectionPool {
    if (!this.h2Pool) {
      const s = this.stats;
      const c = (n: string): Counter => this.store.counter(this.statPrefix + n);
      this.h2Pool = new Http2ConnectionPool(
        { http2: this.config.httpProtocol!.http2, connectTimeoutMs: this.config.connectTimeoutMs, maxConnections: this.config.circuitBreakers.maxConnections, connectTimeoutCode: CONNECT_TIMEOUT },
        { ...s, upstream_cx_http2_total: c('upstream_cx_http2_total'), upstream_cx_close_notify: c('upstream_cx_close_notify'), upstream_cx_destroy: c('upstream_cx_destroy') },
      );
    }
    return this.h2Pool;
  }

  /** The raw-socket HTTP/1.1 pool (http1-pool.ts), made on first use; upgrades and mirrors keep the Agent. */
  get http1Pool(): Http1ConnectionPool {
    if (!this.h1Pool) {
      const timeoutMs = this.config.connectTimeoutMs;
      this.h1Pool = new Http1ConnectionPool(
        { connectTimeoutMs: timeoutMs, maxConnections: this.config.circuitBreakers.maxConnections, connectTimeoutCode: CONNECT_TIMEOUT, openConnection: (address, port) => this.openConnection(address, port) },
        this.stats,
      );
    }
    return this.h1Pool;
  }

  get hostList(): readonly Host[] {
    return this.hosts;
  }

  /**
   * A host for one attempt. `hash` comes from the route's hash_policy (ring
   * hash, Maglev); `attempt` > 0 asks a hashing LB for another host.
   */
  pickHost(hash?: number, attempt = 0): Host | undefined {
    if (this.lb.inPanic) this.retryStats.lb_healthy_panic.value++;
    return this.lb.pick(hash, attempt);
  }

  /**
   * ORIGINAL_DST (lb_policy CLUSTER_PROVIDED): the host is the connection's
   * original destination. Hosts are made on first use and kept while in use;
   * idle ones are dropped once more than 1024 are known.
   */
  originalDstHost(destination: { address: string; port: number } | undefined): Host | undefined {
    if (this.config.type !== 'ORIGINAL_DST' || !destination || !destination.address || !destination.port) return undefined;
    const address = destination.address.startsWith('::ffff:') && destination.address.includes('.') ? destination.address.slice(7) : destination.address;
    const key = `${address}:${destination.port}`;
    let host = this.originalDstHosts.get(key);
    if (!host) {
      if (this.originalDstHosts.size >= 1024) for (const [k, h] of this.originalDstHosts) if (h.activeRequests === 0) this.originalDstHosts.delete(k);
      host = new Host(address, destination.port);
      this.originalDstHosts.set(key, host);
      this.stats.membership_total.value = this.originalDstHosts.size;
    }
    return host;
  }

  private readonly originalDstHosts = new Map<string, Host>();

  private buildLb(): PriorityLoadBalancer {
    const x = this.config.lbExtras;
    return new PriorityLoadBalancer(this.hosts, { ...DEFAULT_PRIORITY_LB_OPTIONS, ...x, policy: this.config.lbPolicy, overprovisioningFactor: this.overprovisioningFactor });
  }

  /** Rebuilds the load balancer after a health change (EDS, outlier ejection, active health check). */
  refreshLoadBalancer(): void {
    this.lb = this.buildLb();
    let healthy = 0;
    for (const h of this.hosts) if (h.healthy) healthy++;
    this.stats.membership_healthy.value = healthy;
  }

  /** Per-priority load in percent (Envoy's priority load), for tests and admin. */
  get priorityLoad(): readonly number[] {
    return this.lb.priorityLoad;
  }

  /** Whether a new request would exceed max_requests (503 UO). */
  requestOverflow(): boolean {
    return this.stats.upstream_rq_active.value >= this.config.circuitBreakers.maxRequests;
  }

  /**
   * Whether a new request would wait for a connection beyond
   * max_pending_requests: all connections are busy and no new one may open.
   */
  pendingOverflow(): boolean {
    const cx = this.stats.upstream_cx_active.value;
    const busy = this.stats.upstream_rq_active.value >= cx;
    if (!busy || cx < this.config.circuitBreakers.maxConnections) return false;
    return this.stats.upstream_rq_pending_active.value >= this.config.circuitBreakers.maxPendingRequests;
  }

  /** Applies an EDS ClusterLoadAssignment. */
  applyLoadAssignment(la: LoadAssignment): void {
    this.stats.update_success.value++;
    if (la.overprovisioningFactor !== undefined) this.overprovisioningFactor = la.overprovisioningFactor;
    this.setEndpoints(la.endpoints);
  }

  setEndpoints(endpoints: readonly EndpointConfig[]): void {
    const old = new Map(this.hosts.map((h) => [h.key, h]));
    this.hosts = endpoints.map((e) => {
      const h = old.get(`${e.address}:${e.port}`) ?? new Host(e.address, e.port);
      h.weight = e.weight;
      h.priority = e.priority;
      h.health = e.health;
      h.locality = e.locality;
      h.localityWeight = e.localityWeight ?? 0;
      h.transportSocketMatch = e.transportSocketMatch;
      return h;
    });
    this.stats.membership_total.value = this.hosts.length;
    // Envoy's warming: with active health checks, the first round decides before the cluster serves.
    const firstChecks = this.healthChecker?.setHosts(this.hosts);
    this.refreshLoadBalancer();
    if (firstChecks) void firstChecks.then(this.markInitialized);
    else this.markInitialized();
  }

  private resolveDns(): void {
    if (this.closed) return;
    const eps = this.config.loadAssignment!.endpoints;
    const logical = this.config.type === 'LOGICAL_DNS';
    let left = eps.length;
    const found: EndpointConfig[][] = eps.map(() => []);
    const done = (): void => {
      if (--left > 0 || this.closed) return;
      this.setEndpoints(found.flat());
      this.dnsTimer = setTimeout(() => this.resolveDns(), this.config.dnsRefreshMs);
      this.dnsTimer.unref();
    };
    eps.forEach((e, i) => {
      lookup(e.address, { all: true }, (err, addrs) => {
        // A failed resolution keeps the previous hosts of that endpoint, as Envoy does.
        if (err || addrs.length === 0) found[i] = this.hosts.filter((h) => h.port === e.port).map((h) => ({ ...e, address: h.address }));
        else {
          const picked = byFamily(addrs, this.config.dnsLookupFamily);
          found[i] = (logical ? picked.slice(0, 1) : picked).map((a) => ({ ...e, address: a.address }));
        }
        done();
      });
    });
  }

  /**
   * A new transport connection to a host: plain TCP, or TLS when the cluster
   * has a transport_socket (SNI, ALPN, session reuse, peer verification;
   * `cluster.<name>.ssl.*` stats). Pools and tcp_proxy call this rather
   * than net.connect; `allowHalfOpen` (tcp_proxy) applies to plain TCP.
   */
  openConnection(host: string, port: number, options: { allowHalfOpen?: boolean } = {}): Socket {
    let ts = this.config.transportSocket;
    const matches = this.config.transportSocketMatches;
    if (matches?.length) {
      // Per endpoint (Istio auto mTLS); a new connection is rare enough for the scan.
      const h = this.hosts.find((x) => x.port === port && x.address === host);
      const m = matchTransportSocket(matches, h?.transportSocketMatch);
      if (m) ts = m.socket;
    }
    if (!ts) return createConnection({ host, port, allowHalfOpen: options.allowHalfOpen === true });
    this.tlsStats ??= tlsStats(this.store, this.statPrefix, 'upstream');
    return ts.connect(host, port, this.tlsStats);
  }

  private createAgent(): Agent {
    const agent = new Agent({ keepAlive: true, scheduling: 'lifo', maxSockets: this.config.circuitBreakers.maxConnections, maxTotalSockets: this.config.circuitBreakers.maxConnections });
    const timeoutMs = this.config.connectTimeoutMs;
    agent.createConnection = (options: ClientRequestArgs): Duplex => {
      const socket = this.openConnection(options.host ?? 'localhost', Number(options.port));
      socket.setNoDelay(true);
      const stats = this.stats;
      stats.upstream_cx_total.value++;
      stats.upstream_cx_active.value++;
      const timer = setTimeout(() => {
        stats.upstream_cx_connect_timeout.value++;
        const err = new Error(`connect timeout after ${timeoutMs}ms`) as NodeJS.ErrnoException;
        err.code = CONNECT_TIMEOUT;
        socket.destroy(err);
      }, timeoutMs);
      let connected = false;
      socket.once('connect', () => {
        connected = true;
        clearTimeout(timer);
      });
      socket.once('close', () => {
        clearTimeout(timer);
        stats.upstream_cx_active.value--;
      });
      socket.once('error', () => {
        if (!connected) stats.upstream_cx_connect_fail.value++;
      });
      return socket;
    };
    return agent;
  }

  /** Stops DNS refresh and closes pooled connections; requests in flight finish. */
  close(): void {
    this.closed = true;
    if (this.dnsTimer) clearTimeout(this.dnsTimer);
    this.outlierDetector?.close();
    this.healthChecker?.close();
    this.markInitialized();
    this.drainAgent();
    this.h1Pool?.close();
    this.h2Pool?.close();
  }

  private drainAgent(): void {
    // Idle sockets go now; busy ones when their response ends (destroy() would cut them).
    for (const list of Object.values(this.agent.freeSockets)) for (const s of list ?? []) s.destroy();
    const busy = Object.values(this.agent.sockets).reduce((n, l) => n + (l?.length ?? 0), 0);
    if (busy > 0) setTimeout(() => this.drainAgent(), 200).unref();
    else this.agent.destroy();
  }
}
