// `redisquota`: rate-limit quotas counted on a Redis server, so that every
// Mixer process pointing at the same server shares one count (memquota counts
// per process). Istio's mixer/adapter/redisquota: FIXED_WINDOW (a counter per
// window) or ROLLING_WINDOW (buckets that leave the window one by one), per
// quota instance and distinct set of dimension values, with overrides.
//
// When Redis does not answer within REDIS_TIMEOUT_MS the quota is denied
// (granted 0, no validity), as Istio's adapter answered UNAVAILABLE with no
// amount: the proxy gets OVER_LIMIT (429) quickly instead of hanging, and
// the next call after Redis is back is counted again.

import { createHash } from 'node:crypto';
import type { AttributeValue } from '../../api/index.ts';
import type { AdapterInfo, Instance, ParamError, QuotaArgs, QuotaResult } from './adapter.ts';
import { durationParam } from './adapter.ts';
import { amountParam, dimensionsKey, instanceDimensions, matchingOverride, quotaFor, validateOverrideList, validateQuotaList } from './quota-limits.ts';
import type { OverrideMatch } from './quota-limits.ts';
import { RedisQuotaStore } from './redis-quota-store.ts';
import type { RateLimitAlgorithm } from './redis-quota-store.ts';
import { MixerErrorCode } from '../errors.ts';

export interface RedisQuotaConfig {
  readonly name: string;
  readonly maxAmount: number;
  readonly validDurationMs: number;
  /** ROLLING_WINDOW only (0 for FIXED_WINDOW). */
  readonly bucketDurationMs: number;
  readonly rateLimitAlgorithm: RateLimitAlgorithm;
  /** Overrides share the quota's window; only the amount differs (Istio's Override has no duration). */
  readonly overrides: readonly OverrideMatch[];
}

export interface RedisQuotaParams {
  /** `host:port` (`[v6]:port` for IPv6). */
  readonly redisServerUrl: string;
  readonly connectionPoolSize: number;
  readonly quotas: readonly RedisQuotaConfig[];
}

const ALGORITHMS: readonly RateLimitAlgorithm[] = ['FIXED_WINDOW', 'ROLLING_WINDOW'];
const DEFAULT_POOL_SIZE = 10;
/** More connections than this to one Redis help nobody (a Redis server is single-threaded). */
const MAX_POOL_SIZE = 256;
/** Each rolling-window call walks the buckets it evicts: keep their number per window bounded. */
export const MAX_BUCKETS_PER_WINDOW = 10_000;
/** Dimension values longer than this (request paths, headers) are keyed by their SHA-256 instead. */
const MAX_KEY_DIMENSIONS_CHARS = 256;

/** `host:port` -> parts; undefined when malformed. */
export function parseRedisAddress(url: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:/[\]]+)):(\d{1,5})$/.exec(url);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1] ?? m[2]!, port };
}

/** The Redis key prefix of one quota and one set of dimension values: readable when short, hashed when long. */
export function redisQuotaKey(quotaName: string, dims: ReadonlyMap<string, AttributeValue>): string {
  const text = dimensionsKey(dims);
  const dimsPart = text.length <= MAX_KEY_DIMENSIONS_CHARS ? text : `sha256:${createHash('sha256').update(text).digest('hex')}`;
  return `mesh:redisquota:${quotaName}:${dimsPart}`;
}

function positiveDuration(v: unknown, path: string, errors: ParamError[]): number {
  const ms = durationParam(v);
  if (ms === undefined || Math.round(ms) < 1) {
    errors.push({ path, message: 'must be a duration of at least 1ms such as "1s"' });
    return 0;
  }
  return Math.round(ms);
}

export const redisquotaAdapter: AdapterInfo<RedisQuotaParams> = {
  name: 'redisquota',
  description: 'Fixed- and rolling-window quotas counted on a Redis server shared by Mixer replicas',
  templates: ['quota'],
  defaultConfig: { redisServerUrl: 'localhost:6379', connectionPoolSize: DEFAULT_POOL_SIZE, quotas: [] },
  validate(raw) {
    const errors: ParamError[] = [];
    const redisServerUrl = raw.redisServerUrl ?? redisquotaAdapter.defaultConfig.redisServerUrl;
    if (typeof redisServerUrl !== 'string' || redisServerUrl === '') errors.push({ path: 'redisServerUrl', message: 'must name the Redis server as host:port' });
    else if (!parseRedisAddress(redisServerUrl)) errors.push({ path: 'redisServerUrl', message: `"${redisServerUrl}" is not host:port (such as "redis.default.svc:6379" or "[::1]:6379")` });
    let connectionPoolSize = amountParam(raw.connectionPoolSize ?? DEFAULT_POOL_SIZE, 'connectionPoolSize', errors);
    if (connectionPoolSize > MAX_POOL_SIZE) errors.push({ path: 'connectionPoolSize', message: `must be at most ${MAX_POOL_SIZE}` });
    // 0 meant the client library's default in Istio.
    if (connectionPoolSize === 0) connectionPoolSize = DEFAULT_POOL_SIZE;
    const quotas = validateQuotaList(raw.quotas, errors, (q, at, name): RedisQuotaConfig => {
      const maxAmount = amountParam(q.maxAmount, `${at}.maxAmount`, errors);
      const validDurationMs = positiveDuration(q.validDuration, `${at}.validDuration`, errors);
      const algorithm = q.rateLimitAlgorithm ?? 'FIXED_WINDOW';
      const rateLimitAlgorithm = ALGORITHMS.find((a) => a === algorithm) ?? 'FIXED_WINDOW';
      if (!ALGORITHMS.includes(algorithm as RateLimitAlgorithm)) errors.push({ path: `${at}.rateLimitAlgorithm`, message: `must be FIXED_WINDOW or ROLLING_WINDOW, not ${JSON.stringify(algorithm)}` });
      let bucketDurationMs = 0;
      if (rateLimitAlgorithm === 'ROLLING_WINDOW') {
        bucketDurationMs = positiveDuration(q.bucketDuration, `${at}.bucketDuration`, errors);
        if (bucketDurationMs > 0 && validDurationMs > 0 && bucketDurationMs >= validDurationMs) errors.push({ path: `${at}.bucketDuration`, message: `must be shorter than validDuration (${validDurationMs}ms) for ROLLING_WINDOW` });
        else if (bucketDurationMs > 0 && validDurationMs / bucketDurationMs > MAX_BUCKETS_PER_WINDOW) errors.push({ path: `${at}.bucketDuration`, message: `makes more than ${MAX_BUCKETS_PER_WINDOW} buckets per window; use longer buckets` });
      } else if (q.bucketDuration !== undefined && durationParam(q.bucketDuration) === undefined) {
        errors.push({ path: `${at}.bucketDuration`, message: 'must be a duration such as "100ms" (FIXED_WINDOW does not use it)' });
      }
      const overrides = validateOverrideList(q.overrides, at, errors, (o, oAt, dimensions): OverrideMatch => {
        if (o.validDuration !== undefined) errors.push({ path: `${oAt}.validDuration`, message: 'is not supported by redisquota: overrides share the quota\'s validDuration' });
        // Istio: "quotas.overrides.max_amount must be > 0".
        return { dimensions, maxAmount: amountParam(o.maxAmount, `${oAt}.maxAmount`, errors, 1) };
      });
      return { name, maxAmount, validDurationMs, bucketDurationMs, rateLimitAlgorithm, overrides };
    });
    if (errors.length > 0) return { errors };
    return { params: { redisServerUrl: redisServerUrl as string, connectionPoolSize, quotas }, errors };
  },
  build(params, env) {
    const byName = new Map(params.quotas.map((q) => [q.name, q]));
    const address = parseRedisAddress(params.redisServerUrl)!;
    const store = new RedisQuotaStore(address.host, address.port, params.connectionPoolSize);
    // One log line when Redis stops answering and one when it answers again, never one per request.
    let failing = false;
    const log = (level: 'warn' | 'info', msg: string, extra: Record<string, unknown> = {}): void =>
      env.write('stderr', JSON.stringify({ level, scope: 'mixer', adapter: 'redisquota', handler: env.handlerName, redis: store.address, msg, ...extra }));
    return {
      async handleQuota(instance: Instance, args: QuotaArgs): Promise<QuotaResult> {
        const config = quotaFor(byName, instance.name);
        // A quota the handler was not configured for is not limited (Istio granted it).
        if (!config) return { granted: args.amount, validDurationMs: 0 };
        const dims = instanceDimensions(instance);
        const maxAmount = matchingOverride(config.overrides, dims)?.maxAmount ?? config.maxAmount;
        try {
          const answer = await store.allocate(config.rateLimitAlgorithm, {
            key: redisQuotaKey(config.name, dims),
            maxAmount,
            windowMs: config.validDurationMs,
            bucketMs: config.bucketDurationMs,
            amount: args.amount,
            bestEffort: args.bestEffort,
            now: env.now(),
          });
          if (failing) {
            failing = false;
            log('info', 'Redis answers again; quotas are counted again');
          }
          return answer;
        } catch (err) {
          if (!failing) {
            failing = true;
            log('warn', 'Redis does not answer; quotas are denied until it does', { code: MixerErrorCode.REDIS_UNAVAILABLE, err: (err as Error).message });
          }
          return { granted: 0, validDurationMs: 0 };
        }
      },
      close() {
        store.close();
      },
    };
  },
};
