// `memquota`: in-memory quotas over a rolling window, per quota instance and
// per distinct set of dimension values, with overrides for specific
// dimension values. Istio's mixer/adapter/memquota. Time comes from the
// injected clock; state lives as long as the handler (Mixer keeps a handler
// across config changes that do not touch it).

import type { AdapterInfo, Instance, ParamError, QuotaArgs, QuotaResult } from './adapter.ts';
import { durationParam } from './adapter.ts';
import { amountParam, dimensionsKey, instanceDimensions, matchingOverride, quotaFor, validateOverrideList, validateQuotaList } from './quota-limits.ts';

export interface QuotaOverride {
  readonly dimensions: Readonly<Record<string, string>>;
  readonly maxAmount: number;
  readonly validDurationMs: number;
}

export interface QuotaConfig {
  readonly name: string;
  readonly maxAmount: number;
  /** The rolling window; 0 means allocations never expire (a pool). */
  readonly validDurationMs: number;
  readonly overrides: readonly QuotaOverride[];
}

export interface MemQuotaParams {
  readonly quotas: readonly QuotaConfig[];
}

export const memquotaAdapter: AdapterInfo<MemQuotaParams> = {
  name: 'memquota',
  description: 'Rolling-window quotas kept in memory',
  templates: ['quota'],
  defaultConfig: { quotas: [] },
  validate(raw) {
    const errors: ParamError[] = [];
    const quotas = validateQuotaList(raw.quotas, errors, (q, at, name): QuotaConfig => {
      const maxAmount = amountParam(q.maxAmount, `${at}.maxAmount`, errors);
      const validDurationMs = q.validDuration === undefined ? 0 : durationParam(q.validDuration);
      if (validDurationMs === undefined) errors.push({ path: `${at}.validDuration`, message: 'must be a duration such as "1s"' });
      const overrides = validateOverrideList(q.overrides, at, errors, (o, oAt, dimensions): QuotaOverride => {
        const max = amountParam(o.maxAmount, `${oAt}.maxAmount`, errors);
        const dur = o.validDuration === undefined ? validDurationMs : durationParam(o.validDuration);
        if (dur === undefined) errors.push({ path: `${oAt}.validDuration`, message: 'must be a duration such as "1s"' });
        return { dimensions, maxAmount: max, validDurationMs: dur ?? 0 };
      });
      return { name, maxAmount, validDurationMs: validDurationMs ?? 0, overrides };
    });
    if (errors.length > 0) return { errors };
    return { params: { quotas }, errors };
  },
  build(params, env) {
    const byName = new Map(params.quotas.map((q) => [q.name, q]));
    const windows = new Map<string, RollingWindow>();
    return {
      handleQuota(instance: Instance, args: QuotaArgs): QuotaResult {
        const config = quotaFor(byName, instance.name);
        // A quota the handler was not configured for is not limited (Istio granted it).
        if (!config) return { granted: args.amount, validDurationMs: 0 };
        const dims = instanceDimensions(instance);
        const limit = matchingOverride(config.overrides, dims) ?? config;
        const key = `${config.name}\u0000${dimensionsKey(dims)}`;
        let window = windows.get(key);
        if (!window) {
          window = new RollingWindow();
          windows.set(key, window);
        }
        const now = env.now();
        window.expire(now, limit.validDurationMs);
        const available = Math.max(0, limit.maxAmount - window.total);
        const granted = args.amount <= available ? args.amount : args.bestEffort ? available : 0;
        if (granted > 0) window.add(now, granted);
        return { granted, validDurationMs: limit.validDurationMs };
      },
      close() {
        windows.clear();
      },
    };
  },
};

/** Allocations inside a rolling window, oldest first. */
class RollingWindow {
  private readonly times: number[] = [];
  private readonly amounts: number[] = [];
  private head = 0;
  total = 0;

  add(now: number, amount: number): void {
    this.times.push(now);
    this.amounts.push(amount);
    this.total += amount;
  }

  expire(now: number, windowMs: number): void {
    if (windowMs <= 0) return;
    while (this.head < this.times.length && this.times[this.head]! <= now - windowMs) {
      this.total -= this.amounts[this.head]!;
      this.head++;
    }
    // Compact now and then so the arrays do not grow without bound.
    if (this.head > 1024 && this.head * 2 > this.times.length) {
      this.times.splice(0, this.head);
      this.amounts.splice(0, this.head);
      this.head = 0;
    }
  }
}
