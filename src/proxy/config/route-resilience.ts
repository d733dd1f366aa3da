// The resilience and routing extras of a route -> readonly domain objects:
// retry_policy, hash_policy, request_mirror_policies, max_stream_duration
// and CORS policies (the route/virtual host `cors` field and the CORS
// filter's typed_per_filter_config share one shape). Defaults are Envoy's.

import { configError } from '../errors.ts';
import type { StringPredicate } from './matchers.ts';
import { stringMatcher } from './matchers.ts';
import { durationMs, fraction } from './values.ts';

type D = Record<string, any>;

/** gRPC status codes named by retry_on. */
const GRPC_RETRY_ON: Readonly<Record<string, number>> = { cancelled: 1, 'deadline-exceeded': 4, 'resource-exhausted': 8, internal: 13, unavailable: 14 };
const HTTP_RETRY_ON = new Set(['5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'retriable-4xx', 'refused-stream', 'retriable-status-codes', 'retriable-headers', 'envoy-ratelimited', 'http3-post-connect-failure']);

export interface RetryPolicy {
  /** The retry_on conditions (HTTP names); gRPC ones are in `grpcStatuses`. */
  readonly retryOn: ReadonlySet<string>;
  readonly grpcStatuses: ReadonlySet<number>;
  readonly numRetries: number;
  /** 0: no per-try timeout. */
  readonly perTryTimeoutMs: number;
  readonly retriableStatusCodes: ReadonlySet<number>;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /** retry_host_predicate envoy.retry_host_predicates.previous_hosts. */
  readonly avoidPreviousHosts: boolean;
  readonly hostSelectionMaxAttempts: number;
}

const PREVIOUS_HOSTS_NAME = 'envoy.retry_host_predicates.previous_hosts';
const PREVIOUS_HOSTS_TYPE = 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate';

export function decodeRetryPolicy(r: D | null | undefined, path: string): RetryPolicy | undefined {
  if (!r) return undefined;
  const p = `${path}.retry_policy`;
  const retryOn = new Set<string>();
  const grpcStatuses = new Set<number>();
  for (const raw of String(r.retry_on ?? '').split(',')) {
    const t = raw.trim();
    if (!t) continue;
    if (t in GRPC_RETRY_ON) grpcStatuses.add(GRPC_RETRY_ON[t]);
    else if (HTTP_RETRY_ON.has(t)) retryOn.add(t);
    else throw configError(`${p}.retry_on`, `unknown retry condition "${t}"`);
  }
  const back = r.retry_back_off;
  const backoffBaseMs = back ? durationMs(back.base_interval, 25) : 25;
  if (backoffBaseMs <= 0) throw configError(`${p}.retry_back_off.base_interval`, 'must be positive');
  const backoffMaxMs = back?.max_interval ? durationMs(back.max_interval, backoffBaseMs * 10) : backoffBaseMs * 10;
  if (backoffMaxMs < backoffBaseMs) throw configError(`${p}.retry_back_off.max_interval`, 'must not be less than base_interval');
  let avoidPreviousHosts = false;
  (r.retry_host_predicate ?? []).forEach((h: D, i: number) => {
    const type = h.typed_config?.type_url;
    if (h.name === PREVIOUS_HOSTS_NAME || type === PREVIOUS_HOSTS_TYPE) avoidPreviousHosts = true;
    else throw configError(`${p}.retry_host_predicate[${i}]`, `retry host predicate ${type ?? h.name} is not supported (${PREVIOUS_HOSTS_NAME})`);
  });
  return {
    retryOn,
    grpcStatuses,
    numRetries: r.num_retries ? r.num_retries.value : 1,
    perTryTimeoutMs: durationMs(r.per_try_timeout, 0),
    retriableStatusCodes: new Set<number>(r.retriable_status_codes ?? []),
    backoffBaseMs,
    backoffMaxMs,
    avoidPreviousHosts,
    hostSelectionMaxAttempts: Math.max(1, Number(r.host_selection_retry_max_attempts ?? 1) || 1),
  };
}

export type HashPolicy =
  | { readonly kind: 'header'; readonly name: string; readonly terminal: boolean }
  | { readonly kind: 'cookie'; readonly name: string; readonly ttlMs: number | undefined; readonly path: string; readonly terminal: boolean }
  | { readonly kind: 'source_ip'; readonly terminal: boolean }
  | { readonly kind: 'query_parameter'; readonly name: string; readonly terminal: boolean };

export function decodeHashPolicies(list: readonly D[] | null | undefined, path: string): readonly HashPolicy[] {
  return (list ?? []).map((h, i): HashPolicy => {
    const p = `${path}.hash_policy[${i}]`;
    const terminal = h.terminal === true;
    switch (h.policy_specifier) {
      case 'header':
        if (!h.header.header_name) throw configError(`${p}.header.header_name`, 'must not be empty');
        return { kind: 'header', name: h.header.header_name.toLowerCase(), terminal };
      case 'cookie':
        if (!h.cookie.name) throw configError(`${p}.cookie.name`, 'must not be empty');
        return { kind: 'cookie', name: h.cookie.name, ttlMs: h.cookie.ttl ? durationMs(h.cookie.ttl, 0) : undefined, path: h.cookie.path ?? '', terminal };
      case 'connection_properties':
        if (!h.connection_properties.source_ip) throw configError(`${p}.connection_properties.source_ip`, 'must be true');
        return { kind: 'source_ip', terminal };
      case 'query_parameter':
        if (!h.query_parameter.name) throw configError(`${p}.query_parameter.name`, 'must not be empty');
        return { kind: 'query_parameter', name: h.query_parameter.name, terminal };
      default:
        throw configError(p, `hash policy ${h.policy_specifier ?? '(none set)'} is not supported (header, cookie, connection_properties, query_parameter)`);
    }
  });
}

export interface MirrorPolicy {
  readonly cluster: string;
  /** Probability 0..1 of mirroring a request (runtime_fraction's default_value; 1 when unset). */
  readonly fraction: number;
  /** disable_shadow_host_suffix_append: keep the Host as is instead of adding `-shadow`. */
  readonly keepHost: boolean;
}

export function decodeMirrorPolicies(list: readonly D[] | null | undefined, path: string): readonly MirrorPolicy[] {
  return (list ?? []).map((m, i) => {
    const p = `${path}.request_mirror_policies[${i}]`;
    if (!m.cluster) throw configError(`${p}.cluster`, m.cluster_header ? 'cluster_header is not supported; name a cluster' : 'must not be empty');
    return { cluster: m.cluster, fraction: m.runtime_fraction ? fraction(m.runtime_fraction.default_value, 0) : 1, keepHost: m.disable_shadow_host_suffix_append === true };
  });
}

export interface CorsPolicy {
  readonly allowOrigin: readonly StringPredicate[];
  readonly allowMethods: string | undefined;
  readonly allowHeaders: string | undefined;
  readonly exposeHeaders: string | undefined;
  readonly maxAge: string | undefined;
  readonly allowCredentials: boolean | undefined;
  readonly allowPrivateNetworkAccess: boolean;
  /** Probability 0..1 that the policy is enforced (filter_enabled; 1 when unset). */
  readonly enabled: number;
  /** Preflights whose origin does not match go to the upstream (Envoy's default: true). */
  readonly forwardNotMatchingPreflights: boolean;
}

/** Decodes a CorsPolicy (envoy.config.route.v3 or envoy.extensions.filters.http.cors.v3: the same fields). */
export function decodeCorsPolicy(c: D | null | undefined, path: string): CorsPolicy | undefined {
  if (!c) return undefined;
  return {
    allowOrigin: (c.allow_origin_string_match ?? []).map((m: D, i: number) => stringMatcher(m, `${path}.allow_origin_string_match[${i}]`)),
    allowMethods: c.allow_methods || undefined,
    allowHeaders: c.allow_headers || undefined,
    exposeHeaders: c.expose_headers || undefined,
    maxAge: c.max_age || undefined,
    allowCredentials: c.allow_credentials ? c.allow_credentials.value === true : undefined,
    allowPrivateNetworkAccess: c.allow_private_network_access?.value === true,
    enabled: c.filter_enabled ? fraction(c.filter_enabled.default_value, 0) : 1,
    forwardNotMatchingPreflights: c.forward_not_matching_preflights ? c.forward_not_matching_preflights.value !== false : true,
  };
}

/** RouteAction.max_stream_duration.max_stream_duration in ms; undefined when unset (the HCM's applies). */
export function decodeMaxStreamDuration(a: D): number | undefined {
  const d = a.max_stream_duration?.max_stream_duration;
  return d ? durationMs(d, 0) : undefined;
}
