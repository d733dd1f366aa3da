// AuthorizationPolicy -> Envoy RBAC, as Istio's authz builder does it. Each
// rule becomes one RBAC policy `ns[NS]-policy[NAME]-rule[I]`: its `to`
// operations (ORed) and destination conditions are the permissions, its
// `from` sources (ORed) and source/request conditions are the principals,
// and every listed value is ORed within its field, fields ANDed. Policies
// of one action share a filter: CUSTOM (an RBAC shadow engine that marks
// the requests ext_authz then checks), DENY, then ALLOW (AUDIT as LOG). No
// ALLOW policy means allow; an ALLOW policy without rules denies everything.
//
// TCP (network RBAC): fields only HTTP has (methods, paths, hosts, request
// principals, request headers, request.auth.*) make an ALLOW rule never
// match, and are dropped from a DENY rule (which then matches more, as
// Istio's validator warns). CUSTOM on TCP ports is a network RBAC shadow
// engine and envoy.filters.network.ext_authz, which checks each connection
// the engine matched.

import type { ConfigObject, ExtensionProvider, MeshConfig } from '../../../api/index.ts';
import type { AuthorizationPolicySpec } from '../../../api/kinds/security/authorization-policy.ts';
import { isPathTemplate } from '../../../api/kinds/security/match-values.ts';
import type { ProxyNode } from '../../model/index.ts';
import type { PushContext } from '../../push-context.ts';
import { duration, typed, u32 } from '../envoy-values.ts';
import { outboundClusterName } from '../names.ts';
import { authorizationPoliciesFor } from './policies.ts';

type M = Record<string, unknown>;
type Rule = NonNullable<AuthorizationPolicySpec['rules']>[number];
type Source = NonNullable<NonNullable<Rule['from']>[number]['source']>;
type Operation = NonNullable<NonNullable<Rule['to']>[number]['operation']>;
type Condition = NonNullable<Rule['when']>[number];

export const HTTP_RBAC_TYPE = 'envoy.extensions.filters.http.rbac.v3.RBAC';
export const NETWORK_RBAC_TYPE = 'envoy.extensions.filters.network.rbac.v3.RBAC';
export const EXT_AUTHZ_TYPE = 'envoy.extensions.filters.http.ext_authz.v3.ExtAuthz';
export const NETWORK_EXT_AUTHZ_TYPE = 'envoy.extensions.filters.network.ext_authz.v3.ExtAuthz';
export const RBAC_FILTER = 'envoy.filters.http.rbac';
export const NETWORK_RBAC_FILTER = 'envoy.filters.network.rbac';
export const EXT_AUTHZ_FILTER = 'envoy.filters.http.ext_authz';
export const NETWORK_EXT_AUTHZ_FILTER = 'envoy.filters.network.ext_authz';
const AUTHN_METADATA = 'istio_authn';
/** Istio's markers for CUSTOM: the RBAC shadow engine's result tells ext_authz which requests to check. */
export const EXT_AUTHZ_SHADOW_PREFIX = 'istio_ext_authz_';
const EXT_AUTHZ_POLICY_PREFIX = 'istio-ext-authz-';
const DRY_RUN = 'istio.io/dry-run';

type Mode = 'http' | 'tcp';
type Action = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

/** A matcher under construction; `never` marks an HTTP-only field in a TCP ALLOW rule. */
type Built = M | 'skip';

const ANY_PERMISSION: M = { any: true };
const ANY_PRINCIPAL: M = { any: true };
const NEVER_PERMISSION: M = { not_rule: { any: true } };
const NEVER_PRINCIPAL: M = { not_id: { any: true } };

// ---- string matches with Istio's wildcards ----

function stringMatch(v: string, opts: { prefix?: string; ignoreCase?: boolean } = {}): M {
  const pre = opts.prefix ?? '';
  const ic = opts.ignoreCase ? { ignore_case: true } : {};
  if (v === '*') return pre ? { prefix: pre, ...ic } : { safe_regex: { regex: '.+' } };
  if (v.startsWith('*')) return { suffix: v.slice(1), ...ic };
  if (v.endsWith('*')) return { prefix: pre + v.slice(0, -1), ...ic };
  return { exact: pre + v, ...ic };
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Istio path templates: `{*}` is one segment, `{**}` the rest of the path. */
function pathMatch(v: string): M {
  if (isPathTemplate(v)) {
    const parts = v.split(/(\{\*\*\}|\{\*\})/).map((p) => (p === '{**}' ? '.+' : p === '{*}' ? '[^/]+' : escapeRegex(p)));
    return { safe_regex: { regex: parts.join('') } };
  }
  if (v === '*') return { safe_regex: { regex: '.*' } };
  return stringMatch(v);
}

function principalName(v: string, trustDomain: string): M {
  if (v === '*') return { prefix: 'spiffe://' };
  // `cluster.local/ns/x/sa/y` -> `spiffe://cluster.local/ns/x/sa/y`; Istio maps the trust domain alias `cluster.local` as given.
  void trustDomain;
  if (v.startsWith('*')) return { suffix: v.slice(1) };
  if (v.endsWith('*')) return { prefix: `spiffe://${v.slice(0, -1)}` };
  return { exact: `spiffe://${v}` };
}

function namespaceRegex(v: string): M {
  let ns: string;
  if (v === '*') ns = '[^/]+';
  else if (v.startsWith('*')) ns = `[^/]*${escapeRegex(v.slice(1))}`;
  else if (v.endsWith('*')) ns = `${escapeRegex(v.slice(0, -1))}[^/]*`;
  else ns = escapeRegex(v);
  return { safe_regex: { regex: `.*/ns/${ns}/.*` } };
}

function cidr(v: string): M {
  const [address, len] = v.split('/');
  return { address_prefix: address, prefix_len: u32(len !== undefined ? Number(len) : address!.includes(':') ? 128 : 32) };
}

function authnMetadata(keys: string[], value: M): M {
  return { filter: AUTHN_METADATA, path: keys.map((key) => ({ key })), value };
}

// ---- combinators ----

function orPrincipals(list: M[]): M {
  return list.length === 1 ? list[0]! : { or_ids: { ids: list } };
}
function andPrincipals(list: M[]): M {
  if (list.length === 0) return ANY_PRINCIPAL;
  return list.length === 1 ? list[0]! : { and_ids: { ids: list } };
}
function orPermissions(list: M[]): M {
  return list.length === 1 ? list[0]! : { or_rules: { rules: list } };
}
function andPermissions(list: M[]): M {
  if (list.length === 0) return ANY_PERMISSION;
  return list.length === 1 ? list[0]! : { and_rules: { rules: list } };
}

// ---- fields ----

interface Ctx {
  readonly mode: Mode;
  /** DENY-like (DENY, CUSTOM, AUDIT-as-deny) drops HTTP-only fields on TCP; ALLOW-like never matches. */
  readonly dropHttpOnly: boolean;
  readonly trustDomain: string;
}

/** An HTTP-only field on TCP: dropped (DENY) or never matching (ALLOW). */
function httpOnly<T extends 'principal' | 'permission'>(ctx: Ctx, kind: T, build: () => M): Built {
  if (ctx.mode === 'http') return build();
  if (ctx.dropHttpOnly) return 'skip';
  return kind === 'principal' ? NEVER_PRINCIPAL : NEVER_PERMISSION;
}

function valuesField(values: readonly string[] | undefined, notValues: readonly string[] | undefined, one: (v: string) => M, or: (l: M[]) => M, not: (m: M) => M): M[] {
  const out: M[] = [];
  if (values && values.length > 0) out.push(or(values.map(one)));
  if (notValues && notValues.length > 0) out.push(not(or(notValues.map(one))));
  return out;
}

const notId = (m: M): M => ({ not_id: m });
const notRule = (m: M): M => ({ not_rule: m });

function sourcePrincipals(ctx: Ctx, src: Source, policyNs: string): Built[] {
  const out: Built[] = [];
  const p = (vs: readonly string[] | undefined, nvs: readonly string[] | undefined, one: (v: string) => M): void => {
    out.push(...valuesField(vs, nvs, one, orPrincipals, notId));
  };
  p(src.principals, src.notPrincipals, (v) => ({ authenticated: { principal_name: principalName(v, ctx.trustDomain) } }));
  p(src.namespaces, src.notNamespaces, (v) => ({ authenticated: { principal_name: namespaceRegex(v) } }));
  p(src.serviceAccounts, src.notServiceAccounts, (v) => {
    const [ns, sa] = v.includes('/') ? v.split('/') : [policyNs, v];
    return { authenticated: { principal_name: { exact: `spiffe://${ctx.trustDomain}/ns/${ns}/sa/${sa}` } } };
  });
  p(src.ipBlocks, src.notIpBlocks, (v) => ({ direct_remote_ip: cidr(v) }));
  p(src.remoteIpBlocks, src.notRemoteIpBlocks, (v) => ({ remote_ip: cidr(v) }));
  if ((src.requestPrincipals?.length ?? 0) > 0 || (src.notRequestPrincipals?.length ?? 0) > 0) {
    const built = valuesField(src.requestPrincipals, src.notRequestPrincipals, (v) => ({ metadata: authnMetadata(['request.auth.principal'], { string_match: stringMatch(v) }) }), orPrincipals, notId);
    for (const b of built) out.push(httpOnly(ctx, 'principal', () => b));
  }
  return out;
}

function operationPermissions(ctx: Ctx, op: Operation): Built[] {
  const out: Built[] = [];
  const http = (vs: readonly string[] | undefined, nvs: readonly string[] | undefined, one: (v: string) => M): void => {
    for (const b of valuesField(vs, nvs, one, orPermissions, notRule)) out.push(httpOnly(ctx, 'permission', () => b));
  };
  http(op.hosts, op.notHosts, (v) => ({ header: { name: ':authority', string_match: stringMatch(v, { ignoreCase: true }) } }));
  http(op.methods, op.notMethods, (v) => ({ header: { name: ':method', string_match: stringMatch(v) } }));
  http(op.paths, op.notPaths, (v) => ({ url_path: { path: pathMatch(v) } }));
  out.push(...valuesField(op.ports, op.notPorts, (v) => ({ destination_port: Number(v) }), orPermissions, notRule));
  return out;
}

/** Splits `request.auth.claims[a][b]` into ['a', 'b']. */
function claimPath(key: string): string[] {
  const inner = key.slice('request.auth.claims['.length, -1);
  return inner.split('][');
}

/** A `when` condition: which side it constrains and its matchers. */
function condition(ctx: Ctx, c: Condition): { side: 'principal' | 'permission'; built: Built[] } {
  const key = c.key;
  const pr = (one: (v: string) => M): { side: 'principal'; built: Built[] } => ({ side: 'principal', built: valuesField(c.values, c.notValues, one, orPrincipals, notId) });
  const pe = (one: (v: string) => M): { side: 'permission'; built: Built[] } => ({ side: 'permission', built: valuesField(c.values, c.notValues, one, orPermissions, notRule) });
  const httpPr = (one: (v: string) => M): { side: 'principal'; built: Built[] } => ({ side: 'principal', built: valuesField(c.values, c.notValues, one, orPrincipals, notId).map((b) => httpOnly(ctx, 'principal', () => b)) });
  if (key.startsWith('request.headers[')) {
    const name = key.slice('request.headers['.length, -1).toLowerCase();
    return httpPr((v) => ({ header: { name, string_match: stringMatch(v) } }));
  }
  if (key.startsWith('request.auth.claims[')) {
    const path = ['request.auth.claims', ...claimPath(key)];
    return httpPr((v) => ({ metadata: authnMetadata(path, { list_match: { one_of: { string_match: stringMatch(v) } } }) }));
  }
  if (key.startsWith('experimental.envoy.filters.')) {
    const open = key.indexOf('[');
    const filter = key.slice('experimental.'.length, open);
    const k = key.slice(open + 1, -1);
    return pe((v) => ({ metadata: { filter, path: [{ key: k }], value: { string_match: stringMatch(v) } } }));
  }
  switch (key) {
    case 'source.ip':
      return pr((v) => ({ direct_remote_ip: cidr(v) }));
    case 'remote.ip':
      return pr((v) => ({ remote_ip: cidr(v) }));
    case 'source.namespace':
      return pr((v) => ({ authenticated: { principal_name: namespaceRegex(v) } }));
    case 'source.principal':
      return pr((v) => ({ authenticated: { principal_name: principalName(v, ctx.trustDomain) } }));
    case 'request.auth.principal':
      return httpPr((v) => ({ metadata: authnMetadata(['request.auth.principal'], { string_match: stringMatch(v) }) }));
    case 'request.auth.audiences':
      return httpPr((v) => ({ metadata: authnMetadata(['request.auth.audiences'], { list_match: { one_of: { string_match: stringMatch(v) } } }) }));
    case 'request.auth.presenter':
      return httpPr((v) => ({ metadata: authnMetadata(['request.auth.presenter'], { string_match: stringMatch(v) }) }));
    case 'destination.ip':
      return pe((v) => ({ destination_ip: cidr(v) }));
    case 'destination.port':
      return pe((v) => ({ destination_port: Number(v) }));
    case 'connection.sni':
      return pe((v) => ({ requested_server_name: stringMatch(v) }));
    default:
      // Validation rejects unknown keys; an unknown one can only narrow: never match.
      return { side: 'permission', built: [NEVER_PERMISSION] };
  }
}

function collapse(list: Built[]): M[] {
  return list.filter((b): b is M => b !== 'skip');
}

/** One Istio rule -> one RBAC policy (permissions, principals). */
export function rulePolicy(ctx: Ctx, rule: Rule, policyNs: string): M {
  const principals: M[] = [];
  const permissions: M[] = [];
  const froms = (rule.from ?? []).filter((f) => f.source).map((f) => andPrincipals(collapse(sourcePrincipals(ctx, f.source!, policyNs))));
  if (froms.length > 0) principals.push(orPrincipals(froms));
  const tos = (rule.to ?? []).filter((t) => t.operation).map((t) => andPermissions(collapse(operationPermissions(ctx, t.operation!))));
  if (tos.length > 0) permissions.push(orPermissions(tos));
  for (const c of rule.when ?? []) {
    const { side, built } = condition(ctx, c);
    (side === 'principal' ? principals : permissions).push(...collapse(built));
  }
  return { permissions: [andPermissions(permissions)], principals: [andPrincipals(principals)] };
}

function policyName(obj: ConfigObject, i: number): string {
  return `ns[${obj.metadata.namespace ?? ''}]-policy[${obj.metadata.name}]-rule[${i}]`;
}

function isDryRun(obj: ConfigObject): boolean {
  return /^(1|t|T|TRUE|true|True)$/.test(String(obj.metadata.annotations?.[DRY_RUN] ?? ''));
}

export interface AuthzFilters {
  /** HTTP filters for the inbound HCM, in order (ext_authz for CUSTOM, then DENY, ALLOW, AUDIT RBAC). */
  readonly http: M[];
  /** Network filters before tcp_proxy on TCP ports. */
  readonly tcp: M[];
}

interface Group {
  readonly policies: Record<string, M>;
  readonly dryRun: Record<string, M>;
  present: boolean;
}

function groups(policies: readonly ConfigObject<AuthorizationPolicySpec>[], mode: Mode, trustDomain: string): Record<Action, Group> {
  const out = {} as Record<Action, Group>;
  for (const a of ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'] as const) out[a] = { policies: {}, dryRun: {}, present: false };
  for (const obj of policies) {
    const action = (obj.spec.action ?? 'ALLOW') as Action;
    const ctx: Ctx = { mode, dropHttpOnly: action !== 'ALLOW', trustDomain };
    const g = out[action];
    const dry = isDryRun(obj);
    if (!dry) g.present = true;
    (obj.spec.rules ?? []).forEach((rule, i) => {
      const name = action === 'CUSTOM' ? `${EXT_AUTHZ_POLICY_PREFIX}${policyName(obj, i)}` : policyName(obj, i);
      (dry ? g.dryRun : g.policies)[name] = rulePolicy(ctx, rule, obj.metadata.namespace ?? '');
    });
  }
  return out;
}

function rbacConfig(action: 'ALLOW' | 'DENY' | 'LOG', g: Group, dryRunPrefix: string): M {
  const config: M = {};
  if (g.present) config.rules = { action, policies: g.policies };
  if (Object.keys(g.dryRun).length > 0) {
    config.shadow_rules = { action, policies: g.dryRun };
    config.shadow_rules_stat_prefix = dryRunPrefix;
  }
  return config;
}

function extAuthzProvider(mesh: MeshConfig, name: string): ExtensionProvider | undefined {
  return mesh.extensionProviders.find((p) => p.name === name && p.envoyExtAuthzGrpc !== undefined);
}

/** The gRPC service of a CUSTOM provider, as both ext_authz filters take it. */
function extAuthzService(g: NonNullable<ExtensionProvider['envoyExtAuthzGrpc']>): M {
  const host = g.service.includes('/') ? g.service.split('/')[1]! : g.service;
  return { envoy_grpc: { cluster_name: outboundClusterName(g.port ?? 0, '', host), authority: host }, timeout: duration(g.timeout ?? '600s') };
}

/** Checks only what the CUSTOM shadow engine (HTTP or network RBAC `filter`) matched. */
function customEnabled(filter: string): M {
  return { filter, path: [{ key: `${EXT_AUTHZ_SHADOW_PREFIX}shadow_effective_policy_id` }], value: { string_match: { prefix: EXT_AUTHZ_POLICY_PREFIX } } };
}

/** Istio's gRPC ext_authz for a CUSTOM provider; the RBAC shadow engine before it decides which requests are checked. */
function extAuthzFilter(provider: ExtensionProvider): M {
  const g = provider.envoyExtAuthzGrpc!;
  const config: M = {
    grpc_service: extAuthzService(g),
    transport_api_version: 'V3',
    failure_mode_allow: g.failOpen === true,
    filter_enabled_metadata: customEnabled(RBAC_FILTER),
  };
  if (g.statusOnError) config.status_on_error = { code: Number(g.statusOnError) };
  const body = g.includeRequestBodyInCheck;
  if (body) config.with_request_body = { max_request_bytes: body.maxRequestBytes ?? 8192, allow_partial_message: body.allowPartialMessage === true };
  return config;
}

/** The same provider for TCP ports: the network filter checks each connection the network shadow engine matched. */
function networkExtAuthzFilter(provider: ExtensionProvider): M {
  const g = provider.envoyExtAuthzGrpc!;
  return { stat_prefix: 'tcp', grpc_service: extAuthzService(g), transport_api_version: 'V3', failure_mode_allow: g.failOpen === true, filter_enabled_metadata: customEnabled(NETWORK_RBAC_FILTER) };
}

/** The RBAC and ext_authz filters for a workload's inbound side. */
export function buildAuthzFilters(push: PushContext, proxy: ProxyNode): AuthzFilters {
  const policies = authorizationPoliciesFor(push, proxy);
  if (policies.length === 0) return { http: [], tcp: [] };
  const td = push.mesh.trustDomain;
  const http: M[] = [];
  const tcp: M[] = [];
  const hg = groups(policies, 'http', td);
  const tg = groups(policies, 'tcp', td);
  // CUSTOM: one provider per workload, as Istio allows.
  const custom = policies.find((p) => p.spec.action === 'CUSTOM');
  if (custom && Object.keys(hg.CUSTOM.policies).length > 0) {
    const provider = extAuthzProvider(push.mesh, custom.spec.provider?.name ?? '');
    if (provider) {
      http.push({ name: RBAC_FILTER, typed_config: typed(HTTP_RBAC_TYPE, { shadow_rules: { action: 'ALLOW', policies: hg.CUSTOM.policies }, shadow_rules_stat_prefix: EXT_AUTHZ_SHADOW_PREFIX }) });
      http.push({ name: EXT_AUTHZ_FILTER, typed_config: typed(EXT_AUTHZ_TYPE, extAuthzFilter(provider)) });
      tcp.push({ name: NETWORK_RBAC_FILTER, typed_config: typed(NETWORK_RBAC_TYPE, { shadow_rules: { action: 'ALLOW', policies: tg.CUSTOM.policies }, shadow_rules_stat_prefix: EXT_AUTHZ_SHADOW_PREFIX, stat_prefix: 'tcp.' }) });
      tcp.push({ name: NETWORK_EXT_AUTHZ_FILTER, typed_config: typed(NETWORK_EXT_AUTHZ_TYPE, networkExtAuthzFilter(provider)) });
    } else {
      // A CUSTOM policy whose provider is unknown denies what it would have checked (Istio fails closed).
      http.push({ name: RBAC_FILTER, typed_config: typed(HTTP_RBAC_TYPE, { rules: { action: 'DENY', policies: hg.CUSTOM.policies } }) });
      tcp.push({ name: NETWORK_RBAC_FILTER, typed_config: typed(NETWORK_RBAC_TYPE, { rules: { action: 'DENY', policies: tg.CUSTOM.policies }, stat_prefix: 'tcp.' }) });
    }
  }
  const add = (action: 'DENY' | 'ALLOW' | 'AUDIT', rbacAction: 'DENY' | 'ALLOW' | 'LOG'): void => {
    const h = hg[action];
    if (!h.present && Object.keys(h.dryRun).length === 0) return;
    const prefix = `istio_dry_run_${action.toLowerCase()}_`;
    http.push({ name: RBAC_FILTER, typed_config: typed(HTTP_RBAC_TYPE, rbacConfig(rbacAction, h, prefix)) });
    tcp.push({ name: NETWORK_RBAC_FILTER, typed_config: typed(NETWORK_RBAC_TYPE, { ...rbacConfig(rbacAction, tg[action], prefix), stat_prefix: 'tcp.' }) });
  };
  add('DENY', 'DENY');
  add('ALLOW', 'ALLOW');
  add('AUDIT', 'LOG');
  return { http, tcp };
}
