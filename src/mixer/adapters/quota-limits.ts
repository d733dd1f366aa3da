// What the quota adapters (memquota, redisquota) share: how a quota list and
// its overrides are validated, how an instance finds its quota, which
// override applies to its dimensions (the first whose dimensions all match,
// compared as text, as Istio did), and one stable text for a set of
// dimension values that keys its window.

import { formatValue } from '../../api/index.ts';
import type { AttributeValue } from '../../api/index.ts';
import type { Instance, ParamError } from './adapter.ts';
import { isRecord } from './adapter.ts';

/** The part of an override both adapters read. */
export interface OverrideMatch {
  readonly dimensions: Readonly<Record<string, string>>;
  readonly maxAmount: number;
}

/** `name.namespace` and Istio 1.0's `name.kind.namespace` (`requestcount.quota.istio-system`) name the same instance. */
export function canonicalQuotaName(name: string): string {
  const parts = name.split('.');
  return parts.length === 3 ? `${parts[0]}.${parts[2]}` : name;
}

/** The quota configured for an instance (by `name.namespace`, or by bare name); undefined when the handler has none. */
export function quotaFor<Q>(byName: ReadonlyMap<string, Q>, instanceName: string): Q | undefined {
  return byName.get(instanceName) ?? byName.get(instanceName.split('.')[0]!);
}

/** The instance's `dimensions` field (empty when absent). */
export function instanceDimensions(instance: Instance): ReadonlyMap<string, AttributeValue> {
  return (instance.fields.dimensions as ReadonlyMap<string, AttributeValue> | undefined) ?? new Map<string, AttributeValue>();
}

/** The first override whose every dimension equals the instance's value (as text); undefined when none does. */
export function matchingOverride<O extends OverrideMatch>(overrides: readonly O[], dims: ReadonlyMap<string, AttributeValue>): O | undefined {
  return overrides.find((o) => Object.entries(o.dimensions).every(([k, v]) => {
    const actual = dims.get(k);
    return actual !== undefined && formatValue(actual) === v;
  }));
}

/** The dimension values as one stable text: sorted by name, JSON so that no value can imitate a separator. */
export function dimensionsKey(dims: ReadonlyMap<string, AttributeValue>): string {
  return JSON.stringify([...dims].map(([k, v]) => [k, formatValue(v)]).sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : 0)));
}

/**
 * Walks `quotas`: reports a non-list, non-object entries, missing or
 * duplicate names, and hands each entry with its canonical name to `parse`
 * for the adapter's own fields. Errors are appended to `errors`.
 */
export function validateQuotaList<T>(raw: unknown, errors: ParamError[], parse: (q: Readonly<Record<string, unknown>>, at: string, name: string) => T): T[] {
  const out: T[] = [];
  const list = raw ?? [];
  if (!Array.isArray(list)) {
    errors.push({ path: 'quotas', message: 'must be a list' });
    return out;
  }
  const names = new Set<string>();
  list.forEach((q: unknown, i) => {
    const at = `quotas[${i}]`;
    if (!isRecord(q)) return void errors.push({ path: at, message: 'must be an object' });
    const name = q.name;
    if (typeof name !== 'string' || name === '') errors.push({ path: `${at}.name`, message: 'must name the quota instance' });
    else if (names.has(canonicalQuotaName(name))) errors.push({ path: `${at}.name`, message: `duplicate quota "${name}"` });
    else names.add(canonicalQuotaName(name));
    out.push(parse(q, at, canonicalQuotaName(String(name))));
  });
  return out;
}

/**
 * Walks a quota's `overrides`: each must be an object mapping at least one
 * dimension to a value; `parse` reads the adapter's other fields. The
 * dimension values are kept as text (Istio compared them as strings).
 */
export function validateOverrideList<T>(raw: unknown, at: string, errors: ParamError[], parse: (o: Readonly<Record<string, unknown>>, oAt: string, dimensions: Record<string, string>) => T): T[] {
  const out: T[] = [];
  const list = raw ?? [];
  if (!Array.isArray(list)) {
    errors.push({ path: `${at}.overrides`, message: 'must be a list' });
    return out;
  }
  list.forEach((o: unknown, j) => {
    const oAt = `${at}.overrides[${j}]`;
    if (!isRecord(o)) return void errors.push({ path: oAt, message: 'must be an object' });
    const dims = o.dimensions ?? {};
    if (!isRecord(dims) || Object.keys(dims).length === 0) errors.push({ path: `${oAt}.dimensions`, message: 'must map at least one dimension to a value' });
    const dimensions = isRecord(dims) ? Object.fromEntries(Object.entries(dims).map(([k, v]) => [k, String(v)])) : {};
    out.push(parse(o, oAt, dimensions));
  });
  return out;
}

/** An integer amount at `path`, at least `min`; records an error and returns `min` otherwise. */
export function amountParam(v: unknown, path: string, errors: ParamError[], min = 0): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= min) return v;
  errors.push({ path, message: min === 0 ? 'must be a non-negative integer' : `must be an integer of at least ${min}` });
  return min;
}
