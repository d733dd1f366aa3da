// Istio 1.4's Mixer filter, attribute half (`istio.mixer`, config
// istio.mixer.v1.config.client.HttpClientConfig in a TypedStruct): it puts
// the workload attributes of both ends of a request into the request's
// dynamic metadata namespace `istio.mixer`, where ext_authz
// (metadata_context_namespaces), the ratelimit filter (metadata descriptor
// actions) and the gRPC access logger (common_properties.metadata) read them,
// and Mixer turns them into attributes (src/mixer/envoy-attributes.ts).
//
// OUTBOUND (client sidecar): adds `x-istio-attributes` to the request,
// base64 of a JSON object with this workload's source.* attributes (from the
// bootstrap node: LABELS, NAMESPACE, WORKLOAD_NAME, NAME) and the
// destination.service.* of the route's `outbound|port|subset|host` cluster.
// Istio 1.4 forwarded the same attributes in a protobuf `x-istio-attributes`.
//
// INBOUND (server sidecar): takes the header off the request (the app never
// sees it), keeps only the forwardable names below, adds destination.* from
// its own node, and sets the metadata. As in Istio 1.4 the header is
// trusted: a client that reaches the sidecar without a sidecar of its own can
// claim any source labels. source.principal and source.namespace come from
// the mTLS peer certificate when there is one, never from the header.

import { TYPE_URL_PREFIX } from '../../../../xds/index.ts';
import { plainStruct } from '../../../config/typed-struct.ts';
import type { HttpFilterExtension } from '../../../registry.ts';
import { connectionFacts } from '../../../rbac/connection-facts.ts';
import { setFilterMetadata } from '../../../rbac/stream-metadata.ts';
import type { FilterStatus, HttpFilter, HttpStream } from '../http-filter.ts';

export const MIXER_ATTRIBUTES_TYPE_URL = `${TYPE_URL_PREFIX}istio.mixer.v1.config.client.HttpClientConfig`;
export const MIXER_METADATA_NAMESPACE = 'istio.mixer';
export const FORWARD_HEADER = 'x-istio-attributes';

/** Attributes a client sidecar may forward; anything else in the header is ignored. */
const FORWARDABLE = new Set([
  'source.labels', 'source.name', 'source.uid', 'source.namespace', 'source.workload.name', 'source.workload.namespace', 'source.workload.uid',
  'destination.service.host', 'destination.service.name', 'destination.service.namespace', 'destination.service.uid',
]);

type Attrs = Record<string, unknown>;

/** This workload's attributes under `side` (source or destination), from the bootstrap node. */
export function selfAttributes(node: Readonly<Record<string, any>> | undefined, side: 'source' | 'destination'): Attrs {
  const meta = plainStruct(node?.metadata);
  const out: Attrs = {};
  const labels = meta.LABELS && typeof meta.LABELS === 'object' ? (meta.LABELS as Record<string, unknown>) : undefined;
  const ns = typeof meta.NAMESPACE === 'string' && meta.NAMESPACE ? meta.NAMESPACE : undefined;
  const name = typeof meta.NAME === 'string' && meta.NAME ? meta.NAME : undefined;
  const workload = typeof meta.WORKLOAD_NAME === 'string' && meta.WORKLOAD_NAME ? meta.WORKLOAD_NAME : name;
  if (labels) out[`${side}.labels`] = Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, String(v)]));
  if (ns) {
    out[`${side}.namespace`] = ns;
    out[`${side}.workload.namespace`] = ns;
  }
  if (name) {
    out[`${side}.name`] = name;
    if (ns) out[`${side}.uid`] = `kubernetes://${name}.${ns}`;
  }
  if (workload) out[`${side}.workload.name`] = workload;
  return out;
}

/** destination.service.* of an Istio outbound cluster name; empty for anything else. */
export function serviceAttributes(cluster: string | undefined): Attrs {
  const m = /^outbound\|\d*\|[^|]*\|(.+)$/.exec(cluster ?? '');
  if (!m) return {};
  const host = m[1];
  const [name, namespace] = host.split('.');
  const out: Attrs = { 'destination.service.host': host, 'destination.service.name': name };
  if (namespace && host.split('.').length > 2) out['destination.service.namespace'] = namespace;
  return out;
}

/**
 * Bound of each cache below. The header values a server sidecar sees are one
 * per calling workload and destination service, the clusters an outbound
 * sidecar routes to one per service port: a handful in practice. A client
 * that sends arbitrary values only makes the cache start over.
 */
const MAX_CACHED = 1024;
/** Principals remembered per header value: the mTLS peers of one source workload (usually one). */
const MAX_PRINCIPALS = 16;

/** Freezes an attribute object and its source.labels map: cached objects are shared by every request. */
function frozen(a: Attrs): Attrs {
  for (const v of Object.values(a)) if (v && typeof v === 'object') Object.freeze(v);
  return Object.freeze(a);
}

/** Inbound: the request's istio.mixer metadata for one header value, without and with an mTLS peer. */
interface Inbound {
  /** The forwarded attributes with this workload's on top (no peer certificate). */
  readonly plain: Attrs;
  /** The same with source.principal (and source.namespace) of each peer seen. */
  readonly byPrincipal: Map<string, Attrs>;
}

class Settings {
  readonly inbound: boolean;
  readonly self: Attrs;
  /** Outbound: the header value per cluster. Inbound: the metadata per header value ('' when absent). */
  readonly headerByCluster = new Map<string, string>();
  readonly parsed = new Map<string, Inbound>();

  constructor(inbound: boolean, node: Readonly<Record<string, any>> | undefined) {
    this.inbound = inbound;
    this.self = selfAttributes(node, inbound ? 'destination' : 'source');
  }

  header(cluster: string): string {
    let h = this.headerByCluster.get(cluster);
    if (h === undefined) {
      h = Buffer.from(JSON.stringify({ ...this.self, ...serviceAttributes(cluster) })).toString('base64');
      if (this.headerByCluster.size >= MAX_CACHED) this.headerByCluster.clear();
      this.headerByCluster.set(cluster, h);
    }
    return h;
  }

  /** The (frozen, shared) metadata of a request with header `value` from peer `principal` ('' without mTLS). */
  metadata(value: string, principal: string): Attrs {
    let e = this.parsed.get(value);
    if (!e) {
      e = { plain: frozen({ ...parse(value), ...this.self }), byPrincipal: new Map() };
      if (this.parsed.size >= MAX_CACHED) this.parsed.clear();
      this.parsed.set(value, e);
    }
    if (!principal) return e.plain;
    let a = e.byPrincipal.get(principal);
    if (!a) {
      a = { ...e.plain };
      a['source.principal'] = principal;
      const ns = /\/ns\/([^/]+)\//.exec(principal)?.[1];
      if (ns) a['source.namespace'] = ns;
      else delete a['source.namespace'];
      frozen(a);
      if (e.byPrincipal.size >= MAX_PRINCIPALS) e.byPrincipal.clear();
      e.byPrincipal.set(principal, a);
    }
    return a;
  }
}

/** The forwardable attributes of a header value; nothing for a malformed one. */
function parse(value: string): Attrs {
  const a: Attrs = {};
  if (!value) return a;
  try {
    const raw = JSON.parse(Buffer.from(value, 'base64').toString('utf8')) as unknown;
    if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
      for (const [k, v] of Object.entries(raw as Attrs)) {
        if (!FORWARDABLE.has(k)) continue;
        if (k === 'source.labels') {
          if (v && typeof v === 'object' && !Array.isArray(v)) a[k] = Object.fromEntries(Object.entries(v as Attrs).map(([lk, lv]) => [lk, String(lv)]));
        } else if (typeof v === 'string') a[k] = v;
      }
    }
  } catch {
    // a malformed header forwards nothing
  }
  return a;
}

function routeCluster(s: HttpStream): string {
  const a = s.route?.action as { type?: string; cluster?: string; weighted?: { clusters: readonly { name: string }[] } } | undefined;
  if (!a || a.type !== 'cluster') return '';
  return a.cluster ?? a.weighted?.clusters[0]?.name ?? '';
}

class MixerAttributesFilter implements HttpFilter {
  private readonly st: Settings;

  constructor(st: Settings) {
    this.st = st;
  }

  decodeHeaders(s: HttpStream): FilterStatus {
    const h = s.req.headers;
    if (!this.st.inbound) {
      h[FORWARD_HEADER] = this.st.header(routeCluster(s));
      return 'continue';
    }
    const forwarded = h[FORWARD_HEADER];
    delete h[FORWARD_HEADER];
    // Shared by every request of the same source and peer: handed over, never copied (stream-metadata.ts).
    const attrs = this.st.metadata(typeof forwarded === 'string' ? forwarded : '', connectionFacts(s.req.socket).principal);
    setFilterMetadata(s.req, MIXER_METADATA_NAMESPACE, attrs);
    // Access loggers see the request headers object, not the request: the same metadata under it.
    setFilterMetadata(h, MIXER_METADATA_NAMESPACE, attrs);
    return 'continue';
  }
}

export const mixerAttributesExtension: HttpFilterExtension = {
  typeUrl: MIXER_ATTRIBUTES_TYPE_URL,
  category: 'http',
  create(config: Record<string, any>, ctx, _path, name) {
    // `direction` in the config wins; else the listener's traffic_direction (Pilot sends no fields).
    const c = plainStruct(config ?? {});
    const direction = String(c.direction ?? ctx.trafficDirection ?? 'INBOUND').toUpperCase();
    const st = new Settings(direction !== 'OUTBOUND', ctx.node);
    return { name: name || 'istio.mixer', terminal: false, create: () => new MixerAttributesFilter(st) };
  },
};
