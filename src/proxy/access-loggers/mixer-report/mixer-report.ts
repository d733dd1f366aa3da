// istio.mixer.report: finished requests reported to Mixer with Istio 1.4's
// Report API (istio.mixer.v1.Mixer/Report), as Istio's Mixer filter did:
// one attribute bag per request, batched, dictionary-encoded
// (src/xds/mixer-report.ts), sent asynchronously.
//
// Config (a TypedStruct with type_url
// `istio.mixer.v1.config.client.ReportConfig`, every field optional):
// `report_cluster` (Istio's policy cluster by default), `max_batch_entries`
// (1000), `flush_interval_ms` (1000), `max_buffered` (10 000),
// `max_message_bytes` (1 MiB), `max_inflight` (4 calls), `timeout_ms` (5000).
//
// On tcp_proxy (entries with `tcp` set) each entry is a TCP report
// (tcpReportBag): connection.event open / continue / close with the bytes
// since the connection's last report, as Istio 1.4's Mixer TCP filter sent.
//
// Never on the request's path: log(), at the end of a request, builds the
// bag (a Map of the same attributes Mixer derives from an ALS entry,
// src/mixer/envoy-attributes.ts) and writes it at once into the open
// ReportRequest (src/xds/mixer-report.ts's ReportEncoder: delta-encoded, at
// most max_batch_entries bags and max_message_bytes per message), so what
// waits is bytes, not bags. A flush (every flush_interval_ms, or as soon as
// a message is full) sends each message as one unary call. At most
// max_inflight calls are open; while they are, or while the cluster has no
// host, messages wait; past max_buffered bags new ones are dropped. A failed call (Mixer absent, slow past the timeout, rejecting)
// drops its bags: reports are not retried, as in Istio. Stats:
// `access_logs.mixer_report.{reports_sent,reports_dropped,report_calls,report_call_failures}`.

import type * as grpc from '@grpc/grpc-js';
import { ReportEncoder, mixerReportClient } from '../../../xds/index.ts';
import type { MixerReportClient, ReportBag, ReportValue } from '../../../xds/index.ts';
import type { AccessLogEntry, AccessLogger } from '../../access-log.ts';
import type { Counter } from '../../stats.ts';
import type { AccessLoggerExtension } from '../../registry.ts';
import type { ClusterManager } from '../../upstream/cluster-manager.ts';
import { plainStruct } from '../../config/typed-struct.ts';
import { configError } from '../../errors.ts';
import { filterMetadata } from '../../rbac/stream-metadata.ts';
import { tlsConnectionInfo } from '../../transport-sockets/tls/connection-info.ts';
import { selfAttributes } from '../../filters/http/mixer-attributes/mixer-attributes.ts';

export const MIXER_REPORT_TYPE_URL = 'type.googleapis.com/istio.mixer.v1.config.client.ReportConfig';
/** Istio's policy (Mixer) cluster, the default report_cluster. */
export const DEFAULT_REPORT_CLUSTER = 'outbound|9091||istio-policy.istio-system.svc.cluster.local';
const METADATA_NAMESPACE = 'istio.mixer';

export interface MixerReporterSettings {
  readonly cluster: string;
  readonly maxBatchEntries: number;
  readonly flushIntervalMs: number;
  readonly maxBuffered: number;
  readonly maxMessageBytes: number;
  readonly maxInflight: number;
  readonly timeoutMs: number;
}

export const DEFAULT_REPORTER_SETTINGS: MixerReporterSettings = Object.freeze({
  cluster: DEFAULT_REPORT_CLUSTER,
  maxBatchEntries: 1000,
  flushIntervalMs: 1000,
  maxBuffered: 10_000,
  maxMessageBytes: 1024 * 1024,
  maxInflight: 4,
  timeoutMs: 5000,
});

export interface MixerReporterStats {
  readonly sent: Counter;
  readonly dropped: Counter;
  readonly calls: Counter;
  readonly failures: Counter;
}

/** Attributes whose JS value does not say their wire type. */
const WIRE_TYPES: ReadonlyMap<string, string> = new Map([
  ['source.ip', 'IP_ADDRESS'],
  ['destination.ip', 'IP_ADDRESS'],
  ['response.duration', 'DURATION'],
  ['connection.duration', 'DURATION'],
]);
const typeOf = (name: string): string | undefined => WIRE_TYPES.get(name);

function stripMapped(ip: string): string {
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}

/**
 * Bags share what repeats between requests instead of building it again:
 * the empty maps, the maps of the istio.mixer metadata (one per frozen
 * object, so per source workload), and the parts below that depend on the
 * connection or the cluster only. Shared values also make delta encoding's
 * comparison with the previous bag an identity check. Bags and their
 * values are read-only (ReportBag), so sharing is safe.
 */
const EMPTY_MAP: ReadonlyMap<string, string> = new Map();

/** Bound of the small caches below: distinct content types and upstream clusters of one sidecar, a few in practice. */
const MAX_CACHED = 256;

function bounded<V>(cache: Map<string, V>, key: string, make: (key: string) => V): V {
  let v = cache.get(key);
  if (v === undefined && !cache.has(key)) {
    v = make(key);
    if (cache.size >= MAX_CACHED) cache.clear();
    cache.set(key, v);
  }
  return v as V;
}

function splitPath(path: string): { urlPath: string; query: ReadonlyMap<string, string> } {
  const q = path.indexOf('?');
  if (q < 0) return { urlPath: path, query: EMPTY_MAP };
  const query = new Map<string, string>();
  for (const [k, v] of new URLSearchParams(path.slice(q + 1))) if (!query.has(k)) query.set(k, v);
  return { urlPath: path.slice(0, q), query };
}

interface ServiceParts {
  readonly host: string;
  readonly name: string | undefined;
  readonly namespace: string | undefined;
}

/** destination.service.* of an Istio cluster name, `outbound|9080|v1|reviews.default.svc.cluster.local`; undefined for others. */
function serviceOfCluster(cluster: string): ServiceParts | undefined {
  const parts = cluster.split('|');
  const host = parts.length === 4 && parts[3] ? parts[3] : undefined;
  if (!host) return undefined;
  const [name, namespace] = host.split('.');
  return { host, name, namespace };
}
const servicesByCluster = new Map<string, ServiceParts | undefined>();

/** `request.headers` is only content-type: one map per value. */
const headersByContentType = new Map<string, ReadonlyMap<string, string>>();
const contentTypeHeaders = (ct: string): ReadonlyMap<string, string> => new Map([['content-type', ct]]);

/** What a connection contributes to each of its bags, computed once per socket. */
interface ConnectionParts {
  readonly sourceIp: string | undefined;
  readonly sourcePort: number | undefined;
  readonly destinationIp: string | undefined;
  readonly destinationPort: number | undefined;
  readonly tls: boolean;
  readonly peer: string | undefined;
  readonly peerNamespace: string | undefined;
}
const connectionParts = new WeakMap<object, ConnectionParts>();

function partsOf(socket: import('node:net').Socket | undefined): ConnectionParts {
  let c = socket && connectionParts.get(socket);
  if (c) return c;
  const tls = tlsConnectionInfo(socket);
  const peer = tls?.peerCertificatePresented ? tls.uriSanPeerCertificate[0] : undefined;
  c = {
    sourceIp: socket?.remoteAddress ? stripMapped(socket.remoteAddress) : undefined,
    sourcePort: socket?.remoteAddress ? socket.remotePort : undefined,
    destinationIp: socket?.localAddress ? stripMapped(socket.localAddress) : undefined,
    destinationPort: socket?.localAddress ? socket.localPort : undefined,
    tls: tls !== undefined,
    peer,
    peerNamespace: peer ? /\/ns\/([^/]+)\/sa\//.exec(peer)?.[1] : undefined,
  };
  // Node keeps a socket's addresses once read, and tlsConnectionInfo is per socket too: the parts
  // cannot change. Not kept when the addresses were unreadable (a socket already closed).
  if (socket && c.sourceIp !== undefined && c.destinationIp !== undefined) connectionParts.set(socket, c);
  return c;
}

/** STRING_MAP values of frozen metadata objects (source.labels), one map per object. */
const mapOfFrozen = new WeakMap<object, ReadonlyMap<string, string>>();

function toMap(v: Record<string, unknown>): Map<string, string> {
  const m = new Map<string, string>();
  for (const [k, mv] of Object.entries(v)) m.set(k, typeof mv === 'string' ? mv : JSON.stringify(mv));
  return m;
}

/** A value of the istio.mixer metadata as it goes on the wire (Mixer types it by its vocabulary). */
function metadataValue(v: unknown): ReportValue | undefined {
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  if (v instanceof Map) return v as ReadonlyMap<string, string>;
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    // The istio.mixer filter's objects are frozen and shared by every request of a source.
    if (!Object.isFrozen(v)) return toMap(v as Record<string, unknown>);
    let m = mapOfFrozen.get(v);
    if (!m) mapOfFrozen.set(v, (m = toMap(v as Record<string, unknown>)));
    return m;
  }
  return v === undefined || v === null ? undefined : JSON.stringify(v);
}

type Setter = (name: string, v: ReportValue | undefined) => void;

/** Addresses, the mTLS peer and the destination service: what HTTP and TCP bags share. */
function addConnectionAttributes(set: Setter, c: ConnectionParts, service: ServiceParts | undefined): void {
  if (c.sourceIp !== undefined) {
    set('source.ip', c.sourceIp);
    if (c.sourcePort) set('source.port', c.sourcePort);
  }
  if (c.destinationIp !== undefined) {
    set('destination.ip', c.destinationIp);
    if (c.destinationPort) set('destination.port', c.destinationPort);
  }
  if (service) {
    set('destination.service.host', service.host);
    set('destination.service.name', service.name);
    set('destination.service.namespace', service.namespace);
  }
  if (c.peer) {
    set('source.principal', c.peer);
    set('source.namespace', c.peerNamespace);
    set('connection.mtls', true);
  }
}

/**
 * The report bag of one finished request: the attributes Mixer derives from
 * an ALS entry (attributesFromAccessLog), built directly, then the
 * istio.mixer metadata on top.
 */
export function reportBag(e: AccessLogEntry, nodeId: string, reporterKind: string = reporterKindOf(nodeId)): ReportBag {
  const b = new Map<string, ReportValue>();
  const set = (name: string, v: ReportValue | undefined): void => {
    if (v !== undefined && v !== '') b.set(name, v);
  };
  const c = partsOf(e.socket);
  addConnectionAttributes(set, c, e.upstreamCluster ? bounded(servicesByCluster, e.upstreamCluster, serviceOfCluster) : undefined);
  const h = e.requestHeaders;
  const contentType = h?.['content-type'];
  const { urlPath, query } = splitPath(e.path);
  b.set('request.headers', typeof contentType === 'string' ? bounded(headersByContentType, contentType, contentTypeHeaders) : EMPTY_MAP);
  set('request.method', e.method);
  set('request.path', e.path);
  set('request.url_path', urlPath);
  b.set('request.query_params', query);
  set('request.host', e.authority);
  set('request.scheme', c.tls ? 'https' : 'http');
  set('request.id', e.requestId);
  set('request.useragent', e.userAgent);
  set('request.referer', typeof h?.referer === 'string' ? h.referer : undefined);
  b.set('request.size', e.bytesReceived);
  b.set('request.total_size', e.bytesReceived);
  b.set('response.code', e.status);
  b.set('response.size', e.bytesSent);
  b.set('response.total_size', e.bytesSent);
  b.set('response.headers', EMPTY_MAP);
  const start = new Date(e.startTime);
  b.set('request.time', start);
  b.set('response.duration', e.durationMs);
  b.set('response.time', new Date(e.startTime + e.durationMs));
  b.set('context.protocol', typeof contentType === 'string' && contentType.startsWith('application/grpc') ? 'grpc' : 'http');
  b.set('context.time', start);
  b.set('context.proxy_error_code', e.flags || '-');
  if (nodeId) set('context.reporter.uid', nodeId);
  b.set('context.reporter.kind', reporterKind);
  const meta = h ? filterMetadata(h, METADATA_NAMESPACE) : undefined;
  if (meta) {
    for (const name in meta) {
      const v = metadataValue(meta[name]);
      if (v !== undefined) b.set(name, v);
    }
  }
  return b;
}

function reporterKindOf(nodeId: string): string {
  return nodeId.split('~')[0] === 'router' ? 'outbound' : 'inbound';
}

/** What a logger keeps for its TCP bags: byte totals already reported per connection, and its own attributes. */
export interface TcpReportContext {
  readonly reported: WeakMap<object, { rx: number; tx: number }>;
  /** destination.* of this workload (inbound) from the bootstrap node: a TCP connection carries no istio.mixer metadata. */
  readonly self: Readonly<Record<string, unknown>>;
  /** destination.service.* of a cluster: Pilot's istio.services metadata (inbound clusters), else the outbound cluster name. */
  readonly serviceOf: (cluster: string) => ServiceParts | undefined;
}

/**
 * The report bag of one tcp_proxy entry, as Istio 1.4's Mixer TCP filter
 * reported: connection.event open / continue / close, bytes since the last
 * report and in all, the connection's duration so far.
 */
export function tcpReportBag(e: AccessLogEntry, nodeId: string, reporterKind: string, ctx: TcpReportContext): ReportBag {
  const b = new Map<string, ReportValue>();
  const set: Setter = (name, v) => {
    if (v !== undefined && v !== '') b.set(name, v);
  };
  addConnectionAttributes(set, partsOf(e.socket), e.upstreamCluster ? ctx.serviceOf(e.upstreamCluster) : undefined);
  const tcp = e.tcp!;
  const owner = e.socket ?? e;
  const last = ctx.reported.get(owner) ?? { rx: 0, tx: 0 };
  b.set('connection.id', tcp.connectionId);
  b.set('connection.event', tcp.event);
  b.set('connection.received.bytes', e.bytesReceived - last.rx);
  b.set('connection.received.bytes_total', e.bytesReceived);
  b.set('connection.sent.bytes', e.bytesSent - last.tx);
  b.set('connection.sent.bytes_total', e.bytesSent);
  b.set('connection.duration', e.durationMs);
  if (tcp.event === 'close') ctx.reported.delete(owner);
  else ctx.reported.set(owner, { rx: e.bytesReceived, tx: e.bytesSent });
  const now = new Date();
  b.set('context.protocol', 'tcp');
  b.set('context.time', now);
  b.set('context.proxy_error_code', e.flags || '-');
  if (nodeId) set('context.reporter.uid', nodeId);
  b.set('context.reporter.kind', reporterKind);
  for (const name in ctx.self) set(name, metadataValue(ctx.self[name]));
  return b;
}

/** One buffer and one channel per report cluster: every HCM's logger with the same target shares it. */
export class MixerReporter {
  private readonly encoder: ReportEncoder;
  private inflight = 0;
  private timer: NodeJS.Timeout | undefined;
  private scheduled = false;
  private closed = false;
  private client: MixerReportClient | undefined;
  private clientAddress = '';
  readonly clusters: ClusterManager;
  readonly settings: MixerReporterSettings;
  readonly stats: MixerReporterStats;

  constructor(clusters: ClusterManager, settings: MixerReporterSettings, stats: MixerReporterStats) {
    this.clusters = clusters;
    this.settings = settings;
    this.stats = stats;
    this.encoder = new ReportEncoder({ typeOf }, { maxBytes: settings.maxMessageBytes, maxBags: settings.maxBatchEntries });
  }

  /** Encodes one bag into the open message (the bag is not kept); never waits. */
  push(bag: ReportBag): void {
    if (this.closed || this.encoder.buffered >= this.settings.maxBuffered) {
      this.stats.dropped.value++;
      return;
    }
    if (!this.encoder.add(bag)) this.stats.dropped.value++; // larger than max_message_bytes alone
    if (this.encoder.ready) this.soon();
    else this.later();
  }

  /** Bags waiting to be sent. */
  get buffered(): number {
    return this.encoder.buffered;
  }

  private soon(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flush);
  }

  private later(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(this.flush, this.settings.flushIntervalMs);
    this.timer.unref();
  }

  readonly flush = (): void => {
    this.scheduled = false;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.closed) return;
    if (this.inflight < this.settings.maxInflight) this.encoder.finish();
    while (this.encoder.ready && this.inflight < this.settings.maxInflight) {
      const client = this.connect();
      if (!client) break; // no host yet: the timer below tries again; the bound protects memory
      for (const m of this.encoder.take(this.settings.maxInflight - this.inflight)) this.send(client, m.bytes, m.bags);
    }
    if (this.encoder.buffered > 0 && this.inflight < this.settings.maxInflight) this.later();
  };

  private send(client: MixerReportClient, bytes: Uint8Array, bags: number): void {
    this.inflight++;
    this.stats.calls.value++;
    client.Report(bytes, { deadline: Date.now() + this.settings.timeoutMs }, (err: grpc.ServiceError | null) => {
      this.inflight--;
      if (err) {
        this.stats.failures.value++;
        this.stats.dropped.value += bags;
      } else this.stats.sent.value += bags;
      if (this.encoder.ready) this.soon();
      else if (this.encoder.buffered > 0) this.later();
    });
  }

  private connect(): MixerReportClient | undefined {
    const host = this.clusters.get(this.settings.cluster)?.pickHost();
    if (!host) return undefined;
    const address = `${host.address}:${host.port}`;
    if (!this.client || this.clientAddress !== address) {
      this.client?.close();
      this.client = mixerReportClient(address);
      this.clientAddress = address;
    }
    return this.client;
  }

  close(): void {
    this.flush();
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    // What could not be sent now is lost.
    this.stats.dropped.value += this.encoder.buffered;
    this.encoder.finish();
    this.encoder.take();
    // Calls in flight finish on their own; the channel closes once they have.
    this.client?.close();
  }
}

/** Freezes an attribute object and its object values (labels), so bags share one map per value. */
function deepFreeze<T extends Record<string, unknown>>(o: T): T {
  for (const v of Object.values(o)) if (v && typeof v === 'object') Object.freeze(v);
  return Object.freeze(o);
}

function positive(c: Record<string, unknown>, field: string, path: string, fallback: number): number {
  const v = c[field];
  if (v === undefined || v === null) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw configError(`${path}.${field}`, `must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

/** The settings of a decoded config (a TypedStruct's value as a plain object); errors name the field. */
export function reporterSettings(config: unknown, path: string): MixerReporterSettings {
  const c = plainStruct((config ?? {}) as Record<string, any>) as Record<string, unknown>;
  const d = DEFAULT_REPORTER_SETTINGS;
  const cluster = c.report_cluster === undefined ? d.cluster : String(c.report_cluster);
  if (!cluster) throw configError(`${path}.report_cluster`, 'must not be empty');
  return {
    cluster,
    maxBatchEntries: positive(c, 'max_batch_entries', path, d.maxBatchEntries),
    flushIntervalMs: positive(c, 'flush_interval_ms', path, d.flushIntervalMs),
    maxBuffered: positive(c, 'max_buffered', path, d.maxBuffered),
    maxMessageBytes: positive(c, 'max_message_bytes', path, d.maxMessageBytes),
    maxInflight: positive(c, 'max_inflight', path, d.maxInflight),
    timeoutMs: positive(c, 'timeout_ms', path, d.timeoutMs),
  };
}

const reporters = new Map<string, MixerReporter>();

export const mixerReportExtension: AccessLoggerExtension = {
  typeUrl: MIXER_REPORT_TYPE_URL,
  category: 'access_log',
  create(config, ctx, path) {
    const settings = reporterSettings(config, path);
    const key = JSON.stringify(settings);
    let reporter = reporters.get(key);
    if (!reporter || reporter.clusters !== ctx.clusters) {
      reporter = new MixerReporter(ctx.clusters, settings, {
        sent: ctx.stats.counter('access_logs.mixer_report.reports_sent'),
        dropped: ctx.stats.counter('access_logs.mixer_report.reports_dropped'),
        calls: ctx.stats.counter('access_logs.mixer_report.report_calls'),
        failures: ctx.stats.counter('access_logs.mixer_report.report_call_failures'),
      });
      reporters.set(key, reporter);
    }
    const r = reporter;
    const nodeId = String(ctx.node?.id ?? '');
    const kind = reporterKindOf(nodeId);
    const clusters = ctx.clusters;
    const tcp: TcpReportContext = {
      reported: new WeakMap(),
      self: kind === 'inbound' ? deepFreeze(selfAttributes(ctx.node, 'destination')) : {},
      serviceOf: (name) => {
        const ref = clusters.get(name)?.config.istioServices?.[0];
        return ref ? { host: ref.host, name: ref.name, namespace: ref.namespace } : bounded(servicesByCluster, name, serviceOfCluster);
      },
    };
    const logger: AccessLogger = { log: (entry) => r.push(entry.tcp ? tcpReportBag(entry, nodeId, kind, tcp) : reportBag(entry, nodeId, kind)) };
    return { logger };
  },
};
