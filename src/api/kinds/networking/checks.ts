// Semantic checks shared by the networking.istio.io kinds: gateway references,
// exportTo, `namespace/host` entries, port names and protocols, addresses,
// header names and host containment. They follow pkg/config/validation in
// istio/istio and report into Diagnostics; none of them throws.

import type { Diagnostics, FieldPath } from '../../diagnostics.ts';
import { checkDuration, hostProblem, isDns1123Label, isIpAddress, parseDuration } from '../../validators.ts';

export const UNIX_PREFIX = 'unix://';

/** The DNS-1123 label rule, worded once so every message says the same. */
export const DNS1123_LABEL_RULE = 'must be a DNS-1123 label (lower case alphanumerics and "-", at most 63 characters)';

/**
 * Istio's ValidateDuration: well formed, at least 1ms and no finer than 1ms,
 * because Envoy's timers only honour milliseconds.
 */
export function checkMsDuration(diag: Diagnostics, path: FieldPath, text: string): number | undefined {
  const ms = checkDuration(diag, path, text);
  if (ms !== undefined && !Number.isInteger(Math.round(ms * 1e6) / 1e6)) {
    diag.error(path, `duration "${text}" is finer than 1ms: only durations to millisecond precision are supported`);
    return undefined;
  }
  return ms;
}

/** Durations that are whole seconds only (CORS max age): Envoy rounds anything finer away. */
export function checkSecondsDuration(diag: Diagnostics, path: FieldPath, text: string): void {
  const ms = checkMsDuration(diag, path, text);
  if (ms !== undefined && ms % 1000 !== 0) diag.error(path, `duration "${text}" is accurate only to seconds precision: use whole seconds`);
}

/** True when the text parses as a duration, without reporting anything. */
export function isDuration(text: string): boolean {
  return parseDuration(text) !== undefined;
}

/**
 * Gateway references in VirtualServices: `mesh`, a gateway `name` in the same
 * namespace, `ns/name`, or the legacy FQDN form `name.ns.svc.cluster.local` (warned).
 */
export function checkGatewayNames(diag: Diagnostics, path: FieldPath, names: readonly string[] | undefined): void {
  (names ?? []).forEach((name, i) => {
    const p = path.index(i);
    const slash = name.indexOf('/');
    if (slash < 0) {
      if (name.includes('.')) {
        const parts = name.split('.');
        diag.warn(p, `using legacy gateway name format "${name}"; prefer the <namespace>/<name> format: "${parts[1]}/${parts[0]}"`);
      }
      const problem = hostProblem(name, { wildcard: false });
      if (problem) diag.error(p, `invalid gateway name "${name}": ${problem}; use "mesh", "<name>" or "<namespace>/<name>"`);
      return;
    }
    const ns = name.slice(0, slash);
    const gw = name.slice(slash + 1);
    if (ns === '' || gw === '') {
      diag.error(p, `invalid gateway reference "${name}": namespace and gateway name cannot be empty; use "<namespace>/<name>"`);
      return;
    }
    if (!isDns1123Label(ns)) diag.error(p, `invalid namespace "${ns}" in gateway reference "${name}": ${DNS1123_LABEL_RULE}`);
    if (!isDns1123Label(gw)) diag.error(p, `invalid gateway name "${gw}" in gateway reference "${name}": ${DNS1123_LABEL_RULE}`);
  });
}

/**
 * exportTo: `.` (this namespace), `*` (all), a namespace name, and for
 * ServiceEntry also `~` (nobody). No duplicates; `*` and `~` stand alone.
 */
export function checkExportTo(diag: Diagnostics, path: FieldPath, exportTo: readonly string[] | undefined, opts: { serviceEntry?: boolean } = {}): void {
  if (!exportTo || exportTo.length === 0) return;
  const seen = new Set<string>();
  exportTo.forEach((entry, i) => {
    const p = path.index(i);
    if (entry === '~') {
      if (!opts.serviceEntry) diag.error(p, 'exportTo "~" (no one) is only allowed for ServiceEntry; use ".", "*" or a namespace name');
    } else if (entry !== '.' && entry !== '*' && !isDns1123Label(entry)) {
      diag.error(p, `invalid exportTo value "${entry}": only ".", "*"${opts.serviceEntry ? ', "~"' : ''} or a namespace name (a DNS-1123 label) are allowed`);
    }
    if (seen.has(entry)) diag.error(p, `duplicate entry "${entry}" in exportTo`);
    seen.add(entry);
  });
  if (seen.has('*') && exportTo.length > 1) diag.error(path, 'exportTo cannot have both public ("*") and other values; "*" already exports to every namespace');
  if (opts.serviceEntry && seen.has('~') && exportTo.length > 1) diag.error(path, 'exportTo cannot export to no one ("~") and to someone at the same time');
}

/**
 * A `namespace/host` entry as Gateway servers and Sidecar egress take it.
 * Gateways still accept a bare host (the legacy form, meaning any namespace);
 * Sidecars require the namespace part and also accept `~` for it.
 */
export function checkNamespaceHost(diag: Diagnostics, path: FieldPath, entry: string, where: 'gateway' | 'sidecar'): void {
  const slash = entry.indexOf('/');
  if (slash < 0) {
    if (where === 'sidecar') {
      diag.error(path, `host "${entry}" must be of the form namespace/dnsName, such as "*/${entry}" or "./${entry}"`);
      return;
    }
    const problem = hostProblem(entry);
    if (problem) diag.error(path, problem);
    return;
  }
  const ns = entry.slice(0, slash);
  const host = entry.slice(slash + 1);
  if (ns === '' || host === '') {
    diag.error(path, `host "${entry}": namespace and dnsName cannot be empty; use namespace/dnsName`);
    return;
  }
  const special = where === 'sidecar' ? ['*', '.', '~'] : ['*', '.'];
  if (!special.includes(ns) && !isDns1123Label(ns)) {
    diag.error(path, `invalid namespace "${ns}" in ${where} host "${entry}": use ${special.map((s) => `"${s}"`).join(', ')} or a namespace name`);
  }
  const problem = hostProblem(host);
  if (problem) diag.error(path, problem);
}

/** Istio's ValidateFQDN: a DNS name without wildcards. */
export function fqdnProblem(name: string): string | undefined {
  return hostProblem(name, { wildcard: false });
}

export function checkPortName(diag: Diagnostics, path: FieldPath, name: string): boolean {
  if (isDns1123Label(name)) return true;
  diag.error(path, `invalid port name "${name}": ${DNS1123_LABEL_RULE}`);
  return false;
}

// Istio's protocol.Parse: case-insensitive names; anything else is unsupported.
const PROTOCOLS = ['HTTP', 'HTTPS', 'HTTP2', 'GRPC', 'GRPC-WEB', 'HTTP_PROXY', 'TCP', 'TLS', 'UDP', 'MONGO', 'REDIS', 'MYSQL', 'THRIFT'];
const HTTP_PROTOCOLS = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB', 'HTTP_PROXY']);
const TLS_PROTOCOLS = new Set(['HTTPS', 'TLS']);

/** The canonical (upper-case) protocol name, or undefined when Istio does not know it. */
export function parseProtocol(name: string | undefined): string | undefined {
  const upper = (name ?? '').toUpperCase();
  return PROTOCOLS.includes(upper) ? upper : undefined;
}

export function isHttpProtocol(name: string | undefined): boolean {
  return HTTP_PROTOCOLS.has(parseProtocol(name) ?? '');
}

export function isTlsProtocol(name: string | undefined): boolean {
  return TLS_PROTOCOLS.has(parseProtocol(name) ?? '');
}

export function checkProtocol(diag: Diagnostics, path: FieldPath, name: string): boolean {
  if (parseProtocol(name) !== undefined) return true;
  diag.error(path, `invalid protocol "${name}"; supported protocols: ${PROTOCOLS.join(', ')}`);
  return false;
}

export function checkIpAddress(diag: Diagnostics, path: FieldPath, address: string): boolean {
  if (isIpAddress(address)) return true;
  diag.error(path, `"${address}" is not a valid IP address`);
  return false;
}

/** The part after `unix://`: an absolute path, or `@name` for an abstract socket. */
export function checkUnixAddress(diag: Diagnostics, path: FieldPath, address: string): boolean {
  const rest = address.slice(UNIX_PREFIX.length);
  if (rest === '') {
    diag.error(path, `unix address "${address}" must name a socket path, such as "unix:///var/run/app.sock"`);
    return false;
  }
  if (!rest.startsWith('/') && !rest.startsWith('@')) {
    diag.error(path, `unix address "${address}" must be an absolute path or an abstract socket "@name", such as "unix:///var/run/app.sock"`);
    return false;
  }
  return true;
}

const HEADER_NAME = /^[-_A-Za-z0-9]+$/;
const JWT_CLAIM_PREFIX = '@request.auth.claims.';

/** Header names in match conditions; `@request.auth.claims.<claim>` routes on JWT claims. */
export function checkMatchHeaderName(diag: Diagnostics, path: FieldPath, name: string): void {
  if (name.startsWith(JWT_CLAIM_PREFIX)) {
    if (name.length === JWT_CLAIM_PREFIX.length) diag.error(path, `header name "${name}" must name a claim after "${JWT_CLAIM_PREFIX}"`);
    return;
  }
  checkHeaderName(diag, path, name);
}

export function checkHeaderName(diag: Diagnostics, path: FieldPath, name: string, opts: { allowAuthority?: boolean; allowStar?: boolean } = {}): void {
  if (name === '') {
    diag.error(path, 'header name cannot be empty');
    return;
  }
  if (opts.allowAuthority && name.toLowerCase() === ':authority') return;
  if (opts.allowStar && name === '*') return;
  if (!HEADER_NAME.test(name)) diag.error(path, `header name "${name}" is not a valid header name: use letters, digits, "-" and "_"`);
}

/** host.Name.SubsetOf: every name `a` matches is also matched by `b` (`*` prefixes are wildcards). */
export function hostSubsetOf(a: string, b: string): boolean {
  if (b === '*') return true;
  if (b.startsWith('*')) {
    const suffix = b.slice(1);
    return a.startsWith('*') ? a.slice(1).endsWith(suffix) : a.endsWith(suffix);
  }
  return !a.startsWith('*') && a === b;
}

/** Reports more than one member of a protobuf oneof being set. */
export function checkOneOf(diag: Diagnostics, path: FieldPath, obj: object, fields: readonly string[], opts: { required?: boolean } = {}): string | undefined {
  const set = fields.filter((f) => (obj as Record<string, unknown>)[f] !== undefined);
  if (set.length > 1) diag.error(path, `only one of ${fields.join(', ')} may be set (found: ${set.join(', ')})`);
  else if (set.length === 0 && opts.required) diag.error(path, `one of ${fields.join(', ')} must be set`);
  return set[0];
}

/** Integer percentages of older fields (`maxEjectionPercent`, fault `percent`). */
export function checkPercentInt(diag: Diagnostics, path: FieldPath, value: number | undefined): void {
  if (value !== undefined && (value < 0 || value > 100)) diag.error(path, `percentage ${value} is not in range 0..100`);
}
