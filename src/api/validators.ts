// Semantic checks shared by many kinds: host names, ports, durations, regexes,
// IPs and CIDRs, labels. Each reports into Diagnostics with Istio's wording where
// Istio has one, and returns whether the value was valid.

import { isIP } from 'node:net';
import { RE2JS } from 're2js';
import type { Diagnostics, FieldPath } from './diagnostics.ts';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const WILDCARD_DNS1123_LABEL = /^(\*|(\*|\*-)?[a-z0-9]([-a-z0-9]*[a-z0-9])?)$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export function isDns1123Label(value: string): boolean {
  return value.length <= 63 && DNS1123_LABEL.test(value);
}

/** A Kubernetes object name: DNS-1123 subdomain (lower case, dots allowed, at most 253). */
export function isDns1123Subdomain(value: string): boolean {
  return value.length > 0 && value.length <= 253 && value.split('.').every((l) => isDns1123Label(l));
}

function dnsLabelsProblem(domain: string): string | undefined {
  const labels = domain.split('.');
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i]!;
    // A fully qualified name may end with a dot: its last label is empty.
    if (label === '' && i === labels.length - 1 && i > 0) continue;
    if (!isDns1123Label(label)) return `label "${label}" invalid`;
  }
  return undefined;
}

/**
 * Istio's ValidateWildcardDomain: a DNS name whose first label may be `*`
 * (or start with `*`), such as `*`, `*.example.com`, `reviews`, `reviews.default.svc.cluster.local`.
 */
export function hostProblem(host: string, opts: { wildcard?: boolean } = {}): string | undefined {
  const wildcard = opts.wildcard ?? true;
  if (host.length === 0) return 'empty domain name not allowed';
  if (host.length > 255) return `domain name "${host}" too long (max 255)`;
  const dot = host.indexOf('.');
  const first = dot < 0 ? host : host.slice(0, dot);
  const firstOk = wildcard ? WILDCARD_DNS1123_LABEL.test(first) && first.length <= 63 : isDns1123Label(first);
  if (!firstOk) {
    if (!wildcard && first.includes('*')) return `domain name "${host}" invalid (wildcards are not allowed here)`;
    return `domain name "${host}" invalid (label "${first}" invalid)`;
  }
  if (dot >= 0) {
    const problem = dnsLabelsProblem(host.slice(dot + 1));
    if (problem) return `domain name "${host}" invalid (${problem})`;
  }
  return undefined;
}

export function checkHost(diag: Diagnostics, path: FieldPath, host: string, opts: { wildcard?: boolean } = {}): boolean {
  const problem = hostProblem(host, opts);
  if (problem) diag.error(path, problem);
  return !problem;
}

export function checkPort(diag: Diagnostics, path: FieldPath, port: number): boolean {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    diag.error(path, `port number ${port} must be in the range 1..65535`);
    return false;
  }
  return true;
}

const DURATION_UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION = /^(\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/;

/** Parses a Go/protobuf duration (`1.5s`, `100ms`, `1h30m`) into milliseconds; undefined if malformed. */
export function parseDuration(text: string): number | undefined {
  if (typeof text !== 'string' || text.length === 0) return undefined;
  if (text === '0') return 0;
  let rest = text;
  let total = 0;
  while (rest.length > 0) {
    const m = DURATION.exec(rest);
    if (!m) return undefined;
    total += Number(m[1]) * DURATION_UNIT_MS[m[3]!]!;
    rest = rest.slice(m[0].length);
  }
  return total;
}

/** Istio's ValidateDuration: well formed and at least 1ms. */
export function checkDuration(diag: Diagnostics, path: FieldPath, text: string, opts: { min?: number; allowZero?: boolean } = {}): number | undefined {
  const ms = parseDuration(text);
  if (ms === undefined) {
    diag.error(path, `invalid duration "${text}" (use a number with a unit: ns, us, ms, s, m, h, such as "1.5s")`);
    return undefined;
  }
  if (opts.allowZero && ms === 0) return 0;
  const min = opts.min ?? 1;
  if (ms < min) {
    diag.error(path, `duration must be >= ${formatMs(min)}`);
    return undefined;
  }
  return ms;
}

function formatMs(ms: number): string {
  return ms >= 1000 && ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** RE2 syntax, as Envoy's safe_regex uses: no backreferences or lookaround. */
export function regexProblem(pattern: string): string | undefined {
  try {
    RE2JS.compile(pattern);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

export function checkRegex(diag: Diagnostics, path: FieldPath, pattern: string): boolean {
  const problem = regexProblem(pattern);
  if (problem !== undefined) diag.error(path, `invalid regex "${pattern}" (RE2 syntax): ${problem}`);
  return problem === undefined;
}

export function isIpAddress(value: string): boolean {
  return isIP(value) !== 0;
}

/** An IP address or a CIDR block such as `10.0.0.0/16` or `2001:db8::/32`. */
export function cidrProblem(value: string): string | undefined {
  const slash = value.indexOf('/');
  const ip = slash < 0 ? value : value.slice(0, slash);
  const family = isIP(ip);
  if (family === 0) return `"${value}" is not a valid IP address or CIDR block`;
  if (slash >= 0) {
    const bits = value.slice(slash + 1);
    const max = family === 4 ? 32 : 128;
    if (!/^\d+$/.test(bits) || Number(bits) > max) return `"${value}" has an invalid prefix length (0..${max})`;
  }
  return undefined;
}

export function checkCidr(diag: Diagnostics, path: FieldPath, value: string): boolean {
  const problem = cidrProblem(value);
  if (problem) diag.error(path, problem);
  return !problem;
}

/** Kubernetes label key: optional DNS prefix `example.com/` then a name of at most 63 characters. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (prefix !== undefined && !isDns1123Subdomain(prefix)) return `invalid label key "${key}": prefix must be a DNS subdomain`;
  if (name.length === 0 || name.length > 63 || !QUALIFIED_NAME.test(name)) {
    return `invalid label key "${key}": name must be 1-63 characters of [A-Za-z0-9_.-], starting and ending alphanumeric`;
  }
  return undefined;
}

export function labelValueProblem(value: string): string | undefined {
  if (value.length > 63 || !LABEL_VALUE.test(value)) {
    return `invalid label value "${value}": at most 63 characters of [A-Za-z0-9_.-], starting and ending alphanumeric`;
  }
  return undefined;
}

/** Checks every key and value of a label map (selectors, subsets, workload labels). */
export function checkLabels(diag: Diagnostics, path: FieldPath, labels: Record<string, string> | undefined): boolean {
  let ok = true;
  for (const [key, value] of Object.entries(labels ?? {})) {
    const keyProblem = labelKeyProblem(key);
    if (keyProblem) {
      diag.error(path.key(key), keyProblem);
      ok = false;
    }
    const valueProblem = labelValueProblem(String(value));
    if (valueProblem) {
      diag.error(path.key(key), valueProblem);
      ok = false;
    }
  }
  return ok;
}

/** A percentage (0..100) as Istio's `Percent` message or a plain number. */
export function checkPercentage(diag: Diagnostics, path: FieldPath, value: number): boolean {
  if (!(value >= 0 && value <= 100)) {
    diag.error(path, `percentage ${value} must be in the range 0..100`);
    return false;
  }
  return true;
}
