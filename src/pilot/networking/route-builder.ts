// VirtualService HTTP routes -> Envoy routes, in rule order (the first
// matching rule wins, as in Istio): matches, destinations and weights,
// redirect, direct response, rewrite, timeout, retries, fault, mirror, header
// manipulation, CORS, hash policies, and delegation.

import type { VirtualServiceSpec } from '../../api/index.ts';
import type { ProxyNode } from '../model/index.ts';
import type { PushContext, ResolvedVirtualService } from '../push-context.ts';
import { MESH_GATEWAY } from '../push-context.ts';
import { bool, duration, fractionalPercent, seconds, typed, u32 } from './envoy-values.ts';
import { labelsMatch } from './hosts.ts';
import { outboundClusterName } from './names.ts';
import { effectivePolicy, hashPolicies } from './traffic-policy.ts';

type HttpRoute = NonNullable<VirtualServiceSpec['http']>[number];
type HttpMatch = NonNullable<HttpRoute['match']>[number];
type StringMatch = NonNullable<HttpMatch['uri']>;
type HeaderOps = NonNullable<NonNullable<HttpRoute['headers']>['request']>;
type Destination = NonNullable<NonNullable<HttpRoute['route']>[number]['destination']>;

export const FAULT_FILTER = 'envoy.filters.http.fault';
export const CORS_FILTER = 'envoy.filters.http.cors';

/** Istio's retry policy for routes whose VirtualService sets none. */
export const DEFAULT_RETRY_ON = 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes';

export interface RouteContext {
  readonly push: PushContext;
  readonly proxy: ProxyNode;
  /** `mesh` for sidecars and gRPC, `namespace/name` of the Gateway for routers. */
  readonly gateway: string;
  /** The port the listener (route config) serves. */
  readonly port: number;
}

/** A route with the namespace its hosts are written relative to (a delegate's own). */
interface ScopedRoute {
  readonly route: HttpRoute;
  readonly namespace: string;
}

/** Translates a VirtualService's HTTP rules for one listener port; stops after a rule that matches everything. */
export function translateVirtualService(ctx: RouteContext, vs: ResolvedVirtualService): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const { route, namespace } of expandDelegates(ctx, vs)) {
    const matches = route.match ?? [];
    const applicable = matches.filter((m) => matchApplies(ctx, m, vs.namespace));
    if (matches.length > 0 && applicable.length === 0) continue;
    const list: (HttpMatch | undefined)[] = applicable.length > 0 ? applicable : [undefined];
    let catchAll = false;
    for (const m of list) {
      out.push(translateRoute(ctx, route, m, namespace));
      if (!m || isCatchAll(m)) catchAll = true;
    }
    if (catchAll) break;
  }
  return out;
}

/** The default route when no VirtualService covers a service: everything to its cluster. */
export function defaultRoute(hostname: string, port: number, extra: { hashPolicy?: Record<string, unknown>[] } = {}): Record<string, unknown> {
  const action: Record<string, unknown> = { cluster: outboundClusterName(port, '', hostname), timeout: seconds(0), retry_policy: defaultRetryPolicy() };
  if (extra.hashPolicy?.length) action.hash_policy = extra.hashPolicy;
  action.max_stream_duration = { max_stream_duration: seconds(0), grpc_timeout_header_max: seconds(0) };
  return { name: 'default', match: { prefix: '/' }, route: action, decorator: { operation: `${hostname}:${port}/*` } };
}

export function defaultRetryPolicy(): Record<string, unknown> {
  return { retry_on: DEFAULT_RETRY_ON, num_retries: u32(2), retriable_status_codes: [503], host_selection_retry_max_attempts: 5 };
}

function isCatchAll(m: HttpMatch): boolean {
  const uriAll = !m.uri || m.uri.prefix === '/' || m.uri.prefix === '';
  return uriAll && !m.headers && !m.queryParams && !m.method && !m.authority && !m.scheme && !m.withoutHeaders;
}

/** Proxy-side conditions decided at generation time: port, source labels/namespace, gateways. */
function matchApplies(ctx: RouteContext, m: HttpMatch, vsNamespace: string): boolean {
  if (m.port !== undefined && m.port !== ctx.port) return false;
  if (m.sourceLabels && !labelsMatch(m.sourceLabels, ctx.proxy.labels)) return false;
  if (m.sourceNamespace && m.sourceNamespace !== ctx.proxy.namespace) return false;
  if (m.gateways && m.gateways.length > 0) {
    const gws = m.gateways.map((g) => (g === MESH_GATEWAY || g.includes('/') ? g : `${vsNamespace}/${g}`));
    if (!gws.includes(ctx.gateway)) return false;
  }
  return true;
}

/** Inlines delegate VirtualServices: the child's rules under the parent's match conditions. */
function expandDelegates(ctx: RouteContext, vs: ResolvedVirtualService): ScopedRoute[] {
  const out: ScopedRoute[] = [];
  for (const route of vs.spec.http ?? []) {
    if (!route.delegate) {
      out.push({ route, namespace: vs.namespace });
      continue;
    }
    const child = ctx.push.delegate(route.delegate.namespace ?? vs.namespace, route.delegate.name ?? '');
    if (!child) continue; // a missing delegate routes nothing, as in Istio
    for (const c of child.spec.http ?? []) {
      out.push({ route: { ...c, match: mergeMatches(route.match, c.match) }, namespace: child.namespace });
    }
  }
  return out;
}

function mergeMatches(parent: readonly HttpMatch[] | undefined, child: readonly HttpMatch[] | undefined): HttpMatch[] | undefined {
  if (!parent?.length) return child ? [...child] : undefined;
  if (!child?.length) return [...parent];
  const out: HttpMatch[] = [];
  for (const p of parent) {
    for (const c of child) {
      out.push({
        ...p,
        ...c,
        uri: c.uri ?? p.uri,
        headers: p.headers || c.headers ? { ...p.headers, ...c.headers } : undefined,
        queryParams: p.queryParams || c.queryParams ? { ...p.queryParams, ...c.queryParams } : undefined,
      });
    }
  }
  return out;
}

function stringMatcher(sm: StringMatch): Record<string, unknown> {
  if (sm.exact !== undefined) return { exact: sm.exact };
  if (sm.prefix !== undefined) return { prefix: sm.prefix };
  if (sm.regex !== undefined) return { safe_regex: { regex: sm.regex } };
  return { prefix: '' };
}

function headerMatcher(name: string, sm: StringMatch, invert = false): Record<string, unknown> {
  // withoutHeaders `regex: "*"` means "absent": an inverted presence match.
  if (invert && sm.regex === '*') return { name, present_match: true, invert_match: true };
  const out: Record<string, unknown> = { name, string_match: stringMatcher(sm) };
  if (invert) out.invert_match = true;
  return out;
}

export function translateMatch(m: HttpMatch | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const uri = m?.uri;
  if (uri?.exact !== undefined) out.path = uri.exact;
  else if (uri?.regex !== undefined) out.safe_regex = { regex: uri.regex };
  else out.prefix = uri?.prefix || '/';
  if (m?.ignoreUriCase) out.case_sensitive = bool(false);
  const headers: Record<string, unknown>[] = [];
  for (const [name, sm] of Object.entries(m?.headers ?? {})) headers.push(headerMatcher(name, sm));
  for (const [name, sm] of Object.entries(m?.withoutHeaders ?? {})) headers.push(headerMatcher(name, sm, true));
  if (m?.authority) headers.push(headerMatcher(':authority', m.authority));
  if (m?.method) headers.push(headerMatcher(':method', m.method));
  if (m?.scheme) headers.push(headerMatcher(':scheme', m.scheme));
  if (headers.length > 0) out.headers = headers;
  const qp = Object.entries(m?.queryParams ?? {});
  if (qp.length > 0) out.query_parameters = qp.map(([name, sm]) => ({ name, string_match: stringMatcher(sm) }));
  return out;
}

/** The destination's cluster: an explicit port, else the service's only port, else the listener's. */
export function destinationCluster(ctx: RouteContext, d: Destination, namespace: string): { cluster: string; host: string; port: number } {
  const host = ctx.push.resolve(d.host, namespace);
  let port = d.port?.number;
  if (port === undefined) {
    const svc = ctx.push.service(host);
    port = svc && svc.ports.length === 1 ? svc.ports[0]!.port : ctx.port;
  }
  return { cluster: outboundClusterName(port, d.subset ?? '', host), host, port };
}

function headerOps(ops: HeaderOps | undefined): { add: Record<string, unknown>[]; remove: string[] } {
  const add: Record<string, unknown>[] = [];
  for (const [key, value] of Object.entries(ops?.set ?? {})) add.push({ header: { key, value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' });
  for (const [key, value] of Object.entries(ops?.add ?? {})) add.push({ header: { key, value }, append_action: 'APPEND_IF_EXISTS_OR_ADD' });
  return { add, remove: [...(ops?.remove ?? [])] };
}

function applyHeaders(target: Record<string, unknown>, h: HttpRoute['headers']): void {
  const req = headerOps(h?.request);
  const res = headerOps(h?.response);
  if (req.add.length) target.request_headers_to_add = req.add;
  if (req.remove.length) target.request_headers_to_remove = req.remove;
  if (res.add.length) target.response_headers_to_add = res.add;
  if (res.remove.length) target.response_headers_to_remove = res.remove;
}

const REDIRECT_CODES: Record<number, string> = { 301: 'MOVED_PERMANENTLY', 302: 'FOUND', 303: 'SEE_OTHER', 307: 'TEMPORARY_REDIRECT', 308: 'PERMANENT_REDIRECT' };

function translateRoute(ctx: RouteContext, r: HttpRoute, m: HttpMatch | undefined, namespace: string): Record<string, unknown> {
  const out: Record<string, unknown> = { match: translateMatch(m) };
  const name = [r.name, m?.name].filter(Boolean).join('.');
  if (name) out.name = name;
  const filterConfig: Record<string, unknown> = {};
  if (r.redirect) {
    const red: Record<string, unknown> = {};
    if (r.redirect.uri) red.path_redirect = r.redirect.uri;
    if (r.redirect.authority) red.host_redirect = r.redirect.authority;
    if (r.redirect.port) red.port_redirect = r.redirect.port;
    if (r.redirect.scheme) red.scheme_redirect = r.redirect.scheme;
    red.response_code = REDIRECT_CODES[r.redirect.redirectCode ?? 301] ?? 'MOVED_PERMANENTLY';
    out.redirect = red;
  } else if (r.directResponse) {
    const dr: Record<string, unknown> = { status: r.directResponse.status };
    if (r.directResponse.body?.string !== undefined) dr.body = { inline_string: r.directResponse.body.string };
    else if (r.directResponse.body?.bytes !== undefined) dr.body = { inline_bytes: r.directResponse.body.bytes };
    out.direct_response = dr;
  } else if (!(r.route ?? []).some((d) => d.destination)) {
    // Nothing to send to (validation normally prevents this): answer, never guess a cluster.
    out.direct_response = { status: 503 };
  } else {
    const action = routeAction(ctx, r, namespace);
    out.route = action.route;
    if (action.operation) out.decorator = { operation: action.operation };
  }
  if (r.fault) filterConfig[FAULT_FILTER] = faultConfig(r.fault);
  if (r.corsPolicy) filterConfig[CORS_FILTER] = corsConfig(r.corsPolicy);
  if (Object.keys(filterConfig).length > 0) out.typed_per_filter_config = filterConfig;
  applyHeaders(out, mergeHeaders(r.headers, singleDestinationHeaders(r)));
  return out;
}

/** With one destination its header operations belong to the route itself. */
function singleDestinationHeaders(r: HttpRoute): HttpRoute['headers'] {
  return r.route?.length === 1 ? r.route[0]!.headers : undefined;
}

function mergeHeaders(a: HttpRoute['headers'], b: HttpRoute['headers']): HttpRoute['headers'] {
  if (!a || !b) return a ?? b;
  const side = (x: HeaderOps | undefined, y: HeaderOps | undefined): HeaderOps | undefined => (!x || !y ? x ?? y : {
    set: { ...x.set, ...y.set }, add: { ...x.add, ...y.add }, remove: [...(x.remove ?? []), ...(y.remove ?? [])],
  });
  return { request: side(a.request, b.request), response: side(a.response, b.response) };
}

function routeAction(ctx: RouteContext, r: HttpRoute, namespace: string): { route: Record<string, unknown>; operation?: string } {
  const action: Record<string, unknown> = {};
  const dests = (r.route ?? []).filter((d) => d.destination && (r.route!.length === 1 || (d.weight ?? 0) > 0));
  const resolved = dests.map((d) => ({ ...destinationCluster(ctx, d.destination!, namespace), d }));
  if (resolved.length === 1) {
    action.cluster = resolved[0]!.cluster;
  } else if (resolved.length > 1) {
    const clusters = resolved.map(({ cluster, d }) => {
      const c: Record<string, unknown> = { name: cluster, weight: u32(d.weight ?? 0) };
      applyHeaders(c, d.headers);
      return c;
    });
    action.weighted_clusters = { clusters, total_weight: u32(resolved.reduce((n, x) => n + (x.d.weight ?? 0), 0)) };
  }
  if (r.rewrite?.uri !== undefined) action.prefix_rewrite = r.rewrite.uri;
  if (r.rewrite?.uriRegexRewrite) action.regex_rewrite = { pattern: { regex: r.rewrite.uriRegexRewrite.match ?? '' }, substitution: r.rewrite.uriRegexRewrite.rewrite ?? '' };
  if (r.rewrite?.authority) action.host_rewrite_literal = r.rewrite.authority;
  action.timeout = duration(r.timeout) ?? seconds(0);
  const retry = retryPolicy(r.retries);
  if (retry) action.retry_policy = retry;
  const mirrors = mirrorPolicies(ctx, r, namespace);
  if (mirrors.length > 0) action.request_mirror_policies = mirrors;
  const first = resolved[0];
  if (first) {
    const dr = ctx.push.destinationRule(ctx.proxy.namespace, first.host);
    const hp = hashPolicies(effectivePolicy(dr?.spec, first.port, first.d.destination!.subset ?? '').loadBalancer);
    if (hp.length > 0) action.hash_policy = hp;
  }
  // As Istio: proxyless gRPC reads its timeout from max_stream_duration; for
  // Envoy-style proxies the VirtualService timeout is the route timeout (504
  // UT) and only caps grpc-timeout. A stream duration there would race the
  // route timeout and answer 408.
  action.max_stream_duration = ctx.proxy.generator === 'grpc'
    ? { max_stream_duration: action.timeout, grpc_timeout_header_max: action.timeout }
    : { grpc_timeout_header_max: action.timeout };
  return { route: action, operation: first ? `${first.host}:${first.port}/*` : undefined };
}

export function retryPolicy(retries: HttpRoute['retries']): Record<string, unknown> | undefined {
  if (!retries) return defaultRetryPolicy();
  if (!retries.attempts) return undefined; // attempts 0 turns retries off
  const on: string[] = [];
  const codes: number[] = [];
  for (const part of (retries.retryOn ?? DEFAULT_RETRY_ON).split(',').map((s) => s.trim()).filter(Boolean)) {
    if (/^\d+$/.test(part)) codes.push(Number(part));
    else on.push(part);
  }
  if (codes.length > 0 && !on.includes('retriable-status-codes')) on.push('retriable-status-codes');
  const out: Record<string, unknown> = { retry_on: on.join(','), num_retries: u32(retries.attempts), host_selection_retry_max_attempts: 5 };
  if (codes.length > 0) out.retriable_status_codes = codes;
  else if (!retries.retryOn) out.retriable_status_codes = [503];
  const perTry = duration(retries.perTryTimeout);
  if (perTry) out.per_try_timeout = perTry;
  const backoff = duration(retries.backoff);
  if (backoff) out.retry_back_off = { base_interval: backoff };
  return out;
}

function mirrorPolicies(ctx: RouteContext, r: HttpRoute, namespace: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const add = (d: Destination, percent: number | undefined): void => {
    const p: Record<string, unknown> = { cluster: destinationCluster(ctx, d, namespace).cluster };
    if (percent !== undefined) p.runtime_fraction = { default_value: fractionalPercent(percent) };
    out.push(p);
  };
  if (r.mirror) add(r.mirror, r.mirrorPercentage?.value ?? r.mirrorPercent);
  for (const m of r.mirrors ?? []) if (m.destination) add(m.destination, m.percentage?.value);
  return out;
}

function faultConfig(f: NonNullable<HttpRoute['fault']>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (f.delay) {
    const delay: Record<string, unknown> = { percentage: fractionalPercent(f.delay.percentage?.value ?? f.delay.percent ?? 100) };
    const fixed = duration(f.delay.fixedDelay);
    if (fixed) delay.fixed_delay = fixed;
    out.delay = delay;
  }
  if (f.abort) {
    const abort: Record<string, unknown> = { percentage: fractionalPercent(f.abort.percentage?.value ?? 100) };
    if (f.abort.grpcStatus !== undefined) abort.grpc_status = GRPC_STATUS[f.abort.grpcStatus] ?? Number(f.abort.grpcStatus);
    else if (f.abort.httpStatus !== undefined) abort.http_status = f.abort.httpStatus;
    out.abort = abort;
  }
  return typed('envoy.extensions.filters.http.fault.v3.HTTPFault', out);
}

const GRPC_STATUS: Record<string, number> = {
  OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6, PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9, ABORTED: 10, OUT_OF_RANGE: 11, UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14,
  DATA_LOSS: 15, UNAUTHENTICATED: 16,
};

function corsConfig(c: NonNullable<HttpRoute['corsPolicy']>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const origins = [...(c.allowOrigins ?? []).map(stringMatcher), ...(c.allowOrigin ?? []).map((o) => ({ exact: o }))];
  if (origins.length > 0) out.allow_origin_string_match = origins;
  if (c.allowMethods?.length) out.allow_methods = c.allowMethods.join(',');
  if (c.allowHeaders?.length) out.allow_headers = c.allowHeaders.join(',');
  if (c.exposeHeaders?.length) out.expose_headers = c.exposeHeaders.join(',');
  const maxAge = duration(c.maxAge);
  if (maxAge) out.max_age = String(maxAge.seconds);
  if (c.allowCredentials !== undefined) out.allow_credentials = bool(c.allowCredentials);
  if (c.unmatchedPreflights === 'IGNORE') out.forward_not_matching_preflights = bool(false);
  out.filter_enabled = { default_value: { numerator: 100, denominator: 'HUNDRED' } };
  return typed('envoy.config.route.v3.CorsPolicy', out);
}
