// Passive health: Envoy's outlier detection. The router reports each
// upstream result; consecutive 5xx and consecutive gateway failures (502,
// 503, 504 and local connect failures/resets) eject a host at once, success
// rate ejects at the interval sweep. An ejected host stays out for
// base_ejection_time x its number of ejections (capped by max_ejection_time)
// and is returned at the first sweep after that; the multiplier shrinks by
// one for each sweep the host spends healthy. max_ejection_percent bounds how
// many hosts are out (one may always go). Runs on the injected Clock.

import type { OutlierDetectionConfig } from '../config/cluster-resilience.ts';
import type { Clock, TimerHandle } from '../clock.ts';
import type { Counter, Gauge, StatsStore } from '../stats.ts';
import type { Host } from './host.ts';

/** What the router saw of one attempt on a host. */
export type UpstreamResult = number | 'connect-failure' | 'reset' | 'timeout';

interface HostState {
  consecutive5xx: number;
  consecutiveGateway: number;
  /** Requests and successes in the current interval (success rate). */
  total: number;
  success: number;
  ejections: number;
  ejectedAt: number;
}

export interface OutlierStats {
  readonly ejections_active: Gauge;
  readonly ejections_total: Counter;
  readonly ejections_overflow: Counter;
  readonly ejections_enforced_total: Counter;
  readonly ejections_enforced_consecutive_5xx: Counter;
  readonly ejections_detected_consecutive_5xx: Counter;
  readonly ejections_enforced_consecutive_gateway_failure: Counter;
  readonly ejections_detected_consecutive_gateway_failure: Counter;
  readonly ejections_enforced_success_rate: Counter;
  readonly ejections_detected_success_rate: Counter;
}

const COUNTERS = [
  'ejections_total', 'ejections_overflow', 'ejections_enforced_total', 'ejections_enforced_consecutive_5xx', 'ejections_detected_consecutive_5xx',
  'ejections_enforced_consecutive_gateway_failure', 'ejections_detected_consecutive_gateway_failure', 'ejections_enforced_success_rate', 'ejections_detected_success_rate',
] as const;

type Reason = 'consecutive_5xx' | 'consecutive_gateway_failure' | 'success_rate';

export class OutlierDetector {
  readonly config: OutlierDetectionConfig;
  readonly stats: OutlierStats;
  private readonly states = new Map<Host, HostState>();
  private readonly hosts: () => readonly Host[];
  private readonly onChange: () => void;
  private readonly clock: Clock;
  private readonly random: () => number;
  private timer: TimerHandle | undefined;
  private closed = false;

  /** `hosts` gives the cluster's current hosts; `onChange` rebuilds its load balancer after an ejection or return. */
  constructor(config: OutlierDetectionConfig, hosts: () => readonly Host[], onChange: () => void, store: StatsStore, statPrefix: string, clock: Clock, random: () => number = Math.random) {
    this.config = config;
    this.hosts = hosts;
    this.onChange = onChange;
    this.clock = clock;
    this.random = random;
    const p = `${statPrefix}outlier_detection.`;
    const stats: Record<string, Counter | Gauge> = { ejections_active: store.gauge(`${p}ejections_active`) };
    for (const n of COUNTERS) stats[n] = store.counter(p + n);
    this.stats = stats as unknown as OutlierStats;
    this.arm();
  }

  private arm(): void {
    if (!this.closed) this.timer = this.clock.setTimeout(() => this.sweep(), this.config.intervalMs, true);
  }

  private state(host: Host): HostState {
    let s = this.states.get(host);
    if (!s) this.states.set(host, (s = { consecutive5xx: 0, consecutiveGateway: 0, total: 0, success: 0, ejections: 0, ejectedAt: 0 }));
    return s;
  }

  /** Records the result of one upstream attempt. */
  report(host: Host, result: UpstreamResult): void {
    const s = this.state(host);
    s.total++;
    // Without split_external_local_origin_errors, local failures count as a 503.
    const code = typeof result === 'number' ? result : 503;
    if (code < 500) {
      s.success++;
      s.consecutive5xx = 0;
      s.consecutiveGateway = 0;
      return;
    }
    s.consecutive5xx++;
    if (code === 502 || code === 503 || code === 504) s.consecutiveGateway++;
    else s.consecutiveGateway = 0;
    if (host.outlierEjected) return;
    const c = this.config;
    if (c.consecutiveGatewayFailure > 0 && s.consecutiveGateway >= c.consecutiveGatewayFailure) {
      this.stats.ejections_detected_consecutive_gateway_failure.value++;
      if (this.enforced(c.enforcingConsecutiveGatewayFailure) && this.eject(host, s, 'consecutive_gateway_failure')) return;
    }
    if (c.consecutive5xx > 0 && s.consecutive5xx >= c.consecutive5xx) {
      this.stats.ejections_detected_consecutive_5xx.value++;
      if (this.enforced(c.enforcingConsecutive5xx)) this.eject(host, s, 'consecutive_5xx');
    }
  }

  private enforced(percent: number): boolean {
    return percent >= 100 || this.random() * 100 < percent;
  }

  private eject(host: Host, s: HostState, reason: Reason): boolean {
    const total = this.hosts().length;
    const active = this.stats.ejections_active.value;
    // One host may always be ejected; beyond that, stay within max_ejection_percent.
    if (active > 0 && (100 * (active + 1)) / total > this.config.maxEjectionPercent) {
      this.stats.ejections_overflow.value++;
      return false;
    }
    host.outlierEjected = true;
    s.ejections++;
    s.ejectedAt = this.clock.now();
    s.consecutive5xx = 0;
    s.consecutiveGateway = 0;
    this.stats.ejections_active.value++;
    this.stats.ejections_total.value++;
    this.stats.ejections_enforced_total.value++;
    this.stats[`ejections_enforced_${reason}`].value++;
    this.onChange();
    return true;
  }

  /** How long the host stays ejected this time. */
  ejectionTimeMs(host: Host): number {
    const s = this.states.get(host);
    return Math.min(this.config.baseEjectionTimeMs * (s?.ejections ?? 1), this.config.maxEjectionTimeMs);
  }

  /** The interval sweep: return hosts whose time is up, decay multipliers, eject by success rate. */
  sweep(): void {
    const now = this.clock.now();
    const hosts = this.hosts();
    const live = new Set(hosts);
    let changed = false;
    for (const [host, s] of this.states) {
      if (!live.has(host)) {
        if (host.outlierEjected) this.stats.ejections_active.value--;
        host.outlierEjected = false;
        this.states.delete(host);
        continue;
      }
      if (host.outlierEjected) {
        if (now - s.ejectedAt >= this.ejectionTimeMs(host)) {
          host.outlierEjected = false;
          this.stats.ejections_active.value--;
          changed = true;
        }
      } else if (s.ejections > 0) s.ejections--;
    }
    this.successRate(hosts);
    for (const s of this.states.values()) {
      s.total = 0;
      s.success = 0;
    }
    if (changed) this.onChange();
    this.arm();
  }

  private successRate(hosts: readonly Host[]): void {
    const c = this.config;
    const rates: Array<[Host, HostState, number]> = [];
    for (const h of hosts) {
      const s = this.states.get(h);
      if (s && !h.outlierEjected && s.total >= c.successRateRequestVolume) rates.push([h, s, (100 * s.success) / s.total]);
    }
    if (rates.length < c.successRateMinimumHosts || rates.length === 0) return;
    const mean = rates.reduce((a, r) => a + r[2], 0) / rates.length;
    const stdev = Math.sqrt(rates.reduce((a, r) => a + (r[2] - mean) ** 2, 0) / rates.length);
    const threshold = mean - c.successRateStdevFactor * stdev;
    for (const [h, s, rate] of rates) {
      if (rate >= threshold) continue;
      this.stats.ejections_detected_success_rate.value++;
      if (this.enforced(c.enforcingSuccessRate)) this.eject(h, s, 'success_rate');
    }
  }

  close(): void {
    this.closed = true;
    this.clock.clearTimeout(this.timer);
  }
}
