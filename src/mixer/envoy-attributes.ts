// Envoy's messages to attribute bags, at the edge: ext_authz v3
// CheckRequest, RLS v3 descriptors and ALS v3 HTTP access log entries become
// bags in Istio's vocabulary here, and nothing past this file sees protobuf.
//
// Attributes Envoy's messages have no field for travel as text, typed by the
// vocabulary: in CheckRequest `context_extensions` (key = attribute name), in
// `metadata_context.filter_metadata["istio.mixer"]` and in ALS
// `common_properties.metadata.filter_metadata["istio.mixer"]` (a Struct).

import type { AttributeValue, AttributeVocabulary } from '../api/index.ts';
import { canonicalIp, formatValue } from '../api/index.ts';
import { AttributeBag, parseAttributeText } from './attribute-bag.ts';

/** The filter_metadata namespace that carries extra attributes. */
export const MIXER_METADATA_NAMESPACE = 'istio.mixer';

type Msg = Record<string, any>;

// ---- google.protobuf.Struct / Value ----
// protobufjs defines the well-known types itself, with camelCase field names
// (`stringValue`), whatever keepCase says for Envoy's own messages.

export function toStructValue(v: unknown): Msg {
  if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toStructValue) } };
  return { structValue: toStruct(v as Record<string, unknown>) };
}

export function toStruct(obj: Readonly<Record<string, unknown>>): Msg {
  const fields: Record<string, Msg> = {};
  for (const [k, v] of Object.entries(obj)) fields[k] = toStructValue(v);
  return { fields };
}

export function fromStructValue(v: Msg | undefined): unknown {
  if (!v) return undefined;
  switch (v.kind) {
    case 'numberValue':
      return v.numberValue;
    case 'boolValue':
      return v.boolValue;
    case 'stringValue':
      return v.stringValue;
    case 'listValue':
      return (v.listValue?.values ?? []).map(fromStructValue);
    case 'structValue':
      return fromStruct(v.structValue);
    default:
      if (v.stringValue !== undefined && v.stringValue !== '') return v.stringValue;
      return undefined;
  }
}

export function fromStruct(s: Msg | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries((s?.fields ?? {}) as Record<string, Msg>)) out[k] = fromStructValue(v);
  return out;
}

/** A Struct value as an attribute of its declared type; undefined when it does not fit. */
function structAttribute(name: string, raw: unknown, vocabulary: AttributeVocabulary): AttributeValue | undefined {
  const type = vocabulary.typeOf(name) ?? 'STRING';
  try {
    if (type === 'STRING_MAP' && typeof raw === 'object' && raw !== null) return new Map(Object.entries(raw as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
    if ((type === 'INT64' || type === 'DOUBLE') && typeof raw === 'number') return raw;
    if (type === 'BOOL' && typeof raw === 'boolean') return raw;
    return parseAttributeText(name, type, typeof raw === 'string' ? raw : JSON.stringify(raw));
  } catch {
    return undefined;
  }
}

function extraAttributes(into: Record<string, AttributeValue | undefined>, metadata: Msg | undefined, vocabulary: AttributeVocabulary): void {
  const struct = metadata?.filter_metadata?.[MIXER_METADATA_NAMESPACE];
  if (!struct) return;
  for (const [name, raw] of Object.entries(fromStruct(struct))) {
    const v = structAttribute(name, raw, vocabulary);
    if (v !== undefined) into[name] = v;
  }
}

// ---- shared pieces ----

function socketAddress(address: Msg | undefined | null): { ip?: string; port?: number } {
  const sa = address?.socket_address;
  if (!sa) return {};
  return { ip: canonicalIp(String(sa.address ?? '')), port: sa.port_value === undefined || sa.port_value === 0 ? undefined : Number(sa.port_value) };
}

/** `spiffe://td/ns/<ns>/sa/<sa>` -> the namespace. */
function namespaceOfPrincipal(principal: string | undefined): string | undefined {
  const m = principal ? /\/ns\/([^/]+)\/sa\//.exec(principal) : null;
  return m?.[1];
}

function timestampOf(ts: Msg | undefined | null): Date | undefined {
  if (!ts) return undefined;
  return new Date(Number(ts.seconds ?? 0) * 1000 + Math.floor(Number(ts.nanos ?? 0) / 1e6));
}

function durationMsOf(d: Msg | undefined | null): number | undefined {
  if (!d) return undefined;
  return Number(d.seconds ?? 0) * 1000 + Number(d.nanos ?? 0) / 1e6;
}

function splitPath(path: string): { urlPath: string; query: Map<string, string> } {
  const q = path.indexOf('?');
  if (q < 0) return { urlPath: path, query: new Map() };
  const query = new Map<string, string>();
  for (const [k, v] of new URLSearchParams(path.slice(q + 1))) if (!query.has(k)) query.set(k, v);
  return { urlPath: path.slice(0, q), query };
}

function protocolOf(headers: ReadonlyMap<string, string>, fallback: string): string {
  const ct = headers.get('content-type') ?? '';
  if (ct.startsWith('application/grpc')) return 'grpc';
  return fallback.toLowerCase().startsWith('http') || fallback === '' ? 'http' : fallback.toLowerCase();
}

/** The destination host of an Istio cluster name, `outbound|9080|v1|reviews.default.svc.cluster.local`. */
function hostOfCluster(cluster: string): string | undefined {
  const parts = cluster.split('|');
  return parts.length === 4 && parts[3] ? parts[3] : undefined;
}

// ---- ext_authz v3 CheckRequest ----

/** The attributes of an ext_authz v3 CheckRequest (see the header for extras). */
export function attributesFromCheckRequest(request: Msg, vocabulary: AttributeVocabulary, now: number): AttributeBag {
  const a = request.attributes ?? {};
  const out: Record<string, AttributeValue | undefined> = {};
  const src = a.source ?? {};
  const dst = a.destination ?? {};
  const s = socketAddress(src.address);
  const d = socketAddress(dst.address);
  out['source.ip'] = s.ip;
  out['source.port'] = s.port;
  out['destination.ip'] = d.ip;
  out['destination.port'] = d.port;
  if (src.principal) out['source.principal'] = src.principal;
  if (dst.principal) out['destination.principal'] = dst.principal;
  out['source.namespace'] = namespaceOfPrincipal(src.principal);
  if (src.labels && Object.keys(src.labels).length > 0) out['source.labels'] = new Map(Object.entries(src.labels as Record<string, string>));
  if (dst.labels && Object.keys(dst.labels).length > 0) out['destination.labels'] = new Map(Object.entries(dst.labels as Record<string, string>));
  if (dst.service) {
    out['destination.service.host'] = dst.service;
    const [name, ns] = String(dst.service).split('.');
    out['destination.service.name'] = name;
    out['destination.service.namespace'] = ns;
    out['destination.namespace'] = ns;
  }
  if (src.service) out['source.name'] = String(src.service).split('.')[0];
  const http = a.request?.http;
  if (http) {
    const headers = new Map<string, string>();
    for (const [k, v] of Object.entries((http.headers ?? {}) as Record<string, string>)) headers.set(k.toLowerCase(), v);
    for (const h of (http.header_map?.headers ?? []) as Msg[]) headers.set(String(h.key).toLowerCase(), h.value ?? Buffer.from(h.raw_value ?? []).toString());
    const path = http.path || headers.get(':path') || '';
    const { urlPath, query } = splitPath(http.query ? `${path.split('?')[0]}?${http.query}` : path);
    out['request.headers'] = headers;
    out['request.id'] = http.id || headers.get('x-request-id');
    out['request.method'] = http.method || headers.get(':method');
    out['request.path'] = path || undefined;
    out['request.url_path'] = urlPath || undefined;
    out['request.query_params'] = query;
    out['request.host'] = http.host || headers.get(':authority') || headers.get('host');
    out['request.scheme'] = http.scheme || undefined;
    out['request.size'] = http.size !== undefined && Number(http.size) >= 0 ? Number(http.size) : undefined;
    out['request.useragent'] = headers.get('user-agent');
    out['request.referer'] = headers.get('referer');
    out['context.protocol'] = protocolOf(headers, String(http.protocol ?? ''));
  } else {
    out['context.protocol'] = 'tcp';
  }
  out['request.time'] = timestampOf(a.request?.time) ?? new Date(now);
  out['context.time'] = new Date(now);
  if (a.tls_session?.sni) out['connection.requested_server_name'] = a.tls_session.sni;
  out['connection.mtls'] = Boolean(src.principal);
  extraAttributes(out, a.metadata_context, vocabulary);
  for (const [name, text] of Object.entries((a.context_extensions ?? {}) as Record<string, string>)) {
    const type = vocabulary.typeOf(name);
    if (!type) continue;
    try {
      out[name] = parseAttributeText(name, type, text);
    } catch {
      // A malformed extension is dropped: the request is judged without it.
    }
  }
  return AttributeBag.of(out);
}

// ---- RLS v3 descriptors ----

/** The descriptor entry key that names the quota instance to charge. */
export const QUOTA_DESCRIPTOR_KEY = 'quota';

/**
 * One RLS descriptor as (quota name, bag): entries whose key is an attribute
 * name become attributes (typed by the vocabulary); `quota` names the quota
 * instance; `destination.service.host` etc. select QuotaSpecs otherwise.
 */
export function attributesFromDescriptor(entries: readonly Msg[], vocabulary: AttributeVocabulary, base: Record<string, AttributeValue | undefined>): { quota?: string; bag: AttributeBag } {
  const out: Record<string, AttributeValue | undefined> = { ...base };
  let quota: string | undefined;
  for (const e of entries) {
    const key = String(e.key ?? '');
    const value = String(e.value ?? '');
    if (key === QUOTA_DESCRIPTOR_KEY) {
      quota = value;
      continue;
    }
    // `source.labels.version` style keys address one entry of a map attribute.
    const dot = key.lastIndexOf('.');
    if (!vocabulary.has(key) && dot > 0 && vocabulary.typeOf(key.slice(0, dot)) === 'STRING_MAP') {
      const mapName = key.slice(0, dot);
      const existing = out[mapName] instanceof Map ? new Map(out[mapName] as Map<string, string>) : new Map<string, string>();
      existing.set(key.slice(dot + 1), value);
      out[mapName] = existing;
      continue;
    }
    const type = vocabulary.typeOf(key);
    if (!type) continue;
    try {
      out[key] = parseAttributeText(key, type, value);
    } catch {
      // ignored, as a malformed extension is
    }
  }
  return { quota, bag: AttributeBag.of(out) };
}

// ---- ALS v3 HTTP access log entries ----

/** envoy.config.core.v3.RequestMethod by number (raw decoded messages carry enum numbers). */
const METHOD_NAMES = ['', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];

function methodName(m: unknown): string | undefined {
  if (typeof m === 'number') return METHOD_NAMES[m] || undefined;
  return m && m !== 'METHOD_UNSPECIFIED' ? String(m) : undefined;
}

/**
 * The attributes of one ALS v3 HTTPAccessLogEntry (report path), as
 * proto-loader's object (enums as names, 64-bit integers as strings) or as
 * protobufjs decoded it (enum numbers, Long).
 */
export function attributesFromAccessLog(entry: Msg, identifier: Msg | undefined, vocabulary: AttributeVocabulary): AttributeBag {
  const c = entry.common_properties ?? {};
  const req = entry.request ?? {};
  const res = entry.response ?? {};
  const out: Record<string, AttributeValue | undefined> = {};
  const s = socketAddress(c.downstream_remote_address);
  const d = socketAddress(c.upstream_remote_address ?? c.downstream_local_address);
  out['source.ip'] = s.ip;
  out['source.port'] = s.port;
  out['destination.ip'] = d.ip;
  out['destination.port'] = d.port;
  const host = hostOfCluster(String(c.upstream_cluster ?? ''));
  if (host) {
    out['destination.service.host'] = host;
    const [name, ns] = host.split('.');
    out['destination.service.name'] = name;
    out['destination.service.namespace'] = ns;
  }
  const peerSan = (c.tls_properties?.peer_certificate_properties?.subject_alt_name ?? []) as Msg[];
  const peerUri = peerSan.find((n) => n.uri)?.uri;
  if (peerUri) {
    out['source.principal'] = peerUri;
    out['source.namespace'] = namespaceOfPrincipal(peerUri);
    out['connection.mtls'] = true;
  }
  const headers = new Map<string, string>();
  for (const [k, v] of Object.entries((req.request_headers ?? {}) as Record<string, string>)) headers.set(k.toLowerCase(), v);
  const path = String(req.path ?? '');
  const { urlPath, query } = splitPath(path);
  out['request.headers'] = headers;
  out['request.method'] = methodName(req.request_method);
  out['request.path'] = path || undefined;
  out['request.url_path'] = urlPath || undefined;
  out['request.query_params'] = query;
  out['request.host'] = req.authority || undefined;
  out['request.scheme'] = req.scheme || undefined;
  out['request.id'] = req.request_id || undefined;
  out['request.useragent'] = req.user_agent || undefined;
  out['request.referer'] = req.referer || undefined;
  out['request.size'] = req.request_body_bytes === undefined ? undefined : Number(req.request_body_bytes);
  out['request.total_size'] = Number(req.request_headers_bytes ?? 0) + Number(req.request_body_bytes ?? 0);
  const code = res.response_code?.value;
  out['response.code'] = code === undefined || code === null ? undefined : Number(code);
  out['response.size'] = res.response_body_bytes === undefined ? undefined : Number(res.response_body_bytes);
  out['response.total_size'] = Number(res.response_headers_bytes ?? 0) + Number(res.response_body_bytes ?? 0);
  const responseHeaders = new Map<string, string>();
  for (const [k, v] of Object.entries((res.response_headers ?? {}) as Record<string, string>)) responseHeaders.set(k.toLowerCase(), v);
  out['response.headers'] = responseHeaders;
  const start = timestampOf(c.start_time);
  out['request.time'] = start;
  const duration = durationMsOf(c.duration) ?? durationMsOf(c.time_to_last_downstream_tx_byte);
  out['response.duration'] = duration;
  if (start && duration !== undefined) out['response.time'] = new Date(start.getTime() + duration);
  out['context.protocol'] = protocolOf(headers, 'http');
  out['context.time'] = start;
  out['context.proxy_error_code'] = responseFlagsText(c.response_flags);
  const node = identifier?.node;
  if (node?.id) out['context.reporter.uid'] = String(node.id);
  const kind = node?.id ? String(node.id).split('~')[0] : undefined;
  out['context.reporter.kind'] = kind === 'router' ? 'outbound' : 'inbound';
  extraAttributes(out, c.metadata, vocabulary);
  return AttributeBag.of(out);
}

const FLAG_NAMES: [string, string][] = [
  ['failed_local_healthcheck', 'LH'], ['no_healthy_upstream', 'UH'], ['upstream_request_timeout', 'UT'], ['local_reset', 'LR'],
  ['upstream_remote_reset', 'UR'], ['upstream_connection_failure', 'UF'], ['upstream_connection_termination', 'UC'],
  ['upstream_overflow', 'UO'], ['no_route_found', 'NR'], ['delay_injected', 'DI'], ['fault_injected', 'FI'], ['rate_limited', 'RL'],
  ['rate_limit_service_error', 'RLSE'], ['downstream_connection_termination', 'DC'], ['upstream_retry_limit_exceeded', 'URX'],
  ['stream_idle_timeout', 'SI'], ['invalid_envoy_request_headers', 'IH'], ['downstream_protocol_error', 'DPE'],
];

/** Envoy's response flags as its access log prints them (`UH,UF`), or `-`. */
function responseFlagsText(flags: Msg | undefined | null): string {
  if (!flags) return '-';
  const out = FLAG_NAMES.filter(([field]) => flags[field] === true).map(([, short]) => short);
  if (flags.unauthorized_details) out.push('UAEX');
  return out.length > 0 ? out.join(',') : '-';
}

/** Attributes as the text map the client puts into context_extensions / Struct metadata. */
export function attributesAsText(bag: AttributeBag): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of bag.names()) out[name] = formatValue(bag.get(name)!);
  return out;
}
