// Envoy's global rate limit filter (envoy.filters.http.ratelimit, config
// envoy.extensions.filters.http.ratelimit.v3.RateLimit) calling an RLS v3
// service (envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit) on
// a host of `rate_limit_service.grpc_service.envoy_grpc`'s cluster.
//
// Descriptors come from the route's typed_per_filter_config
// (RateLimitPerRoute.rate_limits; route-level RouteAction.rate_limits are not
// read). Actions: generic_key, request_headers, remote_address,
// destination_cluster, source_cluster, header_value_match (exact / present),
// metadata and dynamic_metadata (DYNAMIC source; a non-string value, e.g.
// `source.labels` from the istio.mixer namespace, is sent as JSON text).
// A descriptor with an action that produces nothing is dropped, as in Envoy
// (skip_if_absent drops just the entry).
//
// Cacheable quota (RateLimitResponse.quota): every call asks for an
// allotment in the `x-mesh-quota-prefetch` metadata, sized as Istio 1.4's
// mixer client did (quota-cache.ts). A server that answers with `quota`
// grants that many requests until `valid_until`; they are consumed locally
// and refreshed in the background before they run out, and its over-limit
// answers are cached briefly. A server that sends no `quota` sees one call
// per request, as with Envoy.
//
// OVER_LIMIT answers `rate_limited_status` (429) with flag RL and
// `x-envoy-ratelimited: true`; a failed or timed-out call lets the request
// through unless failure_mode_deny (then 500, flag RLSE). Stats, as Envoy:
// `cluster.<rls cluster>.ratelimit.{ok,over_limit,error,failure_mode_allowed}`.

import * as grpc from '@grpc/grpc-js';
import { TYPE_URL_PREFIX, loadXdsProtos } from '../../../../xds/index.ts';
import { configError } from '../../../errors.ts';
import { durationMs } from '../../../config/values.ts';
import type { Counter } from '../../../stats.ts';
import type { HttpFilterExtension } from '../../../registry.ts';
import type { ClusterManager } from '../../../upstream/cluster-manager.ts';
import { connectionFacts } from '../../../rbac/connection-facts.ts';
import { headerValue } from '../../../rbac/http-request.ts';
import { filterMetadata, metadataText } from '../../../rbac/stream-metadata.ts';
import type { FilterStatus, HttpFilter, HttpStream } from '../http-filter.ts';
import type { QuotaEntry } from './quota-cache.ts';
import { QuotaCache } from './quota-cache.ts';

type D = Record<string, any>;

export const RATELIMIT_TYPE_URL = `${TYPE_URL_PREFIX}envoy.extensions.filters.http.ratelimit.v3.RateLimit`;
export const RATELIMIT_PER_ROUTE_TYPE_URL = `${TYPE_URL_PREFIX}envoy.extensions.filters.http.ratelimit.v3.RateLimitPerRoute`;
export const RATE_LIMIT_SERVICE = 'envoy.service.ratelimit.v3.RateLimitService';

interface Stats {
  readonly ok: Counter;
  readonly over_limit: Counter;
  readonly error: Counter;
  readonly failure_mode_allowed: Counter;
}

interface Settings {
  readonly name: string;
  readonly domain: string;
  readonly cluster: string;
  readonly authority: string;
  readonly timeoutMs: number;
  readonly failureModeDeny: boolean;
  readonly limitedStatus: number;
  readonly disableRateLimitedHeader: boolean;
  readonly clusters: ClusterManager;
  readonly clients: Map<string, grpc.Client>;
  readonly stats: Stats;
  /** Granted quota per descriptor set (only a server that sends `quota` fills it). */
  readonly cache: QuotaCache;
  /** The call on the wire per descriptor set, that requests without a token wait on. */
  readonly fetches: Map<QuotaEntry, Fetch>;
  /** Set once the server answered with `quota`: it grants allotments, so requests share calls. */
  quotaServer: boolean;
}

/**
 * One action: the value of the entry it adds under its fixed key, null to
 * drop the descriptor, undefined to add nothing (skip_if_absent).
 */
type ActionFn = (s: HttpStream) => string | null | undefined;

interface Action {
  readonly key: string;
  readonly value: ActionFn;
}

function metadataAction(m: D, path: string): Action {
  const key = m.metadata_key?.key;
  if (!key) throw configError(`${path}.metadata_key.key`, 'must not be empty');
  if (m.source !== undefined && m.source !== 'DYNAMIC' && m.source !== 0) throw configError(`${path}.source`, 'only DYNAMIC metadata is supported');
  const segments: string[] = (m.metadata_key.path ?? []).map((p: D) => String(p.key));
  const descriptorKey = String(m.descriptor_key ?? '');
  const def = m.default_value ? String(m.default_value) : undefined;
  const skip = m.skip_if_absent === true;
  return {
    key: descriptorKey,
    value: (s) => {
      let v: unknown = filterMetadata(s.req, key);
      for (const seg of segments) v = v !== null && typeof v === 'object' ? (v as D)[seg] : undefined;
      // Non-string values (source.labels) as JSON text, remembered per frozen object.
      const t = metadataText(v) ?? def;
      if (t === undefined || t === '') return skip ? undefined : null;
      return t;
    },
  };
}

function compileAction(a: D, path: string): Action {
  if (a.generic_key) {
    const value = String(a.generic_key.descriptor_value ?? '');
    return { key: String(a.generic_key.descriptor_key || 'generic_key'), value: () => value };
  }
  if (a.request_headers) {
    const h = String(a.request_headers.header_name ?? '').toLowerCase();
    const skip = a.request_headers.skip_if_absent === true;
    return {
      key: String(a.request_headers.descriptor_key ?? ''),
      value: (s) => {
        const v = h === ':path' ? s.req.url : h === ':method' ? s.req.method : headerValue(s.req, s.host, h);
        if (v === undefined || v === '') return skip ? undefined : null;
        return v;
      },
    };
  }
  if (a.remote_address) return { key: 'remote_address', value: (s) => connectionFacts(s.req.socket).directRemoteIp };
  if (a.destination_cluster) return { key: 'destination_cluster', value: (s) => s.upstreamCluster || clusterOfRoute(s) || null };
  if (a.source_cluster) return { key: 'source_cluster', value: () => '' };
  if (a.header_value_match) {
    const m = a.header_value_match;
    const expect = m.expect_match?.value ?? true;
    const headers: D[] = m.headers ?? [];
    const value = String(m.descriptor_value ?? '');
    return {
      key: String(m.descriptor_key || 'header_match'),
      value: (s) => {
        const all = headers.every((hm) => {
          const v = headerValue(s.req, s.host, String(hm.name).toLowerCase());
          const present = v !== undefined;
          const ok = hm.present_match !== undefined ? present === Boolean(hm.present_match) : hm.string_match?.exact !== undefined ? v === hm.string_match.exact : hm.exact_match !== undefined ? v === hm.exact_match : present;
          return hm.invert_match ? !ok : ok;
        });
        return all === expect ? value : null;
      },
    };
  }
  if (a.metadata) return metadataAction(a.metadata, `${path}.metadata`);
  if (a.dynamic_metadata) return metadataAction({ ...a.dynamic_metadata, source: 'DYNAMIC' }, `${path}.dynamic_metadata`);
  throw configError(path, 'unsupported rate limit action');
}

function clusterOfRoute(s: HttpStream): string {
  const a = s.route?.action as { type?: string; cluster?: string } | undefined;
  return a?.type === 'cluster' ? (a.cluster ?? '') : '';
}

/** A request's descriptors, built once per distinct set of action outputs and shared (never mutated). */
interface DescriptorSet {
  readonly domain: string;
  readonly descriptors: readonly D[];
  /** The quota cache's key: domain and descriptors as text, computed once. */
  readonly key: string;
}

/** A node of the descriptor memo: one level per action evaluated, keyed by its output. */
interface MemoNode {
  readonly next: Map<string | null | undefined, MemoNode>;
  set?: DescriptorSet;
}

/**
 * Distinct descriptor sets remembered per route config. Requests of the same
 * source and path give the same action outputs, so most find their set
 * without building a string. Per-request values (request_headers on an id)
 * would fill it: past the bound it starts over.
 */
const MAX_MEMO_SETS = 4096;

class CompiledRateLimits {
  readonly descriptors: readonly (readonly Action[])[];
  /** Outputs of the actions in order, then the domain -> the descriptor set. */
  private memo: MemoNode = { next: new Map() };
  private sets = 0;

  constructor(descriptors: readonly (readonly Action[])[]) {
    this.descriptors = descriptors;
  }

  /**
   * The request's descriptor set, or undefined when every descriptor is
   * dropped. Envoy's rules: an action producing nothing (null) drops its
   * descriptor and the rest of its actions are not run; undefined adds no
   * entry; a descriptor without entries is dropped.
   */
  descriptorSet(s: HttpStream, domain: string): DescriptorSet | undefined {
    let node = this.memo;
    for (const actions of this.descriptors) {
      for (const action of actions) {
        const v = action.value(s);
        let child = node.next.get(v);
        if (!child) node.next.set(v, (child = { next: new Map() }));
        node = child;
        if (v === null) break;
      }
    }
    let leaf = node.next.get(domain);
    if (!leaf) node.next.set(domain, (leaf = { next: new Map() }));
    if (leaf.set === undefined) {
      if (this.sets >= MAX_MEMO_SETS) {
        this.memo = { next: new Map() };
        this.sets = 0;
        return this.build(s, domain);
      }
      leaf.set = this.build(s, domain);
      this.sets++;
    }
    return leaf.set.descriptors.length > 0 ? leaf.set : undefined;
  }

  private build(s: HttpStream, domain: string): DescriptorSet {
    const out: D[] = [];
    for (const actions of this.descriptors) {
      const entries: { key: string; value: string }[] = [];
      let drop = false;
      for (const action of actions) {
        const v = action.value(s);
        if (v === null) {
          drop = true;
          break;
        }
        if (v !== undefined) entries.push({ key: action.key, value: v });
      }
      if (!drop && entries.length > 0) out.push({ entries });
    }
    return { domain, descriptors: out, key: `${domain}\n${JSON.stringify(out)}` };
  }
}

const compiled = new WeakMap<object, CompiledRateLimits>();

function compile(perRoute: D, path: string): CompiledRateLimits {
  let c = compiled.get(perRoute);
  if (!c) {
    const list: D[] = perRoute.rate_limits ?? [];
    c = new CompiledRateLimits(list.map((rl, i) => (rl.actions ?? []).map((a: D, j: number) => compileAction(a, `${path}.rate_limits[${i}].actions[${j}]`))));
    compiled.set(perRoute, c);
  }
  return c;
}

/** One ShouldRateLimit call on the wire; requests without a token wait on it (quota servers only). */
interface Fetch {
  readonly entry: QuotaEntry;
  readonly waiters: RateLimitFilter[];
  call?: grpc.ClientUnaryCall;
}

/** The metadata key that asks an RLS server for an allotment (see docs/mixer.md). */
export const QUOTA_PREFETCH_METADATA = 'x-mesh-quota-prefetch';

type RlsClient = { ShouldRateLimit: (r: D, m: grpc.Metadata, o: grpc.CallOptions, cb: (err: grpc.ServiceError | null, resp: D) => void) => grpc.ClientUnaryCall };

function rlsClient(st: Settings): RlsClient | undefined {
  const host = st.clusters.get(st.cluster)?.pickHost();
  if (!host) return undefined;
  const address = `${host.address}:${host.port}`;
  let client = st.clients.get(address);
  if (!client) {
    const Ctor = loadXdsProtos().service(RATE_LIMIT_SERVICE);
    client = new Ctor(address, grpc.credentials.createInsecure(), st.authority ? { 'grpc.default_authority': st.authority } : {});
    st.clients.set(address, client);
  }
  return client as unknown as RlsClient;
}

/** RateLimitResponse.quota as (tokens, expiry), or undefined when the server sent none. */
function quotaOf(resp: D): { requests: number; validUntilMs: number } | undefined {
  const q = resp.quota;
  const requests = Number(q?.requests ?? 0);
  if (!q || requests < 1) return undefined;
  const until = q.valid_until ? Number(q.valid_until.seconds ?? 0) * 1000 + Math.floor(Number(q.valid_until.nanos ?? 0) / 1e6) : 0;
  return { requests, validUntilMs: until };
}

/** The shortest duration_until_reset of the over-limit statuses, or undefined. */
function resetMsOf(resp: D): number | undefined {
  let ms: number | undefined;
  for (const st of (resp.statuses ?? []) as D[]) {
    const d = st.duration_until_reset;
    if (!d) continue;
    const v = Number(d.seconds ?? 0) * 1000 + Number(d.nanos ?? 0) / 1e6;
    ms = ms === undefined ? v : Math.min(ms, v);
  }
  return ms;
}

class RateLimitFilter implements HttpFilter {
  private readonly st: Settings;
  private stream: HttpStream | undefined;
  private request: DescriptorSet | undefined;
  private fetch: Fetch | undefined;

  constructor(st: Settings) {
    this.st = st;
  }

  decodeHeaders(s: HttpStream): FilterStatus {
    const st = this.st;
    const per = s.route.perFilterConfig.get(st.name) ?? s.virtualHost.perFilterConfig?.get(st.name);
    if (!per || per.disabled) return 'continue';
    const domain = (per.config.domain as string | undefined) || st.domain;
    const set = compile(per.config, st.name).descriptorSet(s, domain);
    if (!set) return 'continue';
    this.stream = s;
    this.request = set;
    const entry = st.cache.entry(set.key);
    const now = Date.now();
    const decision = entry.take(now);
    if (decision === 'allow') {
      this.allowedLocally(entry, now);
      return 'continue';
    }
    if (decision === 'deny') {
      this.overLimit();
      return 'stop';
    }
    this.fetchFor(entry);
    return 'stop';
  }

  /** A token was taken: refresh ahead in the background when the allotment runs low. */
  private allowedLocally(entry: QuotaEntry, now: number): void {
    this.st.stats.ok.value++;
    if (entry.shouldRefresh(now)) startFetch(this.st, entry, this.request!, undefined);
  }

  /** No token: join the fetch on the wire for this descriptor set, or start one. */
  private fetchFor(entry: QuotaEntry): void {
    const pending = this.st.fetches.get(entry);
    if (pending) {
      pending.waiters.push(this);
      this.fetch = pending;
      return;
    }
    const f = startFetch(this.st, entry, this.request!, this);
    if (f) this.fetch = f;
  }

  /** The fetch this request waited on answered (or failed); decide again from the cache. */
  resume(entry: QuotaEntry): void {
    this.fetch = undefined;
    if (!this.stream || this.stream.ended) return;
    const now = Date.now();
    const decision = entry.retake(now);
    if (decision === 'allow') {
      this.allowedLocally(entry, now);
      this.stream.continueDecoding();
    } else if (decision === 'deny') {
      this.overLimit();
    } else {
      this.fetchFor(entry);
    }
  }

  /** The server's own answer to this request's call (no quota in it). */
  answered(over: boolean): void {
    this.fetch = undefined;
    const s = this.stream;
    if (!s || s.ended) return;
    if (over) {
      this.overLimit();
      return;
    }
    this.st.stats.ok.value++;
    s.continueDecoding();
  }

  private overLimit(): void {
    const st = this.st;
    const s = this.stream!;
    st.stats.over_limit.value++;
    if (!st.disableRateLimitedHeader && !s.res.headersSent) s.res.setHeader('x-envoy-ratelimited', 'true');
    s.sendLocalReply(st.limitedStatus, '', 'RL');
  }

  failed(): void {
    this.fetch = undefined;
    const s = this.stream;
    if (!s || s.ended) return;
    const st = this.st;
    st.stats.error.value++;
    if (st.failureModeDeny) {
      s.sendLocalReply(500, '', 'RLSE');
      return;
    }
    st.stats.failure_mode_allowed.value++;
    s.continueDecoding();
  }

  onDestroy(): void {
    const f = this.fetch;
    this.fetch = undefined;
    this.stream = undefined;
    if (!f) return;
    const i = f.waiters.indexOf(this);
    if (i >= 0) f.waiters.splice(i, 1);
    // A server that grants quota may have charged an allotment already: let the call finish.
    if (f.waiters.length === 0 && !this.st.quotaServer) f.call?.cancel();
  }
}

/**
 * One ShouldRateLimit call for `entry` (hits_addend 1, plus the allotment
 * asked for in QUOTA_PREFETCH_METADATA). With `owner` the call decides that
 * request; without, it is a background refresh. While it is on the wire,
 * requests of a quota server's descriptor set without a token wait on it.
 */
function startFetch(st: Settings, entry: QuotaEntry, request: DescriptorSet, owner: RateLimitFilter | undefined): Fetch | undefined {
  const client = rlsClient(st);
  if (!client) {
    if (owner) owner.failed();
    else st.stats.error.value++;
    return undefined;
  }
  const asked = entry.wanted(Date.now());
  const fetch: Fetch = { entry, waiters: owner ? [owner] : [] };
  // Only a server known to grant quota makes requests share a call; others get one call per request, as in Envoy.
  if (st.quotaServer || !owner) st.fetches.set(entry, fetch);
  entry.inflight = true;
  const metadata = new grpc.Metadata();
  metadata.set(QUOTA_PREFETCH_METADATA, String(asked));
  fetch.call = client.ShouldRateLimit({ domain: request.domain, descriptors: request.descriptors, hits_addend: 1 }, metadata, { deadline: Date.now() + st.timeoutMs }, (err, resp) => {
    if (st.fetches.get(entry) === fetch) st.fetches.delete(entry);
    entry.inflight = false;
    const [first, ...rest] = fetch.waiters;
    const ownerWaiting = owner !== undefined && first === owner;
    if (err) {
      if (!owner) st.stats.error.value++;
      for (const w of fetch.waiters) w.failed();
      return;
    }
    const now = Date.now();
    const over = resp.overall_code === 'OVER_LIMIT' || resp.overall_code === 2;
    const quota = over ? undefined : quotaOf(resp);
    if (quota) {
      st.quotaServer = true;
      entry.granted(quota.requests, asked, quota.validUntilMs, now);
    } else if (over && st.quotaServer) {
      const resetMs = resetMsOf(resp);
      if (resetMs !== undefined) entry.overLimit(resetMs, now);
    }
    // The owner is decided by this answer; with quota, it takes the first token of the grant.
    if (ownerWaiting) {
      if (quota) entry.retake(now);
      first.answered(over);
    }
    for (const w of ownerWaiting ? rest : fetch.waiters) w.resume(entry);
  });
  return fetch;
}

let statusCodes: Record<string, number> | undefined;
function httpStatusOf(code: unknown, fallback: number): number {
  if (typeof code === 'number') return code >= 400 ? code : fallback;
  if (typeof code !== 'string' || code === '' || code === 'Empty') return fallback;
  statusCodes ??= loadXdsProtos().root.lookupEnum('envoy.type.v3.StatusCode').values;
  const n = statusCodes[code];
  return n !== undefined && n >= 400 ? n : fallback;
}

export const rateLimitExtension: HttpFilterExtension = {
  typeUrl: RATELIMIT_TYPE_URL,
  category: 'http',
  validatePerRoute(c: D, path: string) {
    compile(c, path);
  },
  create(c: D, ctx, path, name) {
    const g = c.rate_limit_service?.grpc_service;
    if (!g?.envoy_grpc?.cluster_name) throw configError(`${path}.rate_limit_service.grpc_service.envoy_grpc.cluster_name`, 'must not be empty (google_grpc is not supported)');
    if (!c.domain) throw configError(`${path}.domain`, 'must not be empty');
    const cluster = String(g.envoy_grpc.cluster_name);
    const p = `cluster.${cluster}.ratelimit.`;
    const counter = (n: string): Counter => ctx.stats.counter(p + n);
    const settings: Settings = {
      name: name || 'envoy.filters.http.ratelimit',
      domain: String(c.domain),
      cluster,
      authority: g.envoy_grpc.authority ?? '',
      // Envoy's default is 20 ms; a Node.js RLS round trip on a busy loop needs more.
      timeoutMs: durationMs(c.timeout, 20),
      failureModeDeny: c.failure_mode_deny === true,
      limitedStatus: httpStatusOf(c.rate_limited_status?.code, 429),
      disableRateLimitedHeader: c.disable_x_envoy_ratelimited_header === true,
      clusters: ctx.clusters,
      clients: new Map(),
      stats: { ok: counter('ok'), over_limit: counter('over_limit'), error: counter('error'), failure_mode_allowed: counter('failure_mode_allowed') },
      cache: new QuotaCache(),
      fetches: new Map(),
      quotaServer: false,
    };
    return { name: settings.name, terminal: false, create: () => new RateLimitFilter(settings) };
  },
};
