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
import { filterMetadata } from '../../../rbac/stream-metadata.ts';
import type { FilterStatus, HttpFilter, HttpStream } from '../http-filter.ts';

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
}

type Entry = { key: string; value: string };
/** One action: the entry it adds, null to drop the descriptor, undefined to add nothing (skip_if_absent). */
type ActionFn = (s: HttpStream) => Entry | null | undefined;

function text(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function metadataAction(m: D, path: string): ActionFn {
  const key = m.metadata_key?.key;
  if (!key) throw configError(`${path}.metadata_key.key`, 'must not be empty');
  if (m.source !== undefined && m.source !== 'DYNAMIC' && m.source !== 0) throw configError(`${path}.source`, 'only DYNAMIC metadata is supported');
  const segments: string[] = (m.metadata_key.path ?? []).map((p: D) => String(p.key));
  const descriptorKey = String(m.descriptor_key ?? '');
  const def = m.default_value ? String(m.default_value) : undefined;
  const skip = m.skip_if_absent === true;
  return (s) => {
    let v: unknown = filterMetadata(s.req, key);
    for (const seg of segments) v = v !== null && typeof v === 'object' ? (v as D)[seg] : undefined;
    const t = text(v) ?? def;
    if (t === undefined || t === '') return skip ? undefined : null;
    return { key: descriptorKey, value: t };
  };
}

function compileAction(a: D, path: string): ActionFn {
  if (a.generic_key) {
    const e = { key: String(a.generic_key.descriptor_key || 'generic_key'), value: String(a.generic_key.descriptor_value ?? '') };
    return () => e;
  }
  if (a.request_headers) {
    const h = String(a.request_headers.header_name ?? '').toLowerCase();
    const key = String(a.request_headers.descriptor_key ?? '');
    const skip = a.request_headers.skip_if_absent === true;
    return (s) => {
      const v = h === ':path' ? s.req.url : h === ':method' ? s.req.method : headerValue(s.req, s.host, h);
      if (v === undefined || v === '') return skip ? undefined : null;
      return { key, value: v };
    };
  }
  if (a.remote_address) return (s) => ({ key: 'remote_address', value: connectionFacts(s.req.socket).directRemoteIp });
  if (a.destination_cluster) return (s) => (s.upstreamCluster || clusterOfRoute(s) ? { key: 'destination_cluster', value: s.upstreamCluster || clusterOfRoute(s) } : null);
  if (a.source_cluster) return () => ({ key: 'source_cluster', value: '' });
  if (a.header_value_match) {
    const m = a.header_value_match;
    const expect = m.expect_match?.value ?? true;
    const headers: D[] = m.headers ?? [];
    const e = { key: String(m.descriptor_key || 'header_match'), value: String(m.descriptor_value ?? '') };
    return (s) => {
      const all = headers.every((hm) => {
        const v = headerValue(s.req, s.host, String(hm.name).toLowerCase());
        const present = v !== undefined;
        const ok = hm.present_match !== undefined ? present === Boolean(hm.present_match) : hm.string_match?.exact !== undefined ? v === hm.string_match.exact : hm.exact_match !== undefined ? v === hm.exact_match : present;
        return hm.invert_match ? !ok : ok;
      });
      return all === expect ? e : null;
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

interface CompiledRateLimits {
  readonly descriptors: readonly (readonly ActionFn[])[];
}

const compiled = new WeakMap<object, CompiledRateLimits>();

function compile(perRoute: D, path: string): CompiledRateLimits {
  let c = compiled.get(perRoute);
  if (!c) {
    const list: D[] = perRoute.rate_limits ?? [];
    c = { descriptors: list.map((rl, i) => (rl.actions ?? []).map((a: D, j: number) => compileAction(a, `${path}.rate_limits[${i}].actions[${j}]`))) };
    compiled.set(perRoute, c);
  }
  return c;
}

function descriptorsFor(s: HttpStream, rl: CompiledRateLimits): D[] {
  const out: D[] = [];
  for (const actions of rl.descriptors) {
    const entries: Entry[] = [];
    let drop = false;
    for (const fn of actions) {
      const e = fn(s);
      if (e === null) {
        drop = true;
        break;
      }
      if (e) entries.push(e);
    }
    if (!drop && entries.length > 0) out.push({ entries });
  }
  return out;
}

class RateLimitFilter implements HttpFilter {
  private readonly st: Settings;
  private call: grpc.ClientUnaryCall | undefined;

  constructor(st: Settings) {
    this.st = st;
  }

  decodeHeaders(s: HttpStream): FilterStatus {
    const st = this.st;
    const per = s.route.perFilterConfig.get(st.name) ?? s.virtualHost.perFilterConfig?.get(st.name);
    if (!per || per.disabled) return 'continue';
    const descriptors = descriptorsFor(s, compile(per.config, st.name));
    if (descriptors.length === 0) return 'continue';
    const host = st.clusters.get(st.cluster)?.pickHost();
    if (!host) {
      this.onError(s);
      return 'stop';
    }
    const address = `${host.address}:${host.port}`;
    let client = st.clients.get(address);
    if (!client) {
      const Ctor = loadXdsProtos().service(RATE_LIMIT_SERVICE);
      client = new Ctor(address, grpc.credentials.createInsecure(), st.authority ? { 'grpc.default_authority': st.authority } : {});
      st.clients.set(address, client);
    }
    const domain = (per.config.domain as string | undefined) || st.domain;
    this.call = (client as unknown as { ShouldRateLimit: (r: D, o: grpc.CallOptions, cb: (err: grpc.ServiceError | null, resp: D) => void) => grpc.ClientUnaryCall })
      .ShouldRateLimit({ domain, descriptors, hits_addend: 1 }, { deadline: Date.now() + st.timeoutMs }, (err, resp) => {
        this.call = undefined;
        if (s.ended) return;
        if (err) {
          this.onError(s);
          return;
        }
        const over = resp.overall_code === 'OVER_LIMIT' || resp.overall_code === 2;
        if (!over) {
          st.stats.ok.value++;
          s.continueDecoding();
          return;
        }
        st.stats.over_limit.value++;
        if (!st.disableRateLimitedHeader && !s.res.headersSent) s.res.setHeader('x-envoy-ratelimited', 'true');
        s.sendLocalReply(st.limitedStatus, '', 'RL');
      });
    return 'stop';
  }

  private onError(s: HttpStream): void {
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
    this.call?.cancel();
    this.call = undefined;
  }
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
    };
    return { name: settings.name, terminal: false, create: () => new RateLimitFilter(settings) };
  },
};
