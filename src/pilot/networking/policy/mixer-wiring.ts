// Mixer's data path in the sidecars' config, as Istio 1.4's Mixer filter
// had it, built from Envoy's own filters:
//
// - check (rules whose actions reach a check template or a denier /
//   listchecker handler): on every inbound HCM, `envoy.filters.http.ext_authz`
//   (named `istio.mixer.check`, stat_prefix `mixer`) calling Mixer's
//   Authorization/Check on the Mixer cluster, failure_mode_allow =
//   MeshConfig.policyCheckFailOpen (default false, as Istio 1.4), with the
//   `istio.mixer` metadata namespace attached to each CheckRequest;
// - quota (a QuotaSpecBinding and a rule reaching a quota template or a
//   memquota handler): `envoy.filters.http.ratelimit` (`istio.mixer.quota`,
//   domain `mixer`) calling Mixer's RLS, one descriptor per request built by
//   the inbound route's RateLimitPerRoute from the `istio.mixer` metadata
//   (destination.service.host selects the QuotaSpecBindings in Mixer; the
//   source/destination attributes feed the quota instance's dimensions);
// - report (rules reaching a report template or a prometheus / stdio
//   handler): the `istio.mixer.report` access logger on every inbound HCM
//   and inbound tcp_proxy (TCP: connection.event open when the upstream
//   connects, continue every 10 s, close; Istio 1.4's TCP reports):
//   Istio 1.4's Report API (istio.mixer.v1.Mixer/Report), attribute bags
//   batched and dictionary-encoded to the Mixer cluster
//   (src/proxy/access-loggers/mixer-report). Envoy's ALS logger
//   (`envoy.access_loggers.http_grpc`) still reaches Mixer for those who
//   configure it themselves.
//
// Whenever any of the three is on, every sidecar and gateway HCM also gets
// the `istio.mixer` attributes filter: OUTBOUND forwards this workload's
// source.* attributes and the destination.service.* of the route's cluster
// in `x-istio-attributes`; INBOUND takes them off the request and adds its
// own destination.* (src/proxy/filters/http/mixer-attributes). Without Mixer
// config, or without a Mixer address, nothing is added.
//
// Everything here is a function of the push alone (never of one proxy), so
// the listeners the generators share per push stay shared: the rewritten
// listener is memoized by the identity of the one it rewrites.

import { createHash } from 'node:crypto';
import type { ConfigObject } from '../../../api/index.ts';
import type { ProxyNode } from '../../model/index.ts';
import type { PushContext } from '../../push-context.ts';
import type { BuiltCluster } from '../cluster-builder.ts';
import { seconds, socketAddress, typed } from '../envoy-values.ts';
import { FAULT_FILTER } from '../route-builder.ts';
import { connectionFields } from '../traffic-policy.ts';

export const MIXER_TYPES = {
  handler: 'config.istio.io/v1alpha2/handler',
  instance: 'config.istio.io/v1alpha2/instance',
  rule: 'config.istio.io/v1alpha2/rule',
  quotaSpecBinding: 'config.istio.io/v1alpha2/QuotaSpecBinding',
  quotaSpec: 'config.istio.io/v1alpha2/QuotaSpec',
  attributeManifest: 'config.istio.io/v1alpha2/attributemanifest',
} as const;

/** Istio's name for the policy (Mixer) cluster. */
export const MIXER_CLUSTER = 'outbound|9091||istio-policy.istio-system.svc.cluster.local';
export const MIXER_CHECK_FILTER = 'istio.mixer.check';
export const MIXER_QUOTA_FILTER = 'istio.mixer.quota';
export const MIXER_ATTRIBUTES_FILTER = 'istio.mixer';
export const MIXER_METADATA_NAMESPACE = 'istio.mixer';
export const MIXER_RLS_DOMAIN = 'mixer';
const TYPED_STRUCT = 'type.googleapis.com/udpa.type.v1.TypedStruct';
const ATTRIBUTES_CONFIG = 'type.googleapis.com/istio.mixer.v1.config.client.HttpClientConfig';
const REPORT_CONFIG = 'type.googleapis.com/istio.mixer.v1.config.client.ReportConfig';
export const MIXER_REPORT_LOGGER = 'istio.mixer.report';
const HCM_NAME = 'envoy.filters.network.http_connection_manager';
const TCP_PROXY_NAME = 'envoy.filters.network.tcp_proxy';
/** Istio 1.4's TcpClientConfig.report_interval default: long connections report every 10 s. */
const TCP_REPORT_INTERVAL_S = 10;

const CHECK_TEMPLATES = new Set(['checknothing', 'listentry', 'authorization']);
const QUOTA_TEMPLATES = new Set(['quota']);
const REPORT_TEMPLATES = new Set(['metric', 'logentry', 'tracespan', 'reportnothing']);
const CHECK_ADAPTERS = new Set(['denier', 'listchecker']);
const QUOTA_ADAPTERS = new Set(['memquota', 'redisquota']);
const REPORT_ADAPTERS = new Set(['prometheus', 'stdio']);

/** Attributes a quota descriptor carries (from the istio.mixer metadata), each entry skipped when absent. */
export const QUOTA_DESCRIPTOR_ATTRIBUTES = [
  'destination.service.host', 'destination.service.name', 'destination.service.namespace',
  'source.labels', 'source.name', 'source.namespace', 'source.workload.name', 'source.workload.namespace', 'source.principal',
  'destination.labels', 'destination.name', 'destination.namespace', 'destination.workload.name',
];

export interface MixerPolicy {
  readonly address: string;
  readonly check: boolean;
  readonly quota: boolean;
  readonly report: boolean;
  readonly failOpen: boolean;
  /**
   * A digest of the Mixer config. It goes into the check filter's
   * grpc_service.initial_metadata, so a Mixer config change changes the
   * listener: proxies build a new filter with an empty check cache (old
   * connections drain) instead of replaying answers of the old rules for up
   * to valid_duration.
   */
  readonly configHash: string;
}

interface RuleSpec {
  actions?: { handler?: string; instances?: string[] }[];
}

/** `name`, `name.namespace` or `name.kind.namespace` -> the short name. */
function shortName(ref: string): string {
  return ref.split('.')[0] ?? ref;
}

const policies = new WeakMap<PushContext, MixerPolicy | null>();

/** What Mixer config the push has; undefined when there is none (or no Mixer to call). */
export function mixerPolicy(push: PushContext): MixerPolicy | undefined {
  const cached = policies.get(push);
  if (cached !== undefined) return cached ?? undefined;
  const computed = computePolicy(push);
  policies.set(push, computed ?? null);
  return computed;
}

function computePolicy(push: PushContext): MixerPolicy | undefined {
  const address = push.mixerAddress;
  if (!address) return undefined;
  const objects = (type: string): readonly ConfigObject[] => push.snapshot.objects(type) as readonly ConfigObject[];
  const rules = objects(MIXER_TYPES.rule);
  if (rules.length === 0) return undefined;
  const templateOf = new Map<string, string>();
  for (const o of objects(MIXER_TYPES.instance)) templateOf.set(o.metadata.name, String((o.spec as { compiledTemplate?: string; template?: string }).compiledTemplate ?? (o.spec as { template?: string }).template ?? ''));
  const adapterOf = new Map<string, string>();
  for (const o of objects(MIXER_TYPES.handler)) adapterOf.set(o.metadata.name, String((o.spec as { compiledAdapter?: string; adapter?: string }).compiledAdapter ?? (o.spec as { adapter?: string }).adapter ?? ''));
  let check = false;
  let quota = false;
  let report = false;
  for (const rule of rules) {
    for (const action of (rule.spec as RuleSpec).actions ?? []) {
      const adapter = adapterOf.get(shortName(action.handler ?? '')) ?? '';
      const templates = (action.instances ?? []).map((i) => templateOf.get(shortName(i)) ?? '');
      if (CHECK_ADAPTERS.has(adapter) || templates.some((t) => CHECK_TEMPLATES.has(t))) check = true;
      if (QUOTA_ADAPTERS.has(adapter) || templates.some((t) => QUOTA_TEMPLATES.has(t))) quota = true;
      if (REPORT_ADAPTERS.has(adapter) || templates.some((t) => REPORT_TEMPLATES.has(t))) report = true;
    }
  }
  // Quotas reach requests through QuotaSpecBindings only (Istio 1.4's mixer client config).
  quota &&= objects(MIXER_TYPES.quotaSpecBinding).length > 0;
  if (push.mesh.disablePolicyChecks) {
    check = false;
    quota = false;
  }
  if (!check && !quota && !report) return undefined;
  const hash = createHash('sha256');
  for (const type of Object.values(MIXER_TYPES)) {
    for (const o of objects(type)) hash.update(`${type}\n${o.metadata.namespace ?? ''}/${o.metadata.name}\n${JSON.stringify(o.spec)}\n`);
  }
  return { address, check, quota, report, failOpen: push.mesh.policyCheckFailOpen === true, configHash: hash.digest('hex').slice(0, 16) };
}

/** The Mixer cluster (STATIC, HTTP/2) when the push has Mixer config. */
export function mixerClusters(push: PushContext): BuiltCluster[] {
  const policy = mixerPolicy(push);
  if (!policy) return [];
  const i = policy.address.lastIndexOf(':');
  const host = policy.address.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(policy.address.slice(i + 1));
  const value: Record<string, unknown> = {
    name: MIXER_CLUSTER,
    type: 'STATIC',
    ...connectionFields(undefined, push.mesh, 'http2'),
    load_assignment: { cluster_name: MIXER_CLUSTER, endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(host, port) } }] }] },
  };
  return [{ name: MIXER_CLUSTER, value, cacheKey: `cds/${MIXER_CLUSTER}/${policy.address}@${push.version}` }];
}

/**
 * No fields: the filter takes its direction from the listener's
 * traffic_direction (INBOUND on the sidecar's inbound listeners, OUTBOUND
 * elsewhere). A TypedStruct `value` would collide with Any's own `value`
 * in the encoder's `@type` form.
 */
function attributesFilter(): Record<string, unknown> {
  return { name: MIXER_ATTRIBUTES_FILTER, typed_config: { '@type': TYPED_STRUCT, type_url: ATTRIBUTES_CONFIG } };
}

function checkFilter(policy: MixerPolicy): Record<string, unknown> {
  return {
    name: MIXER_CHECK_FILTER,
    typed_config: typed('envoy.extensions.filters.http.ext_authz.v3.ExtAuthz', {
      grpc_service: { envoy_grpc: { cluster_name: MIXER_CLUSTER }, timeout: seconds(2), initial_metadata: [{ key: 'x-istio-mixer-config', value: policy.configHash }] },
      transport_api_version: 'V3',
      failure_mode_allow: policy.failOpen,
      metadata_context_namespaces: [MIXER_METADATA_NAMESPACE],
      stat_prefix: 'mixer',
    }),
  };
}

function quotaFilter(): Record<string, unknown> {
  return {
    name: MIXER_QUOTA_FILTER,
    typed_config: typed('envoy.extensions.filters.http.ratelimit.v3.RateLimit', {
      domain: MIXER_RLS_DOMAIN,
      timeout: seconds(2),
      failure_mode_deny: false,
      rate_limit_service: { grpc_service: { envoy_grpc: { cluster_name: MIXER_CLUSTER } }, transport_api_version: 'V3' },
    }),
  };
}

/** RateLimitPerRoute for inbound routes: one descriptor of attributes, each entry skipped when absent. */
function quotaPerRoute(): Record<string, unknown> {
  const actions: Record<string, unknown>[] = QUOTA_DESCRIPTOR_ATTRIBUTES.map((name) => ({
    metadata: { descriptor_key: name, metadata_key: { key: MIXER_METADATA_NAMESPACE, path: [{ key: name }] }, source: 'DYNAMIC', skip_if_absent: true },
  }));
  actions.push({ request_headers: { header_name: ':path', descriptor_key: 'request.path', skip_if_absent: true } });
  actions.push({ request_headers: { header_name: ':method', descriptor_key: 'request.method', skip_if_absent: true } });
  return typed('envoy.extensions.filters.http.ratelimit.v3.RateLimitPerRoute', { rate_limits: [{ actions }] });
}

/**
 * The report logger. Its defaults are this push's settings (report_cluster
 * is MIXER_CLUSTER, a flush every second or 1000 bags, 10 000 bags
 * buffered), so the TypedStruct carries no fields (see attributesFilter).
 */
function reportLogger(): Record<string, unknown> {
  return { name: MIXER_REPORT_LOGGER, typed_config: { '@type': TYPED_STRUCT, type_url: REPORT_CONFIG } };
}

type Obj = Record<string, any>;

function rewriteHcm(hcm: Obj, inbound: boolean, policy: MixerPolicy): Obj {
  const cfg = { ...(hcm.typed_config as Obj) };
  const filters = [...((cfg.http_filters ?? []) as Obj[])];
  const at = Math.max(0, filters.findIndex((f) => f.name === FAULT_FILTER));
  const mixer: Obj[] = [];
  if (inbound && policy.check) mixer.push(checkFilter(policy));
  if (inbound && policy.quota) mixer.push(quotaFilter());
  filters.splice(at, 0, ...mixer);
  filters.unshift(attributesFilter());
  cfg.http_filters = filters;
  if (inbound && policy.report) cfg.access_log = [...((cfg.access_log ?? []) as Obj[]), reportLogger()];
  if (inbound && policy.quota && cfg.route_config) {
    const perRoute = quotaPerRoute();
    const rc = cfg.route_config as Obj;
    cfg.route_config = {
      ...rc,
      virtual_hosts: ((rc.virtual_hosts ?? []) as Obj[]).map((vh) => ({
        ...vh,
        routes: ((vh.routes ?? []) as Obj[]).map((r) => ({ ...r, typed_per_filter_config: { ...(r.typed_per_filter_config ?? {}), [MIXER_QUOTA_FILTER]: perRoute } })),
      })),
    };
  }
  return { ...hcm, typed_config: cfg };
}

/** Inbound TCP reports: the report logger on tcp_proxy, with an entry when the upstream connects and every 10 s. */
function rewriteTcpProxy(tcpProxy: Obj): Obj {
  const cfg = { ...(tcpProxy.typed_config as Obj) };
  cfg.access_log = [...((cfg.access_log ?? []) as Obj[]), reportLogger()];
  cfg.access_log_options = { flush_access_log_on_connected: true, access_log_flush_interval: seconds(TCP_REPORT_INTERVAL_S) };
  return { ...tcpProxy, typed_config: cfg };
}

/** One listener with Mixer's filters for `policy` (also used by bench/mixer-bench.ts on static bootstraps). */
export function rewriteListener(value: Obj, policy: MixerPolicy): Obj {
  const inbound = value.traffic_direction === 'INBOUND';
  let changed = false;
  const chains = ((value.filter_chains ?? []) as Obj[]).map((chain) => {
    const filters = ((chain.filters ?? []) as Obj[]).map((f) => {
      if (f.name === TCP_PROXY_NAME && inbound && policy.report) {
        changed = true;
        return rewriteTcpProxy(f);
      }
      if (f.name !== HCM_NAME) return f;
      changed = true;
      return rewriteHcm(f, inbound, policy);
    });
    return { ...chain, filters };
  });
  return changed ? { ...value, filter_chains: chains } : value;
}

const rewritten = new WeakMap<object, WeakMap<MixerPolicy, { name: string; value: Obj }>>();

/** The listeners with Mixer's filters; the same array when the push has no Mixer config. */
export function withMixerListeners<T extends { name: string; value: Record<string, unknown> }>(push: PushContext, _proxy: ProxyNode, listeners: T[]): T[] {
  const policy = mixerPolicy(push);
  if (!policy) return listeners;
  return listeners.map((l) => {
    let byPolicy = rewritten.get(l);
    if (!byPolicy) rewritten.set(l, (byPolicy = new WeakMap()));
    let out = byPolicy.get(policy);
    if (!out) {
      out = { ...l, value: rewriteListener(l.value, policy) };
      byPolicy.set(policy, out);
    }
    return out as T;
  });
}
