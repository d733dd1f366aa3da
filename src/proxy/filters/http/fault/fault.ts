// The fault filter (envoy.filters.http.fault): delays and aborts a
// percentage of requests, optionally only those matching headers. Settings
// are decoded once; a FaultFilter per stream decides with one random draw per
// fault, as Envoy does. Flags: DI (delay injected), FI (fault injected).

import { TYPE_URL_PREFIX } from '../../../../xds/index.ts';
import { configError } from '../../../errors.ts';
import type { HeaderMatcher } from '../../../config/matchers.ts';
import { headerMatcher } from '../../../config/matchers.ts';
import { durationMs, fraction, wrapped } from '../../../config/values.ts';
import type { Counter, StatsStore } from '../../../stats.ts';
import type { HttpFilterExtension } from '../../../registry.ts';
import type { FilterStatus, HttpFilter, HttpStream } from '../http-filter.ts';

export interface FaultSettings {
  readonly delayMs: number;
  readonly delayFraction: number;
  readonly abortStatus: number;
  readonly abortFraction: number;
  readonly headers: readonly HeaderMatcher[];
  readonly maxActiveFaults: number;
  readonly stats: { delays_injected: Counter; aborts_injected: Counter; active_faults: { value: number } };
}

type D = Record<string, any>;

export class FaultFilter implements HttpFilter {
  private settings: FaultSettings;
  private readonly name: string;
  private readonly forRoute: (config: D, path: string) => FaultSettings;
  private timer: NodeJS.Timeout | undefined;
  private active = false;

  constructor(settings: FaultSettings, name: string, forRoute: (config: D, path: string) => FaultSettings) {
    this.settings = settings;
    this.name = name;
    this.forRoute = forRoute;
  }

  decodeHeaders(s: HttpStream): FilterStatus {
    // Istio puts a VirtualService's fault on the route (typed_per_filter_config).
    const perRoute = s.route.perFilterConfig.get(this.name);
    if (perRoute) {
      if (perRoute.disabled) return 'continue';
      try {
        this.settings = this.forRoute(perRoute.config, `route "${s.route.name}" typed_per_filter_config[${this.name}]`);
      } catch {
        // Validated when the route config was accepted; never fail a request over it.
        return 'continue';
      }
    }
    const f = this.settings;
    for (const h of f.headers) {
      const v = s.req.headers[h.name];
      if (!h.test(Array.isArray(v) ? v.join(',') : v)) return 'continue';
    }
    if (f.stats.active_faults.value >= f.maxActiveFaults) return 'continue';
    if (f.delayMs > 0 && Math.random() < f.delayFraction) {
      f.stats.delays_injected.value++;
      this.enter();
      s.addResponseFlag('DI');
      this.timer = setTimeout(() => {
        this.timer = undefined;
        if (s.ended) return;
        if (!this.abort(s)) s.continueDecoding();
      }, f.delayMs);
      return 'stop';
    }
    return this.abort(s) ? 'stop' : 'continue';
  }

  private abort(s: HttpStream): boolean {
    const f = this.settings;
    if (f.abortStatus === 0 || !(Math.random() < f.abortFraction)) return false;
    f.stats.aborts_injected.value++;
    this.enter();
    s.sendLocalReply(f.abortStatus, 'fault filter abort', 'FI');
    return true;
  }

  private enter(): void {
    if (!this.active) this.settings.stats.active_faults.value++;
    this.active = true;
  }

  onDestroy(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.active) this.settings.stats.active_faults.value--;
    this.active = false;
  }
}

export const faultExtension: HttpFilterExtension = {
  typeUrl: `${TYPE_URL_PREFIX}envoy.extensions.filters.http.fault.v3.HTTPFault`,
  category: 'http',
  validatePerRoute(c: D, path: string) {
    faultSettings(c, undefined, '', path);
  },
  create(c: D, ctx, path, name) {
    const filterName = name || 'envoy.filters.http.fault';
    const settings = faultSettings(c, ctx.stats, ctx.statPrefix ?? 'unknown', path);
    // Per-route settings are built once per decoded route config object.
    const cache = new WeakMap<D, FaultSettings>();
    const forRoute = (config: D, p: string): FaultSettings => {
      let fs = cache.get(config);
      if (!fs) cache.set(config, (fs = faultSettings(config, ctx.stats, ctx.statPrefix ?? 'unknown', p)));
      return fs;
    };
    return { name: filterName, terminal: false, create: () => new FaultFilter(settings, filterName, forRoute) };
  },
};

function faultSettings(c: D, store: StatsStore | undefined, hcmPrefix: string, path: string): FaultSettings {
  const delay = c.delay;
  if (delay && delay.fault_delay_secifier === 'header_delay') throw configError(`${path}.delay.header_delay`, 'header-controlled delays are not supported');
  const abort = c.abort;
  let abortStatus = 0;
  if (abort) {
    if (abort.error_type !== 'http_status') throw configError(`${path}.abort`, `only http_status aborts are supported (got ${abort.error_type ?? 'none'})`);
    abortStatus = abort.http_status;
    if (abortStatus < 200 || abortStatus >= 600) throw configError(`${path}.abort.http_status`, `${abortStatus} is not in [200, 600)`);
  }
  // Envoy: http.<hcm stat_prefix>.fault.[<filter stat_prefix>.]aborts_injected
  const prefix = `http.${hcmPrefix}.fault.${c.stat_prefix ? `${c.stat_prefix}.` : ''}`;
  return {
    delayMs: delay ? durationMs(delay.fixed_delay, 0) : 0,
    delayFraction: delay ? fraction(delay.percentage, 0) : 0,
    abortStatus,
    abortFraction: abort ? fraction(abort.percentage, 0) : 0,
    headers: (c.headers ?? []).map((h: D, i: number) => headerMatcher(h as never, `${path}.headers[${i}]`)),
    maxActiveFaults: wrapped(c.max_active_faults, Infinity),
    stats: store
    ? { delays_injected: store.counter(`${prefix}delays_injected`), aborts_injected: store.counter(`${prefix}aborts_injected`), active_faults: store.gauge(`${prefix}active_faults`) }
    : { delays_injected: { value: 0 }, aborts_injected: { value: 0 }, active_faults: { value: 0 } },
  };
}
