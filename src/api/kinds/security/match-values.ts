// Checks on the string lists of AuthorizationPolicy sources, operations and
// conditions: no empty strings, Istio's wildcard forms, ports, IPs, path
// templates and the condition keys Istio supports.

import type { Diagnostics, FieldPath } from '../../diagnostics.ts';
import { checkCidr } from '../../validators.ts';

/** Istio's CheckEmptyValues, reported at the offending element. */
export function checkNoEmptyValues(diag: Diagnostics, path: FieldPath, values: readonly string[] | undefined): boolean {
  let ok = true;
  values?.forEach((v, i) => {
    if (v === '') {
      diag.error(path.index(i), 'empty value not allowed');
      ok = false;
    }
  });
  return ok;
}

/**
 * Istio matches these strings exactly, by prefix (`foo*`), by suffix (`*foo`)
 * or by presence (`*`); a `*` anywhere else would silently be an exact match.
 */
export function checkWildcards(diag: Diagnostics, path: FieldPath, values: readonly string[] | undefined): void {
  values?.forEach((v, i) => checkWildcard(diag, path.index(i), v));
}

function checkWildcard(diag: Diagnostics, path: FieldPath, v: string): void {
  if (!v.includes('*') || v === '*') return;
  const inner = v.slice(1, -1);
  const onlyEdge = !inner.includes('*') && v.startsWith('*') !== v.endsWith('*');
  if (!onlyEdge) diag.error(path, `invalid wildcard in "${v}": "*" is only supported as the whole value, a prefix ("*foo") or a suffix ("foo*")`);
}

// Istio's template forms `{*}` and `{**}` are supported; named variables,
// empty braces and bare `/*`, `/**` segments in a template are not.
const UNSUPPORTED_TEMPLATE = /\/\{\w+=\*\*?\}|\{\w*\}|\/\*\*?|\*\*?\//;

export function isPathTemplate(value: string): boolean {
  return value.includes('{*}') || value.includes('{**}');
}

/** Paths: either a path template Istio supports, or an exact/prefix/suffix/presence match. */
export function checkPaths(diag: Diagnostics, path: FieldPath, values: readonly string[] | undefined): void {
  values?.forEach((v, i) => {
    if (isPathTemplate(v)) {
      if (UNSUPPORTED_TEMPLATE.test(v)) diag.error(path.index(i), `invalid or unsupported path template "${v}": only "{*}" and "{**}" segments are supported`);
    } else {
      checkWildcard(diag, path.index(i), v);
    }
  });
}

/** Ports are strings holding a number 1..65535 (the proto field is a string list). */
export function checkPortStrings(diag: Diagnostics, path: FieldPath, values: readonly string[] | undefined): void {
  values?.forEach((v, i) => {
    if (v === '') return; // reported as an empty value
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < 1 || n > 65535) diag.error(path.index(i), `bad port "${v}": must be a number in 1..65535`);
  });
}

export function checkIps(diag: Diagnostics, path: FieldPath, values: readonly string[] | undefined): void {
  values?.forEach((v, i) => {
    if (v !== '') checkCidr(diag, path.index(i), v);
  });
}

/** `a[b]` with a non-empty b, as request.headers[...] and request.auth.claims[...] need. */
function isMapKey(key: string): boolean {
  const open = key.indexOf('[');
  return key.endsWith(']') && open > 0 && open < key.length - 2;
}

export const CONDITION_KEYS = [
  'request.headers[<name>]',
  'source.ip',
  'remote.ip',
  'source.namespace',
  'source.principal',
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
  'request.auth.claims[<name>]',
  'destination.ip',
  'destination.port',
  'connection.sni',
  'experimental.envoy.filters.*[<key>]',
] as const;

type ValueCheck = 'ips' | 'ports' | 'none';

/**
 * Istio's ValidateAttribute for a `when` key: the problem with the key, or
 * how its values are checked.
 */
export function conditionKey(key: string): { problem: string } | { values: ValueCheck } {
  const mapKey = (): { problem: string } | { values: ValueCheck } =>
    isMapKey(key) ? { values: 'none' } : { problem: `bad key "${key}": should have format a[b]` };
  if (key.startsWith('request.headers')) return mapKey();
  if (key.startsWith('request.auth.claims')) return mapKey();
  if (key.startsWith('experimental.envoy.filters.')) return mapKey();
  switch (key) {
    case 'source.ip':
    case 'remote.ip':
    case 'destination.ip':
      return { values: 'ips' };
    case 'destination.port':
      return { values: 'ports' };
    case 'source.namespace':
    case 'source.principal':
    case 'request.auth.principal':
    case 'request.auth.audiences':
    case 'request.auth.presenter':
    case 'connection.sni':
      return { values: 'none' };
    case 'destination.namespace':
      return { problem: `attribute ${key} is replaced by the metadata.namespace` };
    case 'destination.name':
    case 'destination.user':
      return { problem: `deprecated attribute ${key}: only supported in v1alpha1` };
  }
  if (key.startsWith('destination.labels')) return { problem: `attribute ${key} is replaced by the workload selector` };
  return { problem: `unknown attribute "${key}"; supported: ${CONDITION_KEYS.join(', ')}` };
}
