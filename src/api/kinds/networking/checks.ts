// Semantic checks shared by the networking.istio.io kinds: host names, gateway
// references, exportTo, `namespace/host` entries, ports and protocols,
// addresses, header names, durations and selectors. They follow
// pkg/config/validation in istio/istio (wording included, with the allowed
// values added where Istio leaves them out) and report into Diagnostics;
// none of them throws.

import type { Diagnostics, FieldPath } from '../../diagnostics.ts';
import { isIP } from 'node:net';
import { checkLabels, hostProblem, isDns1123Label, isIpAddress, parseDuration } from '../../validators.ts';

export const UNIX_PREFIX = 'unix://';

/** The DNS-1123 label rule, worded once so every message says the same. */
export const DNS1123_LABEL_RULE = 'must be a DNS-1123 label (lower case alphanumerics and "-", at most 63 characters)';

// Istio's ValidateDNS1123Labels also rejects an all-numeric top-level label, so
// `10.0.0.1` is not a host name (callers that accept IPs check for one first).
function numericTldProblem(domain: string): string | undefined {
  const labels = domain.split('.');
  if (labels.length < 2) return undefined;
  const tld = labels[labels.length - 1]!;
  if (/^\d+$/.test(tld)) return `domain name "${domain}" invalid (top level domain "${tld}" cannot be all-numeric)`;
  return undefined;
}

/** Istio's ValidateWildcardDomain: `*`, `*.example.com`, `reviews`, `reviews.default.svc.cluster.local`. */
export function wildcardDomainProblem(host: string): string | undefined {
  return hostProblem(host) ?? numericTldProblem(host);
}

/** Istio's ValidateFQDN: a DNS name without wildcards. */
export function fqdnProblem(name: string): string | undefined {
  return hostProblem(name, { wildcard: false }) ?? numericTldProblem(name);
}

export function checkWildcardDomain(diag: Diagnostics, path: FieldPath, host: string): boolean {
  const problem = wildcardDomainProblem(host);
  if (problem) diag.error(path, problem);
  return !problem;
}

/** `*foo.com` or `a.*.com`: a wildcard must be a whole first label. */
export function partialWildcardProblem(host: string): string | undefined {
  if (host.includes('*') && host !== '*' && !host.startsWith('*.')) return `partial wildcard "${host}" not allowed; use "*" or "*.<domain>"`;
  return undefined;
}

/**
 * Istio's ValidateDuration: a duration of at least 1ms, to millisecond
 * precision, because Envoy's timers honour no finer. `allowZero` for fields
 * where 0s means "disabled".
 */
export function checkMsDuration(diag: Diagnostics, path: FieldPath, text: string, opts: { allowZero?: boolean } = {}): number | undefined {
  const ms = parseDuration(text);
  if (ms === undefined) {
    diag.error(path, `invalid duration "${text}" (use a number with a unit: ns, us, ms, s, m, h, such as "1.5s")`);
    return undefined;
  }
  if (opts.allowZero && ms === 0) return 0;
  if (ms < 1) {
    diag.error(path, `duration "${text}" must be greater than 1ms`);
    return undefined;
  }
  if (!Number.isInteger(Math.round(ms * 1e6) / 1e6)) {
    diag.error(path, `duration "${text}": only durations to ms precision are supported`);
    return undefined;
  }
  return ms;
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
        diag.warn(p, `using legacy gatewayName format "${name}"; prefer the <namespace>/<name> format: "${parts[1]}/${parts[0]}"`);
      }
      const problem = fqdnProblem(name);
      if (problem) diag.error(p, `invalid gateway name "${name}": ${problem}; use "mesh", "<name>" or "<namespace>/<name>"`);
      return;
    }
    const ns = name.slice(0, slash);
    const gw = name.slice(slash + 1);
    if (ns === '' || gw === '') {
      diag.error(p, `invalid gateway reference "${name}": config namespace and gateway name cannot be empty; use "<namespace>/<name>"`);
      return;
    }
    if (!isDns1123Label(ns)) diag.error(p, `invalid value for namespace: "${ns}" in gateway reference "${name}": ${DNS1123_LABEL_RULE}`);
    if (!isDns1123Label(gw)) diag.error(p, `invalid value for gateway name: "${gw}" in gateway reference "${name}": ${DNS1123_LABEL_RULE}`);
  });
}

export interface ExportToOptions {
  /** The namespace of the object: `.` stands for it, and duplicates are found through it. */
  readonly namespace: string;
  /** ServiceEntry alone may use `~` (visible to nobody but its own workloads). */
  readonly serviceEntry?: boolean;
  /** A DestinationRule with a workloadSelector may only be visible in its own namespace. */
  readonly destinationRuleWithSelector?: boolean;
}

/** Istio's validateExportTo. */
export function checkExportTo(diag: Diagnostics, path: FieldPath, exportTo: readonly string[] | undefined, opts: ExportToOptions): void {
  if (!exportTo || exportTo.length === 0) return;
  const seen = new Set<string>();
  exportTo.forEach((entry, i) => {
    const p = path.index(i);
    const key = entry === '.' ? opts.namespace : entry;
    if (seen.has(key)) {
      if (key !== entry) {
        diag.error(p, `duplicate entries in exportTo: . and current namespace ${opts.namespace}`);
      } else {
        diag.error(p, `duplicate entries in exportTo for entry ${entry}`);
      }
      return;
    }
    if (entry === '~' && !opts.serviceEntry) {
      diag.error(p, 'exportTo ~ (none) is not allowed for Istio configuration objects other than ServiceEntry; use ".", "*" or a namespace name');
      return;
    }
    if (entry !== '.' && entry !== '*' && entry !== '~' && !isDns1123Label(entry)) {
      diag.error(p, `invalid exportTo entry "${entry}": only ".", "*"${opts.serviceEntry ? ', "~"' : ''} or a valid DNS-1123 label (a namespace name) is allowed`);
      return;
    }
    seen.add(key);
  });
  if (opts.destinationRuleWithSelector && seen.size > 0) {
    if (!seen.has(opts.namespace)) diag.error(path, 'destination rule with workload selector cannot have exportTo beyond current namespace');
    else if (seen.size > 1) diag.error(path, 'destination rule with workload selector cannot have multiple entries in exportTo');
  }
  if (seen.has('*') && exportTo.length > 1) diag.error(path, 'cannot have both public (*) and non-public exportTo values for a resource');
  if (seen.has('~') && exportTo.length > 1) diag.error(path, 'cannot export service entry to no one (~) and someone');
}

/**
 * A `namespace/host` entry as Gateway servers and Sidecar egress take it.
 * Gateways still accept a bare host (the legacy form, meaning any namespace)
 * and IP addresses; Sidecars require the namespace part and also accept `~`
 * for it. Short names are not allowed: the host part needs a dot (or is `*`).
 */
export function checkNamespaceHost(diag: Diagnostics, path: FieldPath, entry: string, where: 'gateway' | 'sidecar'): void {
  const slash = entry.indexOf('/');
  if (slash < 0) {
    if (where === 'sidecar') {
      diag.error(path, `host "${entry}" must be of form namespace/dnsName, such as "*/${entry}" or "./${entry}"`);
      return;
    }
    checkHostPart(diag, path, entry, where);
    return;
  }
  const ns = entry.slice(0, slash);
  const host = entry.slice(slash + 1);
  if (ns === '' || host === '') {
    diag.error(path, `host "${entry}": config namespace and dnsName in host entry cannot be empty`);
    return;
  }
  const special = where === 'sidecar' ? ['*', '.', '~'] : ['*', '.'];
  if (!special.includes(ns) && !isDns1123Label(ns)) {
    diag.error(path, `invalid namespace value "${ns}" in ${where} host "${entry}": use ${special.map((s) => `"${s}"`).join(', ')} or a namespace name`);
  }
  checkHostPart(diag, path, host, where);
}

function checkHostPart(diag: Diagnostics, path: FieldPath, host: string, where: 'gateway' | 'sidecar'): void {
  if (host !== '*' && !host.includes('.')) diag.error(path, `short names (non FQDN) are not allowed: "${host}"; use a fully qualified name such as "${host}.<namespace>.svc.cluster.local"`);
  const problem = wildcardDomainProblem(host);
  if (problem && !(where === 'gateway' && isIpAddress(host))) diag.error(path, problem);
  const partial = partialWildcardProblem(host);
  if (partial) diag.error(path, partial);
}

export function checkPortName(diag: Diagnostics, path: FieldPath, name: string): boolean {
  if (isDns1123Label(name)) return true;
  diag.error(path, `invalid port name: "${name}": ${DNS1123_LABEL_RULE}`);
  return false;
}

// Istio's protocol.Parse: case-insensitive names; anything else is unsupported.
const PROTOCOLS = ['HTTP', 'HTTPS', 'HTTP2', 'GRPC', 'GRPC-WEB', 'HTTP_PROXY', 'TCP', 'TLS', 'UDP', 'MONGO', 'REDIS', 'MYSQL', 'THRIFT'];
const HTTP_PROTOCOLS = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB', 'HTTP_PROXY']);
const TLS_PROTOCOLS = new Set(['HTTPS', 'TLS']);
const TCP_PROTOCOLS = new Set(['TCP', 'HTTPS', 'TLS', 'MONGO', 'REDIS', 'MYSQL']);

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

/** protocol.IsTCP: protocols proxied as plain TCP streams (TLS included). */
export function isTcpProtocol(name: string | undefined): boolean {
  return TCP_PROTOCOLS.has(parseProtocol(name) ?? '');
}

/** ValidateProtocol: empty is allowed (the proxy sniffs the protocol). */
export function checkProtocol(diag: Diagnostics, path: FieldPath, name: string | undefined): boolean {
  if (name === undefined || name === '' || parseProtocol(name) !== undefined) return true;
  diag.error(path, `unsupported protocol: "${name}"; supported protocols: ${PROTOCOLS.join(', ')}`);
  return false;
}

export function checkIpAddress(diag: Diagnostics, path: FieldPath, address: string): boolean {
  if (isIpAddress(address)) return true;
  diag.error(path, `${address} is not a valid IP`);
  return false;
}

/** ValidateIPSubnet: an IP address, or a CIDR block such as `10.0.0.0/16` or `2001:db8::/32`. */
export function checkIpSubnet(diag: Diagnostics, path: FieldPath, subnet: string): boolean {
  const parts = subnet.split('/');
  if (parts.length === 2) {
    const family = isIP(parts[0]!);
    const bits = parts[1]!;
    const max = family === 4 ? 32 : 128;
    if (family === 0 || !/^\d+$/.test(bits) || Number(bits) > max) {
      diag.error(path, `${subnet} is not a valid CIDR block`);
      return false;
    }
    return true;
  }
  return checkIpAddress(diag, path, subnet);
}

/** ValidateUnixAddress on what follows `unix://`: an absolute file path, or `@name` for an abstract socket. */
export function checkUnixAddress(diag: Diagnostics, path: FieldPath, address: string): boolean {
  const rest = address.startsWith(UNIX_PREFIX) ? address.slice(UNIX_PREFIX.length) : address;
  if (rest === '') {
    diag.error(path, 'unix address must not be empty; use unix:///path/to/socket or unix://@abstract-name');
    return false;
  }
  if (rest.startsWith('@')) return true;
  if (!rest.startsWith('/') || rest.endsWith('/')) {
    diag.error(path, `${rest} is not an absolute path to a file; use unix:///path/to/socket or unix://@abstract-name`);
    return false;
  }
  return true;
}

// RFC 7230 token characters: what Envoy accepts in a header name.
const HEADER_TOKEN = /^[!#$%&'*+\-.^_`|~A-Za-z0-9]+$/;
const PSEUDO_HEADERS = new Set([':method', ':scheme', ':authority', ':path', ':status']);

/** `@request.auth.claims.sub` or `@request.auth.claims[sub]`: routing on a JWT claim, not a header. */
export function isJwtClaimRoute(name: string): boolean {
  return /^@request\.auth\.claims(\.[^.[\]]+|\[[^\]]+\])+$/.test(name);
}

/** ValidateHTTPHeaderNameOrJwtClaimRoute: header names in match conditions. */
export function checkMatchHeaderName(diag: Diagnostics, path: FieldPath, name: string): void {
  if (name === '') diag.error(path, 'header name cannot be empty');
  else if (isJwtClaimRoute(name) || PSEUDO_HEADERS.has(name)) return;
  else if (!HEADER_TOKEN.test(name)) diag.error(path, `header name ${name} is not a valid header name: use RFC 7230 token characters (letters, digits and !#$%&'*+-.^_\`|~)`);
}

/** ValidateCORSHTTPHeaderName: a token, or `*`. */
export function checkCorsHeaderName(diag: Diagnostics, path: FieldPath, name: string): void {
  if (name === '') diag.error(path, 'header name cannot be empty');
  else if (name !== '*' && !HEADER_TOKEN.test(name)) diag.error(path, `header name ${name} is not a valid header name: use RFC 7230 token characters or "*"`);
}

/** ValidateProbeHeaderName: letters, digits and `-`, as Kubernetes probes take them. */
export function checkProbeHeaderName(diag: Diagnostics, path: FieldPath, name: string): void {
  if (name === '') diag.error(path, 'header name cannot be empty');
  else if (!/^[-A-Za-z0-9]+$/.test(name)) diag.error(path, `header name ${name} is not a valid header name: use letters, digits and "-"`);
}

export function isAuthorityHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return lower === ':authority' || lower === 'host';
}

/**
 * Header manipulation names. Envoy cannot rewrite pseudo-headers or Host,
 * except that a request may set/add the authority (`:authority` or `Host`).
 */
export function checkHeaderOperationName(diag: Diagnostics, path: FieldPath, name: string, opts: { allowAuthority?: boolean } = {}): void {
  if (name === '') {
    diag.error(path, 'header name cannot be empty');
    return;
  }
  if (opts.allowAuthority && isAuthorityHeader(name)) return;
  if (name.toLowerCase() === 'host') diag.error(path, `invalid header "${name}": cannot set Host header (rewrite the authority instead)`);
  else if (name.startsWith(':')) diag.error(path, `invalid header "${name}": header cannot have ":" prefix`);
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

/** host.Name.Matches: the two names have some host in common. */
export function hostsOverlap(a: string, b: string): boolean {
  return hostSubsetOf(a, b) || hostSubsetOf(b, a);
}

/** Reports more than one member of a protobuf oneof being set. */
export function checkOneOf(diag: Diagnostics, path: FieldPath, obj: object, fields: readonly string[], opts: { required?: boolean } = {}): string | undefined {
  const set = fields.filter((f) => (obj as Record<string, unknown>)[f] !== undefined);
  if (set.length > 1) diag.error(path, `only one of ${fields.join(', ')} may be set (found: ${set.join(', ')})`);
  else if (set.length === 0 && opts.required) diag.error(path, `one of ${fields.join(', ')} must be set`);
  return set[0];
}

/** ValidatePercent: integer percentages of older fields (`maxEjectionPercent`, fault `percent`). */
export function checkPercentInt(diag: Diagnostics, path: FieldPath, value: number | undefined): void {
  if (value !== undefined && (value < 0 || value > 100)) diag.error(path, `percentage ${value} is not in range 0..100`);
}

/** validatePercentage: Istio's `Percent` message, 0 or 0.0001..100 (Envoy's resolution is a millionth). */
export function checkPercentage(diag: Diagnostics, path: FieldPath, value: number): void {
  if (value < 0 || value > 100 || (value > 0 && value < 0.0001)) {
    diag.error(path, `percentage ${value} is neither 0.0, nor in range [0.0001, 100.0]`);
  }
}

/**
 * Workload selector labels (ServiceEntry, Sidecar, DestinationRule): no empty
 * keys and no `*`, which selectors do not support; then the label rules.
 * Returns whether any label was given, so callers can warn about empty selectors.
 */
export function checkSelectorLabels(diag: Diagnostics, path: FieldPath, labels: Record<string, string> | undefined): boolean {
  const entries = Object.entries(labels ?? {});
  let clean = true;
  for (const [key, value] of entries) {
    if (key === '') {
      diag.error(path, `empty key is not supported in selector: "${key}=${value}"`);
      clean = false;
    } else if (key.includes('*') || value.includes('*')) {
      diag.error(path.key(key), `wildcard is not supported in selector: "${key}=${value}"; labels match exact values`);
      clean = false;
    }
  }
  if (clean) checkLabels(diag, path, labels);
  return entries.length > 0;
}
