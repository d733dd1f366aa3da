// HCM tracing with the envoy.tracers.zipkin provider: a first per-stream
// filter that joins or starts a trace (trace-context.ts), decides sampling
// (the caller's decision, else random_sampling and overall_sampling), passes
// the context on to the upstream in B3 and W3C headers, and when the stream
// completes records one span with Envoy's tags, handed to the shared Zipkin
// reporter. Outbound listeners record CLIENT spans, the rest SERVER spans;
// with shared_span_context (Envoy's default; Istio turns it off) an inbound
// server span reuses the caller's span id, as Zipkin's shared spans do.

import { performance } from 'node:perf_hooks';
import { TYPE_URL_PREFIX } from '../../xds/index.ts';
import { decodeAny } from '../config/proto-json.ts';
import { configError } from '../errors.ts';
import type { FactoryContext, HttpFilterFactory } from '../registry.ts';
import type { FilterStatus, HttpFilter, HttpStream } from '../filters/http/http-filter.ts';
import { plainStruct } from '../config/typed-struct.ts';
import type { SpanContext } from './trace-context.ts';
import { extractContext, injectContext, newSpanId, newTraceId } from './trace-context.ts';
import type { ZipkinReporter, ZipkinSpan } from './zipkin-reporter.ts';
import { zipkinReporterFor } from './zipkin-reporter.ts';

export const ZIPKIN_CONFIG_TYPE_URL = `${TYPE_URL_PREFIX}envoy.config.trace.v3.ZipkinConfig`;

type D = Record<string, any>;

type CustomTag = { readonly tag: string; readonly value: (s: HttpStream) => string | undefined };

/** Immutable tracing settings of one HCM config. */
export interface TracingSettings {
  readonly reporter: ZipkinReporter;
  readonly kind: 'CLIENT' | 'SERVER';
  readonly sharedSpanContext: boolean;
  readonly traceId128: boolean;
  /** Percentages (0..100). */
  readonly randomSampling: number;
  readonly overallSampling: number;
  readonly maxPathTagLength: number;
  readonly serviceName: string;
  readonly nodeId: string;
  readonly customTags: readonly CustomTag[];
}

const percent = (v: D | null | undefined, dflt: number): number => (v && typeof v.value === 'number' ? v.value : dflt);

function decodeCustomTags(list: D[] | undefined, path: string): CustomTag[] {
  return (list ?? []).map((t, i) => {
    const p = `${path}[${i}]`;
    if (!t.tag) throw configError(`${p}.tag`, 'must not be empty');
    switch (t.type) {
      case 'literal': {
        const v = String(t.literal?.value ?? '');
        return { tag: t.tag, value: () => v };
      }
      case 'environment': {
        const v = process.env[t.environment?.name ?? ''] ?? t.environment?.default_value ?? '';
        return { tag: t.tag, value: () => v };
      }
      case 'request_header': {
        const name = String(t.request_header?.name ?? '').toLowerCase();
        const dflt = t.request_header?.default_value || undefined;
        return {
          tag: t.tag,
          value: (s) => {
            const v = s.req.headers[name];
            return (Array.isArray(v) ? v[0] : v) ?? dflt;
          },
        };
      }
      default:
        throw configError(`${p}`, `custom tag type ${t.type} is not supported (literal, environment, request_header)`);
    }
  });
}

/** HttpConnectionManager.tracing -> the tracing filter factory; undefined when no provider is set. */
export function decodeHttpTracing(c: D, ctx: FactoryContext, path: string): HttpFilterFactory | undefined {
  const provider = c.provider;
  if (!provider) return undefined;
  if (!provider.typed_config) throw configError(`${path}.provider.typed_config`, `tracer "${provider.name}" needs a typed_config`);
  if (provider.typed_config.type_url !== ZIPKIN_CONFIG_TYPE_URL) throw configError(`${path}.provider.typed_config`, `tracer ${provider.typed_config.type_url} is not supported (envoy.tracers.zipkin)`);
  const z = decodeAny<D>(provider.typed_config, `${path}.provider.typed_config`);
  const zp = `${path}.provider.typed_config`;
  if (!z.collector_cluster) throw configError(`${zp}.collector_cluster`, 'must not be empty');
  if (!z.collector_endpoint) throw configError(`${zp}.collector_endpoint`, 'must not be empty');
  if (z.collector_endpoint_version !== 'HTTP_JSON') throw configError(`${zp}.collector_endpoint_version`, `${z.collector_endpoint_version} is not supported (HTTP_JSON)`);
  const meta = plainStruct(ctx.node?.metadata);
  const settings: TracingSettings = {
    reporter: zipkinReporterFor({ cluster: z.collector_cluster, endpoint: z.collector_endpoint, hostname: z.collector_hostname || z.collector_cluster }, ctx.clusters, ctx.stats),
    kind: ctx.trafficDirection === 'OUTBOUND' ? 'CLIENT' : 'SERVER',
    sharedSpanContext: z.shared_span_context?.value ?? true,
    traceId128: z.trace_id_128bit === true,
    randomSampling: percent(c.random_sampling, 100),
    overallSampling: percent(c.overall_sampling, 100),
    maxPathTagLength: c.max_path_tag_length?.value ?? 256,
    serviceName: String(ctx.node?.cluster || (typeof meta.NAME === 'string' ? meta.NAME : '') || 'unknown'),
    nodeId: String(ctx.node?.id ?? ''),
    customTags: decodeCustomTags(c.custom_tags, `${path}.custom_tags`),
  };
  return { name: 'envoy.tracers.zipkin', terminal: false, create: () => new TracingFilter(settings) };
}

/** Per stream: the span's identity, set in decodeHeaders, recorded at completion. */
export class TracingFilter implements HttpFilter {
  private readonly settings: TracingSettings;
  private span: SpanContext | undefined;
  private shared = false;
  private startUs = 0;

  constructor(settings: TracingSettings) {
    this.settings = settings;
  }

  decodeHeaders(s: HttpStream): FilterStatus {
    const st = this.settings;
    const h = s.req.headers;
    const incoming = extractContext(h);
    let sampled = incoming?.sampled;
    if (sampled === undefined) sampled = Math.random() * 100 < st.randomSampling && Math.random() * 100 < st.overallSampling;
    const parent = incoming && 'traceId' in incoming ? incoming : undefined;
    let ctx: SpanContext;
    if (parent && st.kind === 'SERVER' && st.sharedSpanContext) {
      ctx = { traceId: parent.traceId, spanId: parent.spanId, parentId: parent.parentId, sampled };
      this.shared = true;
    } else ctx = { traceId: parent?.traceId ?? newTraceId(st.traceId128), spanId: newSpanId(), parentId: parent?.spanId, sampled };
    injectContext(h, ctx);
    if (sampled) {
      this.span = ctx;
      this.startUs = Math.round((performance.timeOrigin + s.startTime) * 1000);
    }
    return 'continue';
  }

  onStreamComplete(s: HttpStream): void {
    const ctx = this.span;
    if (!ctx) return;
    const st = this.settings;
    const req = s.req;
    const res = s.res;
    const h = req.headers;
    const status = res.headersSent ? res.statusCode : 0;
    const scheme = (h['x-forwarded-proto'] as string | undefined) ?? 'http';
    const one = (v: string | string[] | undefined): string => (Array.isArray(v) ? v[0] : v) ?? '-';
    const tags: Record<string, string> = {
      component: 'proxy',
      node_id: st.nodeId,
      guid: one(h['x-request-id'] as string | undefined),
      'http.url': `${scheme}://${s.host}${req.url ?? '/'}`.slice(0, st.maxPathTagLength),
      'http.method': req.method ?? 'GET',
      downstream_cluster: one(h['x-envoy-downstream-service-cluster']),
      user_agent: one(h['user-agent']),
      'http.protocol': req.httpVersionMajor === 2 ? 'HTTP/2' : `HTTP/${req.httpVersion}`,
      'peer.address': req.socket?.remoteAddress ?? '-',
      request_size: String(s.bytesReceived),
      response_size: String(s.bytesSent),
      response_flags: s.responseFlags || '-',
      'http.status_code': String(status),
    };
    if (s.upstreamCluster) {
      tags.upstream_cluster = s.upstreamCluster;
      tags['upstream_cluster.name'] = s.upstreamCluster;
    }
    if (s.upstreamHost) tags.upstream_address = s.upstreamHost;
    if (status >= 500 || status === 0) tags.error = 'true';
    for (const t of st.customTags) {
      const v = t.value(s);
      if (v !== undefined) tags[t.tag] = v;
    }
    const local = req.socket?.localAddress;
    const span: ZipkinSpan = {
      traceId: ctx.traceId,
      id: ctx.spanId,
      name: `${s.host}${s.path}`.slice(0, st.maxPathTagLength),
      kind: st.kind,
      timestamp: this.startUs,
      duration: Math.max(1, Math.round((performance.now() - s.startTime) * 1000)),
      localEndpoint: local && local.includes(':') ? { serviceName: st.serviceName, ipv6: local } : { serviceName: st.serviceName, ipv4: local },
      tags,
    };
    if (ctx.parentId) span.parentId = ctx.parentId;
    if (this.shared) span.shared = true;
    st.reporter.report(span);
  }
}
