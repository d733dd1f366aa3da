// RouteConfiguration -> RouteTable: virtual hosts indexed by domain the way
// Envoy searches them (exact, then longest suffix wildcard, then longest
// prefix wildcard, then `*`), routes with precompiled matchers and actions.
// Built once per config version; requests only read it.

import { readFileSync } from 'node:fs';
import { configError } from '../errors.ts';
import type { HeaderMatcher, QueryParamMatcher, StringPredicate } from './matchers.ts';
import { compileRegex, headerMatcher, queryParamMatcher, regexPredicate } from './matchers.ts';
import { durationMs } from './values.ts';
import type { RE2JS } from 're2js';
import type { AnyMessage } from '../../xds/index.ts';
import { decodeAny } from './proto-json.ts';
import type { CorsPolicy, HashPolicy, MirrorPolicy, RetryPolicy } from './route-resilience.ts';
import { decodeCorsPolicy, decodeHashPolicies, decodeMaxStreamDuration, decodeMirrorPolicies, decodeRetryPolicy } from './route-resilience.ts';

export type HeaderAppendAction = 'append' | 'add_if_absent' | 'overwrite' | 'overwrite_if_exists';

export interface HeaderToAdd {
  readonly name: string;
  readonly value: string;
  readonly action: HeaderAppendAction;
}

export interface HeaderMutation {
  readonly add: readonly HeaderToAdd[];
  readonly remove: readonly string[];
}

export interface RouteMatch {
  /** 'connect' is Envoy's connect_matcher: it matches CONNECT requests only. */
  readonly kind: 'prefix' | 'path' | 'regex' | 'separated' | 'connect';
  readonly value: string;
  readonly caseSensitive: boolean;
  readonly regex: StringPredicate | undefined;
  readonly headers: readonly HeaderMatcher[];
  readonly queryParameters: readonly QueryParamMatcher[];
}

export interface WeightedCluster {
  readonly name: string;
  readonly weight: number;
}

export interface ClusterAction {
  readonly type: 'cluster';
  /** Set for a single cluster; otherwise `weighted` is. */
  readonly cluster: string | undefined;
  readonly weighted: { readonly clusters: readonly WeightedCluster[]; readonly total: number } | undefined;
  readonly prefixRewrite: string | undefined;
  readonly regexRewrite: { readonly regex: RE2JS; readonly substitution: string } | undefined;
  readonly hostRewrite: string | undefined;
  /** 0 disables the timeout. */
  readonly timeoutMs: number;
  /**
   * max_stream_duration.grpc_timeout_header_max: when set, a request's
   * grpc-timeout replaces the route timeout, capped at this (0: no cap).
   */
  readonly grpcTimeoutHeaderMaxMs: number | undefined;
  /** max_stream_duration.grpc_timeout_header_offset, subtracted from grpc-timeout. */
  readonly grpcTimeoutHeaderOffsetMs: number;
  /** The route's upgrade_configs by lower-cased upgrade type; they override the HCM's. */
  readonly upgrades: ReadonlyMap<string, RouteUpgrade>;
  /** Resilience extras (route-resilience.ts): the route's retry_policy, else the virtual host's. */
  readonly retryPolicy?: RetryPolicy;
  readonly hashPolicies?: readonly HashPolicy[];
  readonly mirrorPolicies?: readonly MirrorPolicy[];
  /** max_stream_duration.max_stream_duration; undefined when unset. */
  readonly maxStreamDurationMs?: number;
}

export interface RouteUpgrade {
  readonly enabled: boolean;
  /** CONNECT only: terminate the CONNECT here and send its payload to the cluster as raw TCP. */
  readonly terminateConnect: boolean;
}

export interface RedirectAction {
  readonly type: 'redirect';
  readonly scheme: string | undefined;
  readonly host: string | undefined;
  readonly port: number | undefined;
  readonly path: string | undefined;
  readonly prefixRewrite: string | undefined;
  readonly status: number;
  readonly stripQuery: boolean;
}

export interface DirectResponseAction {
  readonly type: 'direct_response';
  readonly status: number;
  readonly body: string | undefined;
}

export type RouteAction = ClusterAction | RedirectAction | DirectResponseAction;

export interface Route {
  readonly name: string;
  readonly match: RouteMatch;
  readonly action: RouteAction;
  readonly requestHeaders: HeaderMutation;
  readonly responseHeaders: HeaderMutation;
  /**
   * typed_per_filter_config by HTTP filter name, decoded (a FilterConfig
   * wrapper unwrapped); each filter interprets its own entry.
   */
  readonly perFilterConfig: ReadonlyMap<string, PerFilterConfig>;
  /** The deprecated RouteAction.cors policy, when set. */
  readonly cors?: CorsPolicy;
}

export interface PerFilterConfig {
  readonly typeUrl: string;
  readonly config: Record<string, any>;
  readonly disabled: boolean;
}

export interface VirtualHost {
  readonly name: string;
  readonly domains: readonly string[];
  readonly routes: readonly Route[];
  readonly requestHeaders: HeaderMutation;
  readonly responseHeaders: HeaderMutation;
  /** The virtual host's typed_per_filter_config (routes' entries take precedence). */
  readonly perFilterConfig?: ReadonlyMap<string, PerFilterConfig>;
  /** The deprecated VirtualHost.cors policy, when set. */
  readonly cors?: CorsPolicy;
  /** include_request_attempt_count / include_attempt_count_in_response: x-envoy-attempt-count upstream / downstream. */
  readonly includeRequestAttemptCount?: boolean;
  readonly includeAttemptCountInResponse?: boolean;
}

export interface RouteTable {
  readonly name: string;
  readonly virtualHosts: readonly VirtualHost[];
  readonly requestHeaders: HeaderMutation;
  readonly responseHeaders: HeaderMutation;
  /** The virtual host for a Host/:authority (lower-cased), or undefined (404 NR). */
  selectVirtualHost(host: string): VirtualHost | undefined;
}

/** Route selection for one request; `query` is the raw query string without '?'. */
export function matchRoute(vh: VirtualHost, path: string, query: string, headers: Record<string, string | string[] | undefined>, method?: string): Route | undefined {
  let lowerPath: string | undefined;
  let params: URLSearchParams | undefined;
  outer: for (const route of vh.routes) {
    const m = route.match;
    let p = path;
    if (!m.caseSensitive) p = lowerPath ??= path.toLowerCase();
    switch (m.kind) {
      case 'prefix':
        if (!p.startsWith(m.value)) continue;
        break;
      case 'path':
        if (p !== m.value) continue;
        break;
      case 'separated':
        if (!(p === m.value || (p.startsWith(m.value) && p.charCodeAt(m.value.length) === 47))) continue;
        break;
      case 'regex':
        if (!m.regex!(path)) continue;
        break;
      case 'connect':
        if (headers[':method'] !== 'CONNECT' && method !== 'CONNECT') continue;
        break;
    }
    for (const h of m.headers) {
      const v = headers[h.name];
      if (!h.test(Array.isArray(v) ? v.join(',') : v)) continue outer;
    }
    if (m.queryParameters.length > 0) {
      params ??= new URLSearchParams(query);
      for (const q of m.queryParameters) if (!q.test(params.get(q.name))) continue outer;
    }
    return route;
  }
  return undefined;
}

/* ---------------------------------------------------------------- decoding */

type D = Record<string, any>;

const APPEND_ACTIONS: Record<string, HeaderAppendAction> = {
  APPEND_IF_EXISTS_OR_ADD: 'append',
  ADD_IF_ABSENT: 'add_if_absent',
  OVERWRITE_IF_EXISTS_OR_ADD: 'overwrite',
  OVERWRITE_IF_EXISTS: 'overwrite_if_exists',
};

// Envoy refuses to let config touch these through header mutation.
const PROTECTED = new Set([':authority', ':path', ':method', ':scheme', 'host']);

export function headerMutation(add: D[] | undefined, remove: string[] | undefined, path: string): HeaderMutation {
  const adds = (add ?? []).map((o, i): HeaderToAdd => {
    const p = `${path}_to_add[${i}]`;
    const name = String(o.header?.key ?? '').toLowerCase();
    if (!name) throw configError(`${p}.header.key`, 'must not be empty');
    if (PROTECTED.has(name)) throw configError(`${p}.header.key`, `"${name}" may not be modified`);
    // The deprecated `append` wrapper wins when set, as in Envoy.
    const action: HeaderAppendAction = o.append ? (o.append.value ? 'append' : 'overwrite') : (APPEND_ACTIONS[o.append_action] ?? 'append');
    return { name, value: String(o.header.value ?? ''), action };
  });
  const removes = (remove ?? []).map((n, i) => {
    const name = n.toLowerCase();
    if (PROTECTED.has(name)) throw configError(`${path}_to_remove[${i}]`, `"${name}" may not be removed`);
    return name;
  });
  return { add: adds, remove: removes };
}

export const NO_HEADER_MUTATION: HeaderMutation = Object.freeze({ add: [], remove: [] });

function routeMatch(m: D | null, path: string): RouteMatch {
  if (!m) throw configError(path, 'match is required');
  const caseSensitive = m.case_sensitive ? m.case_sensitive.value !== false : true;
  const headers = (m.headers ?? []).map((h: D, i: number) => headerMatcher(h as never, `${path}.headers[${i}]`));
  const queryParameters = (m.query_parameters ?? []).map((q: D, i: number) => queryParamMatcher(q as never, `${path}.query_parameters[${i}]`));
  const base = { caseSensitive, headers, queryParameters };
  const lower = (s: string): string => (caseSensitive ? s : s.toLowerCase());
  switch (m.path_specifier) {
    case 'prefix':
      return { kind: 'prefix', value: lower(m.prefix), regex: undefined, ...base };
    case 'path':
      return { kind: 'path', value: lower(m.path), regex: undefined, ...base };
    case 'safe_regex':
      return { kind: 'regex', value: m.safe_regex.regex, regex: regexPredicate(m.safe_regex.regex, `${path}.safe_regex.regex`), ...base };
    case 'connect_matcher':
      return { kind: 'connect', value: '', regex: undefined, ...base };
    case 'path_separated_prefix': {
      const v: string = m.path_separated_prefix;
      if (!v.startsWith('/') || (v.length > 1 && v.endsWith('/')) || /[?#]/.test(v)) throw configError(`${path}.path_separated_prefix`, `"${v}" must start with '/', not end with '/' and hold no '?' or '#'`);
      return { kind: 'separated', value: lower(v), regex: undefined, ...base };
    }
    default:
      throw configError(path, `unsupported path specifier ${m.path_specifier ?? '(none set)'}`);
  }
}

const REDIRECT_CODES: Record<string, number> = { MOVED_PERMANENTLY: 301, FOUND: 302, SEE_OTHER: 303, TEMPORARY_REDIRECT: 307, PERMANENT_REDIRECT: 308 };

function dataSource(ds: D | null, path: string): string | undefined {
  if (!ds) return undefined;
  switch (ds.specifier) {
    case 'inline_string':
      return ds.inline_string;
    case 'inline_bytes':
      return Buffer.from(ds.inline_bytes).toString('utf8');
    case 'filename':
      try {
        return readFileSync(ds.filename, 'utf8');
      } catch (err) {
        throw configError(`${path}.filename`, `cannot read ${ds.filename}: ${(err as Error).message}`);
      }
    default:
      return undefined;
  }
}

function routeAction(r: D, path: string): RouteAction {
  switch (r.action) {
    case 'route': {
      const a = r.route;
      const p = `${path}.route`;
      let cluster: string | undefined;
      let weighted: ClusterAction['weighted'];
      if (a.cluster_specifier === 'cluster') {
        if (!a.cluster) throw configError(`${p}.cluster`, 'must not be empty');
        cluster = a.cluster;
      } else if (a.cluster_specifier === 'weighted_clusters') {
        const clusters = (a.weighted_clusters.clusters ?? []).map((c: D, i: number): WeightedCluster => {
          if (!c.name) throw configError(`${p}.weighted_clusters.clusters[${i}].name`, 'must not be empty');
          return { name: c.name, weight: c.weight ? c.weight.value : 0 };
        });
        const total = clusters.reduce((s: number, c: WeightedCluster) => s + c.weight, 0);
        if (clusters.length === 0 || total <= 0) throw configError(`${p}.weighted_clusters`, 'needs at least one cluster with a positive weight');
        weighted = { clusters, total };
      } else throw configError(p, `unsupported cluster specifier ${a.cluster_specifier ?? '(none set)'}`);
      const regexRewrite = a.regex_rewrite ? { regex: compileRegex(a.regex_rewrite.pattern.regex, `${p}.regex_rewrite.pattern.regex`), substitution: a.regex_rewrite.substitution } : undefined;
      return {
        type: 'cluster',
        cluster,
        weighted,
        prefixRewrite: a.prefix_rewrite || undefined,
        regexRewrite,
        hostRewrite: a.host_rewrite_specifier === 'host_rewrite_literal' ? a.host_rewrite_literal : undefined,
        timeoutMs: durationMs(a.timeout, 15_000),
        ...streamOptions(a, p),
        retryPolicy: decodeRetryPolicy(a.retry_policy, p),
        hashPolicies: decodeHashPolicies(a.hash_policy, p),
        mirrorPolicies: decodeMirrorPolicies(a.request_mirror_policies, p),
        maxStreamDurationMs: decodeMaxStreamDuration(a),
      };
    }
    case 'redirect': {
      const a = r.redirect;
      const scheme = a.scheme_rewrite_specifier === 'https_redirect' ? (a.https_redirect ? 'https' : undefined) : a.scheme_redirect || undefined;
      return {
        type: 'redirect',
        scheme,
        host: a.host_redirect || undefined,
        port: a.port_redirect || undefined,
        path: a.path_rewrite_specifier === 'path_redirect' ? a.path_redirect : undefined,
        prefixRewrite: a.path_rewrite_specifier === 'prefix_rewrite' ? a.prefix_rewrite : undefined,
        status: REDIRECT_CODES[a.response_code] ?? 301,
        stripQuery: a.strip_query === true,
      };
    }
    case 'direct_response': {
      const a = r.direct_response;
      if (a.status < 200 || a.status >= 600) throw configError(`${path}.direct_response.status`, `${a.status} is not in [200, 600)`);
      return { type: 'direct_response', status: a.status, body: dataSource(a.body, `${path}.direct_response.body`) };
    }
    default:
      throw configError(path, `unsupported route action ${r.action ?? '(none set)'} (one of route, redirect, direct_response is required)`);
  }
}

/** The HTTP/2, gRPC and upgrade parts of a RouteAction. */
function streamOptions(a: D, p: string): Pick<ClusterAction, 'grpcTimeoutHeaderMaxMs' | 'grpcTimeoutHeaderOffsetMs' | 'upgrades'> {
  const msd = a.max_stream_duration;
  const upgrades = new Map<string, RouteUpgrade>();
  (a.upgrade_configs ?? []).forEach((u: D, i: number) => {
    const type = String(u.upgrade_type ?? '').toLowerCase();
    if (!type) throw configError(`${p}.upgrade_configs[${i}].upgrade_type`, 'must not be empty');
    if (u.connect_config && type !== 'connect') throw configError(`${p}.upgrade_configs[${i}].connect_config`, 'only valid for upgrade_type CONNECT');
    upgrades.set(type, { enabled: u.enabled ? u.enabled.value !== false : true, terminateConnect: type === 'connect' && !!u.connect_config });
  });
  return {
    grpcTimeoutHeaderMaxMs: msd?.grpc_timeout_header_max ? durationMs(msd.grpc_timeout_header_max, 0) : undefined,
    grpcTimeoutHeaderOffsetMs: durationMs(msd?.grpc_timeout_header_offset, 0),
    upgrades,
  };
}

const FILTER_CONFIG = 'type.googleapis.com/envoy.config.route.v3.FilterConfig';

/** Checks a route's decoded per-filter config (the extension registry does it). */
export type PerFilterValidator = (typeUrl: string, config: unknown, path: string) => void;

function perFilter(m: Record<string, AnyMessage> | undefined, path: string, validate: PerFilterValidator | undefined): Map<string, PerFilterConfig> {
  const out = new Map<string, PerFilterConfig>();
  for (const [name, any] of Object.entries(m ?? {})) {
    let inner: AnyMessage | null = any;
    let disabled = false;
    if (any.type_url === FILTER_CONFIG) {
      const wrapper = decodeAny<{ config: AnyMessage | null; disabled: boolean }>(any, `${path}[${name}]`);
      inner = wrapper.config;
      disabled = wrapper.disabled;
    }
    const config = inner ? decodeAny(inner, `${path}[${name}]`) : {};
    if (inner) validate?.(inner.type_url, config, `${path}[${name}]`);
    out.set(name, { typeUrl: inner?.type_url ?? '', config, disabled });
  }
  return out;
}

function virtualHost(v: D, path: string, validate: PerFilterValidator | undefined): VirtualHost {
  if (!v.name) throw configError(`${path}.name`, 'must not be empty');
  if (!v.domains || v.domains.length === 0) throw configError(`${path}.domains`, 'at least one domain is required');
  const vhRetry = decodeRetryPolicy(v.retry_policy, path);
  const routes = (v.routes ?? []).map((r: D, i: number): Route => {
    const p = `${path}.routes[${i}]`;
    const perFilterConfig = perFilter(r.typed_per_filter_config, `${p}.typed_per_filter_config`, validate);
    const action = routeAction(r, p);
    return {
      name: r.name ?? '',
      match: routeMatch(r.match, `${p}.match`),
      // A virtual host's retry_policy applies to routes without their own.
      action: action.type === 'cluster' && !action.retryPolicy && vhRetry ? { ...action, retryPolicy: vhRetry } : action,
      cors: r.action === 'route' ? decodeCorsPolicy(r.route.cors, `${p}.route.cors`) : undefined,
      requestHeaders: headerMutation(r.request_headers_to_add, r.request_headers_to_remove, `${p}.request_headers`),
      responseHeaders: headerMutation(r.response_headers_to_add, r.response_headers_to_remove, `${p}.response_headers`),
      perFilterConfig,
    };
  });
  return {
    name: v.name,
    domains: v.domains.map((d: string) => d.toLowerCase()),
    routes,
    requestHeaders: headerMutation(v.request_headers_to_add, v.request_headers_to_remove, `${path}.request_headers`),
    responseHeaders: headerMutation(v.response_headers_to_add, v.response_headers_to_remove, `${path}.response_headers`),
    perFilterConfig: perFilter(v.typed_per_filter_config, `${path}.typed_per_filter_config`, validate),
    cors: decodeCorsPolicy(v.cors, `${path}.cors`),
    includeRequestAttemptCount: v.include_request_attempt_count === true,
    includeAttemptCountInResponse: v.include_attempt_count_in_response === true,
  };
}

/** Builds a RouteTable from a decoded RouteConfiguration; throws ProxyConfigError naming the field. */
export function decodeRouteConfiguration(rc: D, where = 'RouteConfiguration', validate?: PerFilterValidator): RouteTable {
  const path = `${where} "${rc.name ?? ''}"`;
  const virtualHosts: VirtualHost[] = (rc.virtual_hosts ?? []).map((v: D, i: number) => virtualHost(v, `${path} virtual_hosts[${i}]`, validate));
  const exact = new Map<string, VirtualHost>();
  const suffixes: Array<[string, VirtualHost]> = [];
  const prefixes: Array<[string, VirtualHost]> = [];
  let star: VirtualHost | undefined;
  virtualHosts.forEach((vh, i) => {
    for (const d of vh.domains) {
      const dup = (): never => {
        throw configError(`${path} virtual_hosts[${i}].domains`, `domain "${d}" is already used by another virtual host`);
      };
      if (d === '*') {
        if (star) dup();
        star = vh;
      } else if (d.startsWith('*')) {
        if (suffixes.some(([s]) => s === d.slice(1))) dup();
        suffixes.push([d.slice(1), vh]);
      } else if (d.endsWith('*')) {
        if (prefixes.some(([s]) => s === d.slice(0, -1))) dup();
        prefixes.push([d.slice(0, -1), vh]);
      } else {
        if (exact.has(d)) dup();
        exact.set(d, vh);
      }
    }
  });
  // Longest wildcard wins, so sort once here rather than per request.
  suffixes.sort((a, b) => b[0].length - a[0].length);
  prefixes.sort((a, b) => b[0].length - a[0].length);
  return {
    name: rc.name ?? '',
    virtualHosts,
    requestHeaders: headerMutation(rc.request_headers_to_add, rc.request_headers_to_remove, `${path} request_headers`),
    responseHeaders: headerMutation(rc.response_headers_to_add, rc.response_headers_to_remove, `${path} response_headers`),
    selectVirtualHost(host) {
      const hit = exact.get(host);
      if (hit) return hit;
      for (const [s, vh] of suffixes) if (host.length > s.length && host.endsWith(s)) return vh;
      for (const [p, vh] of prefixes) if (host.length > p.length && host.startsWith(p)) return vh;
      return star;
    },
  };
}
