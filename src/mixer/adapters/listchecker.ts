// `listchecker`: checks a listentry instance's value against a list of
// strings, case-insensitive strings, IP addresses/CIDR ranges or regular
// expressions, as a whitelist (miss -> NOT_FOUND) or a blacklist (hit ->
// PERMISSION_DENIED). Istio's mixer/adapter/list; the list is inline
// (`overrides`); fetching it from providerUrl is not supported.

import { BlockList, isIP } from 'node:net';
import { RE2JS } from 're2js';
import { formatValue } from '../../api/index.ts';
import type { AttributeValue } from '../../api/index.ts';
import type { AdapterInfo, CheckResult, ParamError } from './adapter.ts';
import { StatusCode, durationParam } from './adapter.ts';

export const LIST_ENTRY_TYPES = ['STRINGS', 'CASE_INSENSITIVE_STRINGS', 'IP_ADDRESSES', 'REGEX'] as const;
export type ListEntryType = (typeof LIST_ENTRY_TYPES)[number];

export interface ListCheckerParams {
  readonly overrides: readonly string[];
  readonly entryType: ListEntryType;
  readonly blacklist: boolean;
  readonly cachingIntervalMs: number;
  readonly cachingUseCount: number;
}

export const listcheckerAdapter: AdapterInfo<ListCheckerParams> = {
  name: 'listchecker',
  description: 'Checks whether a value is (or is not) in a list of strings, IP ranges or patterns',
  templates: ['listentry'],
  defaultConfig: { overrides: [], entryType: 'STRINGS', blacklist: false, cachingIntervalMs: 300_000, cachingUseCount: 10_000 },
  validate(raw) {
    const errors: ParamError[] = [];
    const d = listcheckerAdapter.defaultConfig;
    if (raw.providerUrl !== undefined && raw.providerUrl !== '') errors.push({ path: 'providerUrl', message: 'fetching the list from a URL is not supported; list the entries in overrides' });
    const overrides = raw.overrides ?? d.overrides;
    if (!Array.isArray(overrides) || !overrides.every((o) => typeof o === 'string')) errors.push({ path: 'overrides', message: 'must be a list of strings' });
    const entryType = raw.entryType ?? d.entryType;
    if (!LIST_ENTRY_TYPES.includes(entryType as ListEntryType)) errors.push({ path: 'entryType', message: `must be one of ${LIST_ENTRY_TYPES.join(', ')}` });
    const blacklist = raw.blacklist ?? d.blacklist;
    if (typeof blacklist !== 'boolean') errors.push({ path: 'blacklist', message: 'must be true or false' });
    const cachingIntervalMs = raw.cachingInterval === undefined ? d.cachingIntervalMs : durationParam(raw.cachingInterval);
    if (cachingIntervalMs === undefined) errors.push({ path: 'cachingInterval', message: 'must be a duration such as "60s"' });
    const cachingUseCount = raw.cachingUseCount ?? d.cachingUseCount;
    if (typeof cachingUseCount !== 'number' || cachingUseCount < 0) errors.push({ path: 'cachingUseCount', message: 'must be a non-negative integer' });
    if (Array.isArray(overrides)) {
      overrides.forEach((entry, i) => {
        if (typeof entry !== 'string') return;
        if (entryType === 'IP_ADDRESSES' && !parseCidr(entry)) errors.push({ path: `overrides[${i}]`, message: `"${entry}" is not an IP address or CIDR range` });
        if (entryType === 'REGEX') {
          try {
            RE2JS.compile(entry);
          } catch (err) {
            errors.push({ path: `overrides[${i}]`, message: `invalid regular expression: ${(err as Error).message}` });
          }
        }
      });
    }
    if (errors.length > 0) return { errors };
    return { params: { overrides: overrides as string[], entryType: entryType as ListEntryType, blacklist: blacklist as boolean, cachingIntervalMs: cachingIntervalMs!, cachingUseCount: cachingUseCount as number }, errors };
  },
  build(params) {
    const contains = buildMatcher(params);
    const result = (code: number, message: string): CheckResult => ({ code, message, validDurationMs: params.cachingIntervalMs, validUseCount: params.cachingUseCount });
    const ok = Object.freeze(result(StatusCode.OK, ''));
    return {
      handleCheck(instance) {
        const raw = instance.fields.value as AttributeValue | undefined;
        if (raw === undefined) return result(StatusCode.INVALID_ARGUMENT, `${instance.name}: the listentry value is absent`);
        const value = formatValue(raw);
        const found = contains(value);
        if (params.blacklist) return found ? result(StatusCode.PERMISSION_DENIED, `${value} is blacklisted`) : ok;
        return found ? ok : result(StatusCode.NOT_FOUND, `${value} is not whitelisted`);
      },
      close() {},
    };
  },
};

function parseCidr(entry: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [address, bits] = entry.split('/');
  const kind = isIP(address ?? '');
  if (kind === 0) return undefined;
  const max = kind === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : Number(bits);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return undefined;
  return { address: address!, prefix, family: kind === 4 ? 'ipv4' : 'ipv6' };
}

function buildMatcher(params: ListCheckerParams): (value: string) => boolean {
  switch (params.entryType) {
    case 'STRINGS': {
      const set = new Set(params.overrides);
      return (v) => set.has(v);
    }
    case 'CASE_INSENSITIVE_STRINGS': {
      const set = new Set(params.overrides.map((o) => o.toLowerCase()));
      return (v) => set.has(v.toLowerCase());
    }
    case 'IP_ADDRESSES': {
      const list = new BlockList();
      for (const entry of params.overrides) {
        const c = parseCidr(entry)!;
        list.addSubnet(c.address, c.prefix, c.family);
      }
      return (v) => {
        const kind = isIP(v);
        return kind !== 0 && list.check(v, kind === 4 ? 'ipv4' : 'ipv6');
      };
    }
    case 'REGEX': {
      // Anchored, as Istio's listchecker matched whole values.
      const res = params.overrides.map((o) => RE2JS.compile(o));
      return (v) => res.some((re) => re.matches(v));
    }
  }
}
