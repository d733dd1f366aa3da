// Unreachable and shadowed route rules of a VirtualService (Istio's
// analyzeUnreachable*Rules): rules are tried in order, so a rule after a
// catch-all, a match identical to an earlier one, or a URI prefix already
// covered by an earlier prefix never sees traffic. These are warnings.

import type { Diagnostics, FieldPath } from '../../diagnostics.ts';

interface Match {
  readonly name?: string;
  readonly uri?: { exact?: string; prefix?: string; regex?: string };
  readonly method?: { exact?: string; prefix?: string; regex?: string };
  readonly authority?: { exact?: string; prefix?: string; regex?: string };
  readonly headers?: Record<string, { exact?: string; prefix?: string; regex?: string }>;
  readonly queryParams?: Record<string, { exact?: string; prefix?: string; regex?: string }>;
  readonly withoutHeaders?: Record<string, { exact?: string; prefix?: string; regex?: string }>;
  readonly port?: number;
}

interface Rule<M> {
  readonly name?: string;
  readonly match?: readonly M[];
}

/** What a match selects, as a stable string: names and empty values do not change routing. */
function matchKey(match: object): string {
  const canonical = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(canonical);
    if (value === null || typeof value !== 'object') return value;
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v === undefined || v === false || v === 0 || v === '' || (Array.isArray(v) && v.length === 0)) continue;
      out[key] = canonical(v);
    }
    return out;
  };
  const { name: _name, ...rest } = match as { name?: string };
  return JSON.stringify(canonical(rest));
}

const ruleName = (rule: { name?: string }, i: number): string => (rule.name ? JSON.stringify(rule.name) : `#${i}`);
const matchName = (match: { name?: string }, j: number): string => (match.name ? JSON.stringify(match.name) : `#${j}`);

/** Rules of one list (http, tls or tcp) in order; returns the prefix matches for the overlap pass. */
function analyzeOrder<M extends object>(diag: Diagnostics, path: FieldPath, rules: readonly Rule<M>[], onNewMatch?: (rule: number, match: number) => void): void {
  const seen = new Map<string, number>();
  let catchAll = -1;
  rules.forEach((rule, i) => {
    const p = path.index(i);
    const matches = rule.match ?? [];
    if (matches.length === 0) {
      if (catchAll >= 0) diag.warn(p, `virtualService rule ${ruleName(rule, i)} not used (only the last rule can have no matches)`);
      catchAll = i;
      return;
    }
    if (catchAll >= 0) {
      diag.warn(p, `virtualService rule ${ruleName(rule, i)} not used (route without matches defined before)`);
      return;
    }
    let duplicates = 0;
    matches.forEach((m, j) => {
      const key = matchKey(m);
      const earlier = seen.get(key);
      if (earlier !== undefined) {
        diag.warn(p.key('match').index(j), `virtualService rule ${ruleName(rule, i)} match ${matchName(m as { name?: string }, j)} is not used (duplicate/overlapping match in rule ${ruleName(rules[earlier]!, earlier)})`);
        duplicates++;
        return;
      }
      seen.set(key, i);
      onNewMatch?.(i, j);
    });
    if (duplicates === matches.length) diag.warn(p, `virtualService rule ${ruleName(rule, i)} not used (all matches used by prior rules)`);
  });
}

interface PrefixMatch {
  readonly rule: number;
  readonly match: number;
  readonly prefix: string;
  readonly port: number;
  readonly method: string;
  readonly authority: string;
  readonly headers: Map<string, string>;
  readonly queryParams: Map<string, string>;
  readonly withoutHeaders: Map<string, string>;
}

const exactOrPrefix = (sm: { exact?: string; prefix?: string } | undefined): string =>
  sm?.exact ? `exact:${sm.exact}` : sm?.prefix ? `prefix:${sm.prefix}` : '';

const toMap = (m: Record<string, { exact?: string; prefix?: string }> | undefined): Map<string, string> =>
  new Map(Object.entries(m ?? {}).map(([k, v]) => [k, exactOrPrefix(v)]));

// A later value is covered when equal, or when the earlier one starts with it
// (Istio's rule, kept as it is so both report the same rules).
const coveredValue = (earlier: string, later: string): boolean => earlier === later || earlier.startsWith(later);

function coveredMap(earlier: Map<string, string>, later: Map<string, string>): boolean {
  if (earlier.size !== later.size) return false;
  for (const [k, v] of earlier) {
    const lv = later.get(k);
    if (lv === undefined || !coveredValue(v, lv)) return false;
  }
  return true;
}

function covers(a: PrefixMatch, b: PrefixMatch): boolean {
  return b.prefix.startsWith(a.prefix) && a.port === b.port && coveredValue(a.method, b.method) && coveredValue(a.authority, b.authority)
    && coveredMap(a.headers, b.headers) && coveredMap(a.queryParams, b.queryParams) && coveredMap(a.withoutHeaders, b.withoutHeaders);
}

/** HTTP rules: order, duplicate matches, then URI prefixes shadowed by an earlier, shorter prefix. */
export function analyzeHttpReachability(diag: Diagnostics, path: FieldPath, rules: readonly Rule<Match>[]): void {
  const prefixes: PrefixMatch[] = [];
  analyzeOrder(diag, path, rules, (i, j) => {
    const m = rules[i]!.match![j]!;
    const prefix = m.uri?.prefix;
    if (!prefix) return;
    prefixes.push({
      rule: i,
      match: j,
      prefix,
      port: m.port ?? 0,
      // Without a method condition the rule is compared as if it matched GET.
      method: exactOrPrefix(m.method) || 'exact:GET',
      authority: exactOrPrefix(m.authority),
      headers: toMap(m.headers),
      queryParams: toMap(m.queryParams),
      withoutHeaders: toMap(m.withoutHeaders),
    });
  });
  for (let a = 0; a < prefixes.length; a++) {
    for (let b = a + 1; b < prefixes.length; b++) {
      const earlier = prefixes[a]!;
      const later = prefixes[b]!;
      if (later.prefix === earlier.prefix || !covers(earlier, later)) continue;
      const laterRule = rules[later.rule]!;
      const earlierRule = rules[earlier.rule]!;
      const laterMatch = `${matchName(laterRule.match![later.match]!, later.match)} of prefix ${later.prefix}`;
      const earlierMatch = `${matchName(earlierRule.match![earlier.match]!, earlier.match)} of prefix ${earlier.prefix} on ${ruleName(earlierRule, earlier.rule)}`;
      diag.warn(path.index(later.rule).key('match').index(later.match),
        `virtualService rule ${ruleName(laterRule, later.rule)} match ${laterMatch} is not used (duplicate/overlapping match in rule ${earlierMatch})`);
    }
  }
}

/** TLS and TCP rules have no names and no prefixes: order and duplicates only. */
export function analyzeL4Reachability(diag: Diagnostics, path: FieldPath, rules: readonly Rule<object>[]): void {
  analyzeOrder(diag, path, rules.map((r) => ({ match: r.match })));
}
