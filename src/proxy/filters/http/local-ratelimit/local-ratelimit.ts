// The local rate limit filter (envoy.filters.http.local_ratelimit): a token
// bucket per filter config (the listener's, or a route's
// typed_per_filter_config, as Istio emits it), refilled lazily from the
// proxy's Clock. filter_enabled and filter_enforced default to 0% as in
// Envoy. A limited request gets 429 (or `status`), `x-envoy-ratelimited`,
// the configured response headers and flag RL. Stats under
// `<stat_prefix>.http_local_rate_limit.` (enabled, enforced, rate_limited, ok).

import { TYPE_URL_PREFIX } from '../../../../xds/index.ts';
import type { Clock } from '../../../clock.ts';
import { realClock } from '../../../clock.ts';
import { configError } from '../../../errors.ts';
import type { HeaderMutation } from '../../../config/route-config.ts';
import { headerMutation } from '../../../config/route-config.ts';
import { durationMs, fraction } from '../../../config/values.ts';
import type { Counter, StatsStore } from '../../../stats.ts';
import type { HttpFilterExtension } from '../../../registry.ts';
import type { FilterStatus, HttpFilter, HttpStream } from '../http-filter.ts';
import { applyHeaderMutation } from '../router/router.ts';

type D = Record<string, any>;

export const LOCAL_RATELIMIT_TYPE_URL = `${TYPE_URL_PREFIX}envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit`;

/** A token bucket refilled by whole fill intervals, computed on demand. */
export class TokenBucket {
  private readonly max: number;
  private readonly perFill: number;
  private readonly intervalMs: number;
  private readonly clock: Clock;
  private tokens: number;
  private lastFill: number;

  constructor(max: number, perFill: number, intervalMs: number, clock: Clock) {
    this.max = max;
    this.perFill = perFill;
    this.intervalMs = intervalMs;
    this.clock = clock;
    this.tokens = max;
    this.lastFill = clock.now();
  }

  tryConsume(): boolean {
    const now = this.clock.now();
    const fills = Math.floor((now - this.lastFill) / this.intervalMs);
    if (fills > 0) {
      this.tokens = Math.min(this.max, this.tokens + fills * this.perFill);
      this.lastFill += fills * this.intervalMs;
    }
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }
}

export interface LocalRateLimitSettings {
  /** Undefined: no bucket here (a listener-level filter waiting for per-route configs). */
  readonly bucket: TokenBucket | undefined;
  readonly enabled: number;
  readonly enforced: number;
  readonly status: number;
  readonly responseHeaders: HeaderMutation;
  readonly stats: { readonly enabled: Counter; readonly enforced: Counter; readonly rate_limited: Counter; readonly ok: Counter };
}

function settings(c: D, store: StatsStore | undefined, clock: Clock, path: string): LocalRateLimitSettings {
  if (!c.stat_prefix) throw configError(`${path}.stat_prefix`, 'must not be empty');
  if ((c.descriptors ?? []).length > 0) throw configError(`${path}.descriptors`, 'rate limit descriptors are not supported');
  if (c.local_rate_limit_per_downstream_connection) throw configError(`${path}.local_rate_limit_per_downstream_connection`, 'per-connection buckets are not supported');
  let bucket: TokenBucket | undefined;
  const tb = c.token_bucket;
  if (tb) {
    const intervalMs = durationMs(tb.fill_interval, 0);
    if (intervalMs < 50) throw configError(`${path}.token_bucket.fill_interval`, 'must be at least 50ms');
    const perFill = tb.tokens_per_fill ? tb.tokens_per_fill.value : 1;
    if (!(tb.max_tokens > 0)) throw configError(`${path}.token_bucket.max_tokens`, 'must be positive');
    bucket = new TokenBucket(tb.max_tokens, perFill, intervalMs, clock);
  }
  const status = c.status?.code && c.status.code !== 'Empty' ? httpStatus(c.status.code) : 429;
  const p = `${c.stat_prefix}.http_local_rate_limit.`;
  const counter = (n: string): Counter => (store ? store.counter(p + n) : { value: 0 });
  return {
    bucket,
    enabled: c.filter_enabled ? fraction(c.filter_enabled.default_value, 0) : 0,
    enforced: c.filter_enforced ? fraction(c.filter_enforced.default_value, 0) : 0,
    status,
    responseHeaders: headerMutation(c.response_headers_to_add, undefined, `${path}.response_headers`),
    stats: { enabled: counter('enabled'), enforced: counter('enforced'), rate_limited: counter('rate_limited'), ok: counter('ok') },
  };
}

// envoy.type.v3.StatusCode is an enum of names (TooManyRequests = 429, ...); decoded as its name.
const STATUS_NAMES: Readonly<Record<string, number>> = { TooManyRequests: 429, ServiceUnavailable: 503, Forbidden: 403, BadRequest: 400, Unauthorized: 401, InternalServerError: 500, OK: 200 };
function httpStatus(code: string | number): number {
  if (typeof code === 'number') return code;
  return STATUS_NAMES[code] ?? (Number(code) || 429);
}

const passes = (p: number): boolean => p >= 1 || (p > 0 && Math.random() < p);

export class LocalRateLimitFilter implements HttpFilter {
  private readonly base: LocalRateLimitSettings;
  private readonly name: string;
  private readonly forRoute: (config: D, path: string) => LocalRateLimitSettings;

  constructor(base: LocalRateLimitSettings, name: string, forRoute: (config: D, path: string) => LocalRateLimitSettings) {
    this.base = base;
    this.name = name;
    this.forRoute = forRoute;
  }

  decodeHeaders(s: HttpStream): FilterStatus {
    let f = this.base;
    const per = s.route.perFilterConfig.get(this.name) ?? s.virtualHost.perFilterConfig?.get(this.name);
    if (per) {
      if (per.disabled) return 'continue';
      try {
        f = this.forRoute(per.config, `typed_per_filter_config[${this.name}]`);
      } catch {
        return 'continue';
      }
    }
    if (!f.bucket || !passes(f.enabled)) return 'continue';
    f.stats.enabled.value++;
    if (f.bucket.tryConsume()) {
      f.stats.ok.value++;
      return 'continue';
    }
    f.stats.rate_limited.value++;
    if (!passes(f.enforced)) return 'continue';
    f.stats.enforced.value++;
    const res = s.res;
    res.setHeader('x-envoy-ratelimited', 'true');
    if (f.responseHeaders.add.length > 0) {
      const h: Record<string, unknown> = {};
      applyHeaderMutation(h, f.responseHeaders);
      for (const name in h) res.setHeader(name, h[name] as string);
    }
    s.sendLocalReply(f.status, 'local_rate_limited', 'RL');
    return 'stop';
  }
}

export const localRateLimitExtension: HttpFilterExtension = {
  typeUrl: LOCAL_RATELIMIT_TYPE_URL,
  category: 'http',
  validatePerRoute(c: D, path: string) {
    settings(c, undefined, realClock, path);
  },
  create(c: D, ctx, path, name) {
    const filterName = name || 'envoy.filters.http.local_ratelimit';
    const clock = ctx.clock ?? realClock;
    const base = settings(c, ctx.stats, clock, path);
    // One bucket per decoded per-route config: every stream on that route shares it.
    const cache = new WeakMap<D, LocalRateLimitSettings>();
    const forRoute = (config: D, p: string): LocalRateLimitSettings => {
      let s = cache.get(config);
      if (!s) cache.set(config, (s = settings(config, ctx.stats, clock, p)));
      return s;
    };
    return { name: filterName, terminal: false, create: () => new LocalRateLimitFilter(base, filterName, forRoute) };
  },
};
