// Active health checking (Cluster.health_checks): HTTP (path, expected
// statuses), TCP (connect, optional send/receive) and gRPC
// (grpc.health.v1.Health/Check). A new host starts failed and pending; its
// first passing check makes it healthy at once. Afterwards
// unhealthy_threshold failed checks (timeouts, network errors) mark it
// unhealthy, except that an HTTP status outside expected_statuses does so at
// once, as in Envoy; healthy_threshold passing checks restore it. Checks run
// every interval per host on the injected Clock.

import { request } from 'node:http';
import { createConnection } from 'node:net';
import type { Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { HealthCheckConfig } from '../config/cluster-resilience.ts';
import type { Clock, TimerHandle } from '../clock.ts';
import type { Counter, Gauge, StatsStore } from '../stats.ts';
import type { Host } from './host.ts';

export interface HealthCheckStats {
  readonly attempt: Counter;
  readonly success: Counter;
  readonly failure: Counter;
  readonly network_failure: Counter;
  readonly healthy: Gauge;
}

type Outcome = 'success' | 'failure' | 'network_failure';

interface Session {
  readonly host: Host;
  timer: TimerHandle | undefined;
  pending: boolean;
  successes: number;
  failures: number;
  cancel: (() => void) | undefined;
}

// grpc.health.v1: HealthCheckRequest { string service = 1; } and
// HealthCheckResponse { ServingStatus status = 1; } (SERVING = 1).
const HEALTH_CHECK_METHOD = {
  path: '/grpc.health.v1.Health/Check',
  requestStream: false,
  responseStream: false,
  requestSerialize: (service: string): Buffer => {
    const s = Buffer.from(service);
    return s.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a, s.length]), s]);
  },
  requestDeserialize: (b: Buffer): string => b.subarray(2).toString(),
  responseSerialize: (status: number): Buffer => Buffer.from([0x08, status]),
  responseDeserialize: (b: Buffer): number => {
    for (let i = 0; i < b.length; ) {
      const tag = b[i++];
      if (tag === 0x08) return b[i];
      break;
    }
    return 0;
  },
};
const HealthClient = grpc.makeGenericClientConstructor({ Check: HEALTH_CHECK_METHOD } as never, 'grpc.health.v1.Health');

export class HealthChecker {
  readonly config: HealthCheckConfig;
  readonly stats: HealthCheckStats;
  private readonly clusterName: string;
  private readonly clock: Clock;
  private readonly onChange: () => void;
  private readonly sessions = new Map<Host, Session>();
  private firstRoundLeft = new Set<Host>();
  private firstRoundDone: (() => void) | undefined;
  private closed = false;

  constructor(config: HealthCheckConfig, clusterName: string, onChange: () => void, store: StatsStore, statPrefix: string, clock: Clock) {
    this.config = config;
    this.clusterName = clusterName;
    this.onChange = onChange;
    this.clock = clock;
    const p = `${statPrefix}health_check.`;
    this.stats = {
      attempt: store.counter(`${p}attempt`),
      success: store.counter(`${p}success`),
      failure: store.counter(`${p}failure`),
      network_failure: store.counter(`${p}network_failure`),
      healthy: store.gauge(`${p}healthy`),
    };
  }

  /**
   * Starts checking new hosts and stops checking removed ones. Resolves when
   * every new host has had its first check (Envoy's cluster warming).
   */
  setHosts(hosts: readonly Host[]): Promise<void> {
    const live = new Set(hosts);
    for (const [host, s] of this.sessions) {
      if (live.has(host)) continue;
      this.clock.clearTimeout(s.timer);
      s.cancel?.();
      this.sessions.delete(host);
    }
    const fresh: Host[] = [];
    for (const host of hosts) {
      if (this.sessions.has(host)) continue;
      host.activeHcFailed = true;
      this.sessions.set(host, { host, timer: undefined, pending: true, successes: 0, failures: 0, cancel: undefined });
      fresh.push(host);
    }
    this.updateGauge();
    if (fresh.length === 0) return Promise.resolve();
    const done = new Promise<void>((r) => {
      this.firstRoundLeft = new Set(fresh);
      this.firstRoundDone = r;
    });
    for (const host of fresh) this.check(this.sessions.get(host)!);
    return done;
  }

  private updateGauge(): void {
    let n = 0;
    for (const h of this.sessions.keys()) if (!h.activeHcFailed) n++;
    this.stats.healthy.value = n;
  }

  private check(s: Session): void {
    if (this.closed || this.sessions.get(s.host) !== s) return;
    this.stats.attempt.value++;
    let settled = false;
    const finish = (outcome: Outcome): void => {
      if (settled) return;
      settled = true;
      this.clock.clearTimeout(timeout);
      s.cancel = undefined;
      this.result(s, outcome);
    };
    const timeout = this.clock.setTimeout(() => {
      s.cancel?.();
      finish('network_failure');
    }, this.config.timeoutMs, true);
    switch (this.config.kind) {
      case 'http':
        s.cancel = this.httpCheck(s.host, finish);
        break;
      case 'tcp':
        s.cancel = this.tcpCheck(s.host, finish);
        break;
      case 'grpc':
        s.cancel = this.grpcCheck(s.host, finish);
        break;
    }
  }

  private httpCheck(host: Host, finish: (o: Outcome) => void): () => void {
    const c = this.config;
    const req = request({ host: host.address, port: host.port, path: c.path, method: 'GET', agent: false, headers: { host: c.host ?? this.clusterName, 'user-agent': 'Envoy/HC', connection: 'close' } }, (res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      finish(c.expectedStatuses.some(([a, b]) => status >= a && status < b) ? 'success' : 'failure');
    });
    req.on('error', () => finish('network_failure'));
    req.end();
    return () => req.destroy();
  }

  private tcpCheck(host: Host, finish: (o: Outcome) => void): () => void {
    const c = this.config;
    const socket: Socket = createConnection({ host: host.address, port: host.port });
    let got = Buffer.alloc(0);
    socket.on('error', () => finish('network_failure'));
    socket.on('connect', () => {
      if (c.send) socket.write(c.send);
      if (c.receive.length === 0) {
        socket.destroy();
        finish('success');
      }
    });
    socket.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      // Envoy's fuzzy match: each expected block appears, in order.
      let at = 0;
      for (const r of c.receive) {
        const i = got.indexOf(r, at);
        if (i < 0) return;
        at = i + r.length;
      }
      socket.destroy();
      finish('success');
    });
    socket.on('close', () => finish('network_failure'));
    return () => socket.destroy();
  }

  private grpcCheck(host: Host, finish: (o: Outcome) => void): () => void {
    const options: grpc.ClientOptions = this.config.host ? { 'grpc.default_authority': this.config.host } : {};
    const client = new HealthClient(`${host.address}:${host.port}`, grpc.credentials.createInsecure(), options);
    const call = (client as unknown as { Check(req: string, cb: (err: grpc.ServiceError | null, status?: number) => void): grpc.ClientUnaryCall }).Check(this.config.serviceName, (err, status) => {
      client.close();
      if (err) finish(err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED || err.code === grpc.status.CANCELLED ? 'network_failure' : 'failure');
      else finish(status === 1 ? 'success' : 'failure');
    });
    return () => {
      call.cancel();
      client.close();
    };
  }

  private result(s: Session, outcome: Outcome): void {
    if (this.closed || this.sessions.get(s.host) !== s) return;
    const host = s.host;
    const c = this.config;
    const was = host.activeHcFailed;
    if (outcome === 'success') {
      this.stats.success.value++;
      s.failures = 0;
      s.successes++;
      if (s.pending || s.successes >= c.healthyThreshold) host.activeHcFailed = false;
    } else {
      this.stats.failure.value++;
      if (outcome === 'network_failure') this.stats.network_failure.value++;
      s.successes = 0;
      s.failures++;
      if (outcome === 'failure' || s.failures >= c.unhealthyThreshold) host.activeHcFailed = true;
    }
    s.pending = false;
    if (was !== host.activeHcFailed) {
      this.updateGauge();
      this.onChange();
    }
    if (this.firstRoundLeft.delete(host) && this.firstRoundLeft.size === 0) {
      this.firstRoundDone?.();
      this.firstRoundDone = undefined;
    }
    s.timer = this.clock.setTimeout(() => this.check(s), c.intervalMs, true);
  }

  close(): void {
    this.closed = true;
    for (const s of this.sessions.values()) {
      this.clock.clearTimeout(s.timer);
      s.cancel?.();
    }
    this.sessions.clear();
    this.firstRoundDone?.();
  }
}
