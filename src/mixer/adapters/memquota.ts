// `memquota`: in-memory quotas over a rolling window, per quota instance and
// per distinct set of dimension values, with overrides for specific
// dimension values. Istio's mixer/adapter/memquota. Time comes from the
// injected clock; state lives as long as the handler (Mixer keeps a handler
// across config changes that do not touch it).

import { formatValue } from '../../api/index.ts';
import type { AttributeValue } from '../../api/index.ts';
import type { AdapterInfo, Instance, ParamError, QuotaArgs, QuotaResult } from './adapter.ts';
import { durationParam, isRecord } from './adapter.ts';

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

/** `name.namespace` and Istio 1.0's `name.kind.namespace` (`requestcount.quota.istio-system`) name the same instance. */
function canonicalQuotaName(name: string): string {
  const parts = name.split('.');
  return parts.length === 3 ? `${parts[0]}.${parts[2]}` : name;
}

export const memquotaAdapter: AdapterInfo<MemQuotaParams> = {
  name: 'memquota',
  description: 'Rolling-window quotas kept in memory',
  templates: ['quota'],
  defaultConfig: { quotas: [] },
  validate(raw) {
    const errors: ParamError[] = [];
    const quotas: QuotaConfig[] = [];
    const list = raw.quotas ?? [];
    if (!Array.isArray(list)) return { errors: [{ path: 'quotas', message: 'must be a list' }] };
    const names = new Set<string>();
    list.forEach((q: unknown, i) => {
      const at = `quotas[${i}]`;
      if (!isRecord(q)) return void errors.push({ path: at, message: 'must be an object' });
      const name = q.name;
      if (typeof name !== 'string' || name === '') errors.push({ path: `${at}.name`, message: 'must name the quota instance' });
      else if (names.has(canonicalQuotaName(name))) errors.push({ path: `${at}.name`, message: `duplicate quota "${name}"` });
      else names.add(canonicalQuotaName(name));
      const maxAmount = q.maxAmount;
      if (typeof maxAmount !== 'number' || !Number.isInteger(maxAmount) || maxAmount < 0) errors.push({ path: `${at}.maxAmount`, message: 'must be a non-negative integer' });
      const validDurationMs = q.validDuration === undefined ? 0 : durationParam(q.validDuration);
      if (validDurationMs === undefined) errors.push({ path: `${at}.validDuration`, message: 'must be a duration such as "1s"' });
      const overrides: QuotaOverride[] = [];
      const rawOverrides = q.overrides ?? [];
      if (!Array.isArray(rawOverrides)) errors.push({ path: `${at}.overrides`, message: 'must be a list' });
      else {
        rawOverrides.forEach((o: unknown, j) => {
          const oAt = `${at}.overrides[${j}]`;
          if (!isRecord(o)) return void errors.push({ path: oAt, message: 'must be an object' });
          const dims = o.dimensions ?? {};
          if (!isRecord(dims) || Object.keys(dims).length === 0) errors.push({ path: `${oAt}.dimensions`, message: 'must map at least one dimension to a value' });
          const max = o.maxAmount;
          if (typeof max !== 'number' || !Number.isInteger(max) || max < 0) errors.push({ path: `${oAt}.maxAmount`, message: 'must be a non-negative integer' });
          const dur = o.validDuration === undefined ? validDurationMs : durationParam(o.validDuration);
          if (dur === undefined) errors.push({ path: `${oAt}.validDuration`, message: 'must be a duration such as "1s"' });
          if (isRecord(dims)) overrides.push({ dimensions: Object.fromEntries(Object.entries(dims).map(([k, v]) => [k, String(v)])), maxAmount: max as number, validDurationMs: dur ?? 0 });
        });
      }
      quotas.push({ name: canonicalQuotaName(String(name)), maxAmount: maxAmount as number, validDurationMs: validDurationMs ?? 0, overrides });
    });
    if (errors.length > 0) return { errors };
    return { params: { quotas }, errors };
  },
  build(params, env) {
    const byName = new Map(params.quotas.map((q) => [q.name, q]));
    const windows = new Map<string, RollingWindow>();
    return {
      handleQuota(instance: Instance, args: QuotaArgs): QuotaResult {
        const config = byName.get(instance.name) ?? byName.get(instance.name.split('.')[0]!);
        // A quota the handler was not configured for is not limited (Istio granted it).
        if (!config) return { granted: args.amount, validDurationMs: 0 };
        const dims = (instance.fields.dimensions as ReadonlyMap<string, AttributeValue> | undefined) ?? new Map<string, AttributeValue>();
        const limit = limitFor(config, dims);
        const key = `${config.name}\u0000${[...dims].map(([k, v]) => `${k}=${formatValue(v)}`).sort().join('\u0000')}`;
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

function limitFor(config: QuotaConfig, dims: ReadonlyMap<string, AttributeValue>): { maxAmount: number; validDurationMs: number } {
  for (const o of config.overrides) {
    let all = true;
    for (const [k, v] of Object.entries(o.dimensions)) {
      const actual = dims.get(k);
      if (actual === undefined || formatValue(actual) !== v) {
        all = false;
        break;
      }
    }
    if (all) return o;
  }
  return config;
}

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
