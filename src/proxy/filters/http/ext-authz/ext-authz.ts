// The external authorization filter (envoy.filters.http.ext_authz), gRPC
// flavour: each request becomes an envoy.service.auth.v3 CheckRequest
// (source and destination addresses and principals, method, path, host,
// headers, optionally the body) sent to a host of `grpc_service.envoy_grpc`'s
// cluster. OK applies the header edits and continues; a denial answers with
// the status, headers and body the server chose (flag UAEX); a failed call
// answers status_on_error (403) unless failure_mode_allow. It is the slot
// Mixer's Check and AuthorizationPolicy CUSTOM use; Mixer's caching hints
// are honoured by check-cache.ts. Stats: `http.<prefix>.ext_authz.{ok,
// denied,error,failure_mode_allowed,disabled}` plus the check cache's.

import * as grpc from '@grpc/grpc-js';
import type { OutgoingHttpHeaders } from 'node:http';
import { TYPE_URL_PREFIX } from '../../../../xds/index.ts';
import { configError } from '../../../errors.ts';
import { durationMs } from '../../../config/values.ts';
import type { Clock } from '../../../clock.ts';
import { realClock } from '../../../clock.ts';
import type { Counter } from '../../../stats.ts';
import type { HttpFilterExtension } from '../../../registry.ts';
import type { ClusterManager } from '../../../upstream/cluster-manager.ts';
import { connectionFacts } from '../../../rbac/connection-facts.ts';
import { headerValue } from '../../../rbac/http-request.ts';
import { filterMetadata, metadataText, setFilterMetadata } from '../../../rbac/stream-metadata.ts';
import type { FilterStatus, HttpFilter, HttpStream } from '../http-filter.ts';
import type { CheckMethod } from '../../common/ext-authz/authz-client.ts';
import { CONNECTION_ATTRIBUTES, GrpcClients, MIXER_CACHE_NAMESPACE, connectionAttribute, decisionOf, httpStatusOf, localPrincipal, metadataEnabled, socketAddress } from '../../common/ext-authz/authz-client.ts';
import { struct } from '../../../config/proto-json.ts';
import { plainStruct } from '../../../config/typed-struct.ts';
import type { AttributeReader, CachedDecision } from '../../common/ext-authz/check-cache.ts';
import { CheckCache } from '../../common/ext-authz/check-cache.ts';

type D = Record<string, any>;

export const EXT_AUTHZ_TYPE_URL = `${TYPE_URL_PREFIX}envoy.extensions.filters.http.ext_authz.v3.ExtAuthz`;
export const EXT_AUTHZ_PER_ROUTE_TYPE_URL = `${TYPE_URL_PREFIX}envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute`;
export const EXT_AUTHZ_METADATA = 'envoy.filters.http.ext_authz';
/** Headers that differ per request and never key the check cache. */
const PER_REQUEST_HEADERS = new Set(['x-request-id', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'traceparent', 'tracestate', 'content-length', 'x-forwarded-client-cert']);

export interface ExtAuthzStats {
  readonly ok: Counter;
  readonly denied: Counter;
  readonly error: Counter;
  readonly failure_mode_allowed: Counter;
  readonly disabled: Counter;
  readonly cache_hit: Counter;
}

export interface ExtAuthzSettings {
  readonly cluster: string;
  readonly authority: string;
  readonly timeoutMs: number;
  readonly failureModeAllow: boolean;
  readonly failureModeAllowHeaderAdd: boolean;
  readonly statusOnError: number;
  readonly withRequestBody: { readonly maxBytes: number; readonly allowPartial: boolean } | undefined;
  readonly includePeerCertificate: boolean;
  readonly metadataNamespaces: readonly string[];
  readonly clusters: ClusterManager;
  readonly clients: GrpcClients;
  readonly cache: CheckCache;
  readonly stats: ExtAuthzStats;
  readonly name: string;
  /** filter_enabled_metadata: only requests whose dynamic metadata matches are checked (Istio's CUSTOM action). */
  readonly enabledMetadata: ((req: object) => boolean) | undefined;
}

export class ExtAuthzFilter implements HttpFilter {
  private readonly settings: ExtAuthzSettings;
  private call: grpc.ClientUnaryCall | undefined;
  private responseHeaders: CachedDecision['responseHeaders'] = [];

  constructor(settings: ExtAuthzSettings) {
    this.settings = settings;
  }

  decodeHeaders(s: HttpStream): FilterStatus {
    const st = this.settings;
    let contextExtensions: Record<string, string> = {};
    const perRoute = s.route.perFilterConfig.get(st.name);
    if (perRoute) {
      if (perRoute.disabled || perRoute.config.disabled === true) {
        st.stats.disabled.value++;
        return 'continue';
      }
      contextExtensions = perRoute.config.check_settings?.context_extensions ?? {};
    }
    if (st.enabledMetadata && !st.enabledMetadata(s.req)) return 'continue';
    const read = this.attributeReader(s);
    const cached = st.cache.lookup(read);
    if (cached) {
      st.stats.cache_hit.value++;
      return this.apply(s, cached) ? 'continue' : 'stop';
    }
    if (st.withRequestBody) {
      this.bufferBody(s, (body) => this.check(s, read, contextExtensions, body));
      return 'stop';
    }
    this.check(s, read, contextExtensions, undefined);
    return 'stop';
  }

  /**
   * Reads the body up to max_request_bytes, then puts it back for the
   * router. 'readable' + read() and an unshift in the same tick keep the
   * stream from ending, so the router later reads the same bytes and 'end'.
   */
  private bufferBody(s: HttpStream, then: (body: Buffer) => void): void {
    const req = s.req;
    const { maxBytes, allowPartial } = this.settings.withRequestBody!;
    const chunks: Buffer[] = [];
    let size = 0;
    const drain = (): void => {
      let c: Buffer | null;
      while (size < maxBytes && (c = req.read() as Buffer | null) !== null) {
        chunks.push(c);
        size += c.length;
      }
      const full = size >= maxBytes;
      if (!full && !req.complete) return;
      req.removeListener('readable', drain);
      const body = Buffer.concat(chunks);
      if (body.length > 0) req.unshift(body);
      if (full && !allowPartial && !(req.complete && req.readableLength === body.length && size === maxBytes)) {
        s.sendLocalReply(413, 'Payload Too Large');
        return;
      }
      then(body.subarray(0, maxBytes));
    };
    if (req.complete && req.readableLength === 0) {
      then(Buffer.alloc(0));
      return;
    }
    req.on('readable', drain);
    drain();
  }

  private attributeReader(s: HttpStream): AttributeReader {
    const req = s.req;
    const conn = connectionFacts(req.socket);
    return (name) => {
      if (CONNECTION_ATTRIBUTES.has(name)) return connectionAttribute(conn, name);
      switch (name) {
        case 'request.method': return req.method;
        case 'request.path': return req.url;
        case 'request.url_path': return s.path;
        case 'request.host': return s.host;
        case 'request.scheme': return headerValue(req, s.host, ':scheme');
        case 'request.useragent': return headerValue(req, s.host, 'user-agent');
        case 'request.referer': return headerValue(req, s.host, 'referer');
        case 'request.headers': {
          const entries = Object.entries(req.headers).filter(([k]) => !PER_REQUEST_HEADERS.has(k)).sort(([a], [b]) => (a < b ? -1 : 1));
          return JSON.stringify(entries);
        }
      }
      const m = /^request\.headers\[(.+)\]$/.exec(name);
      if (m) return headerValue(req, s.host, m[1].toLowerCase());
      const auth = filterMetadata(req, 'istio_authn');
      if (name === 'request.auth.principal') return auth?.['request.auth.principal'] as string | undefined;
      // Attributes the istio.mixer filter put in the metadata (source.labels, destination.service.host, ...).
      const mixer = filterMetadata(req, MIXER_CACHE_NAMESPACE)?.[name];
      // Non-string values (source.labels) as JSON text, remembered per frozen object.
      if (mixer !== undefined) return mixer === null ? 'null' : metadataText(mixer);
      return undefined;
    };
  }

  private checkRequest(s: HttpStream, contextExtensions: Record<string, string>, body: Buffer | undefined): D {
    const req = s.req;
    const conn = connectionFacts(req.socket);
    const headers: Record<string, string> = { ':method': req.method ?? 'GET', ':path': req.url ?? '/', ':authority': s.host };
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !k.startsWith(':')) headers[k] = Array.isArray(v) ? v.join(',') : v;
    const now = Date.now();
    const attributes: D = {
      source: { address: socketAddress(conn.directRemoteIp, conn.directRemotePort), principal: conn.principal },
      destination: { address: socketAddress(conn.destinationIp, conn.destinationPort), principal: localPrincipal(req.socket) },
      request: {
        time: { seconds: String(Math.floor(now / 1000)), nanos: (now % 1000) * 1e6 },
        http: {
          id: String(req.headers['x-request-id'] ?? ''),
          method: req.method ?? 'GET',
          headers,
          path: req.url ?? '/',
          host: s.host,
          scheme: headerValue(req, s.host, ':scheme'),
          query: s.query,
          size: String(body ? body.length : Number(req.headers['content-length'] ?? -1)),
          protocol: req.httpVersionMajor === 2 ? 'HTTP/2' : `HTTP/${req.httpVersion}`,
          ...(body && body.length > 0 ? { body: body.toString('utf8') } : {}),
        },
      },
      context_extensions: contextExtensions,
    };
    if (conn.sni) attributes.tls_session = { sni: conn.sni };
    const namespaces = this.settings.metadataNamespaces;
    if (namespaces.length > 0) {
      const filter_metadata: Record<string, D> = {};
      for (const ns of namespaces) {
        const m = filterMetadata(req, ns);
        if (m) filter_metadata[ns] = struct(m);
      }
      attributes.metadata_context = { filter_metadata };
    }
    return { attributes };
  }

  private check(s: HttpStream, read: AttributeReader, contextExtensions: Record<string, string>, body: Buffer | undefined): void {
    const st = this.settings;
    if (s.ended) return;
    const host = st.clusters.get(st.cluster)?.pickHost();
    if (!host) {
      this.onError(s);
      return;
    }
    const client = st.clients.get(`${host.address}:${host.port}`, st.authority);
    const request = this.checkRequest(s, contextExtensions, body);
    this.call = (client as unknown as { Check: CheckMethod })
      .Check(request, { deadline: Date.now() + st.timeoutMs }, (err, resp) => {
        this.call = undefined;
        if (s.ended) return;
        if (err) {
          this.onError(s);
          return;
        }
        const { decision, hints } = decisionOf(resp);
        if (hints) st.cache.store(hints, read, decision);
        if (resp.dynamic_metadata) setFilterMetadata(s.req, EXT_AUTHZ_METADATA, plainStruct(resp.dynamic_metadata));
        if (this.apply(s, decision)) s.continueDecoding();
      });
  }

  private onError(s: HttpStream): void {
    const st = this.settings;
    st.stats.error.value++;
    if (st.failureModeAllow) {
      st.stats.failure_mode_allowed.value++;
      if (st.failureModeAllowHeaderAdd) s.req.headers['x-envoy-auth-failure-mode-allowed'] = 'true';
      s.continueDecoding();
      return;
    }
    s.sendLocalReply(st.statusOnError, '', 'UAEX');
  }

  /** True when the request goes on. */
  private apply(s: HttpStream, d: CachedDecision): boolean {
    const st = this.settings;
    if (d.allowed) {
      st.stats.ok.value++;
      const h = s.req.headers;
      for (const name of d.headersToRemove) if (!name.startsWith(':') && name !== 'host') delete h[name];
      for (const [k, v, append] of d.headers) {
        const prev = h[k];
        h[k] = append && prev !== undefined ? `${Array.isArray(prev) ? prev.join(',') : prev},${v}` : v;
      }
      this.responseHeaders = d.responseHeaders;
      return true;
    }
    st.stats.denied.value++;
    s.addResponseFlag('UAEX');
    if (!s.res.headersSent) for (const [k, v] of d.headers) s.res.setHeader(k, v);
    s.sendLocalReply(d.status, d.body);
    return false;
  }

  encodeHeaders(_s: HttpStream, _status: number, headers: OutgoingHttpHeaders): void {
    for (const [k, v, append] of this.responseHeaders) {
      const prev = headers[k];
      headers[k] = append && prev !== undefined ? `${Array.isArray(prev) ? prev.join(',') : String(prev)},${v}` : v;
    }
  }

  onDestroy(): void {
    this.call?.cancel();
    this.call = undefined;
  }
}

export const extAuthzExtension: HttpFilterExtension = {
  typeUrl: EXT_AUTHZ_TYPE_URL,
  category: 'http',
  validatePerRoute(c: D, path: string) {
    if (c.override !== undefined && c.override !== 'disabled' && c.override !== 'check_settings') throw configError(path, `unsupported override ${c.override}`);
  },
  create(c: D, ctx, path, name) {
    if (c.services === 'http_service' || c.http_service) throw configError(`${path}.http_service`, 'only grpc_service is supported');
    const g = c.grpc_service;
    if (!g?.envoy_grpc?.cluster_name) throw configError(`${path}.grpc_service.envoy_grpc.cluster_name`, 'must not be empty (google_grpc is not supported)');
    const p = `http.${ctx.statPrefix ?? 'unknown'}.ext_authz.${c.stat_prefix ? `${c.stat_prefix}.` : ''}`;
    const counter = (n: string): Counter => ctx.stats.counter(p + n);
    const clock: Clock = ctx.clock ?? realClock;
    const wb = c.with_request_body;
    const settings: ExtAuthzSettings = {
      name: name || 'envoy.filters.http.ext_authz',
      cluster: g.envoy_grpc.cluster_name,
      authority: g.envoy_grpc.authority ?? '',
      timeoutMs: durationMs(g.timeout, 200),
      failureModeAllow: c.failure_mode_allow === true,
      failureModeAllowHeaderAdd: c.failure_mode_allow_header_add === true,
      statusOnError: httpStatusOf(c.status_on_error?.code, 403),
      withRequestBody: wb ? { maxBytes: Number(wb.max_request_bytes ?? 0) || 8192, allowPartial: wb.allow_partial_message === true } : undefined,
      includePeerCertificate: c.include_peer_certificate === true,
      metadataNamespaces: c.metadata_context_namespaces ?? [],
      clusters: ctx.clusters,
      clients: new GrpcClients(),
      cache: new CheckCache(clock),
      enabledMetadata: c.filter_enabled_metadata ? metadataEnabled(c.filter_enabled_metadata, `${path}.filter_enabled_metadata`) : undefined,
      stats: { ok: counter('ok'), denied: counter('denied'), error: counter('error'), failure_mode_allowed: counter('failure_mode_allowed'), disabled: counter('disabled'), cache_hit: counter('check_cache_hit') },
    };
    return { name: settings.name, terminal: false, create: () => new ExtAuthzFilter(settings) };
  },
};
