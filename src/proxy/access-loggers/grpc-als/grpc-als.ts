// envoy.access_loggers.http_grpc (config
// envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig): HTTP
// access log entries streamed to an ALS v3 server
// (envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs), the way
// Mixer receives its reports here.
//
// Never on the request's path: log() turns the finished request into a
// small HTTPAccessLogEntry object and appends it to a bounded in-memory
// buffer; nothing else happens until a flush. A flush (every
// `buffer_flush_interval`, default 1 s, or as soon as the buffer holds
// about `buffer_size_bytes`, default 16 KiB) sends the whole buffer as one
// StreamAccessLogsMessage on one long-lived stream per (cluster, log_name);
// the stream's first message carries the identifier (node, log_name).
// While the stream is unavailable (no host, connecting, HTTP/2 flow control
// pushing back, a broken stream being replaced) entries wait in the buffer;
// past MAX_BUFFERED entries new ones are dropped and counted. Stats, as
// Envoy: `access_logs.grpc_access_log.{logs_written,logs_dropped}`.
//
// Each entry carries common_properties.metadata.filter_metadata["istio.mixer"]
// (the attributes the istio.mixer filter found) when there are any.

import * as grpc from '@grpc/grpc-js';
import { TYPE_URL_PREFIX, loadXdsProtos } from '../../../xds/index.ts';
import type { AccessLogEntry, AccessLogger } from '../../access-log.ts';
import { configError } from '../../errors.ts';
import { durationMs } from '../../config/values.ts';
import type { Counter } from '../../stats.ts';
import type { AccessLoggerExtension } from '../../registry.ts';
import type { ClusterManager } from '../../upstream/cluster-manager.ts';
import { filterMetadata } from '../../rbac/stream-metadata.ts';
import { tlsConnectionInfo } from '../../transport-sockets/tls/connection-info.ts';

type D = Record<string, any>;

export const HTTP_GRPC_ACCESS_LOG_TYPE_URL = `${TYPE_URL_PREFIX}envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig`;
export const ACCESS_LOG_SERVICE = 'envoy.service.accesslog.v3.AccessLogService';
/** The most entries held while the stream cannot take them; more are dropped. */
export const MAX_BUFFERED = 10_000;
const METADATA_NAMESPACE = 'istio.mixer';
/** A rough size of one entry, for buffer_size_bytes. */
const ENTRY_BYTES = 400;

const FLAGS: Record<string, string> = {
  LH: 'failed_local_healthcheck', UH: 'no_healthy_upstream', UT: 'upstream_request_timeout', LR: 'local_reset', UR: 'upstream_remote_reset',
  UF: 'upstream_connection_failure', UC: 'upstream_connection_termination', UO: 'upstream_overflow', NR: 'no_route_found', DI: 'delay_injected',
  FI: 'fault_injected', RL: 'rate_limited', RLSE: 'rate_limit_service_error', DC: 'downstream_connection_termination', URX: 'upstream_retry_limit_exceeded',
  SI: 'stream_idle_timeout', IH: 'invalid_envoy_request_headers', DPE: 'downstream_protocol_error',
};

/** envoy.config.core.v3.RequestMethod numbers. */
const METHODS: Record<string, number> = { GET: 1, HEAD: 2, POST: 3, PUT: 4, DELETE: 5, CONNECT: 6, OPTIONS: 7, TRACE: 8, PATCH: 9 };
/** HTTPAccessLogEntry.HTTPVersion numbers. */
const HTTP10 = 1;
const HTTP11 = 2;
const HTTP2 = 3;
/** ResponseFlags.Unauthorized.Reason.EXTERNAL_SERVICE */
const EXTERNAL_SERVICE = 1;

// Entries are built ready for protobufjs's encode (numbers for enums and
// 64-bit integers, camelCase fields in google.protobuf types) and a batch is
// encoded in one call at flush: proto-loader's usual fromObject pass cost
// more than the encoding itself (see docs/mixer.md, "Cost").

function toValue(v: unknown): D {
  if (v === null || v === undefined) return { nullValue: 0 };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toValue) } };
  return { structValue: toStruct(v as Record<string, unknown>) };
}
function toStruct(o: Record<string, unknown>): D {
  const fields: D = {};
  for (const k in o) fields[k] = toValue(o[k]);
  return { fields };
}

function address(ip: string | undefined, port: number | undefined): D | undefined {
  return ip ? { socket_address: { address: ip.startsWith('::ffff:') ? ip.slice(7) : ip, port_value: port ?? 0 } } : undefined;
}

function timestamp(ms: number): D {
  return { seconds: Math.floor(ms / 1000), nanos: Math.floor((ms % 1000) * 1e6) };
}

function headersOf(h: Readonly<Record<string, string | string[] | undefined>> | undefined, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  for (const n of names) {
    const v = h[n];
    if (v !== undefined) out[n] = Array.isArray(v) ? v.join(',') : v;
  }
  return out;
}

/** One HTTPAccessLogEntry (snake_case, as the protos are loaded), ready for encode(). */
export function httpEntry(e: AccessLogEntry, requestHeaders: readonly string[], responseHeaders: readonly string[]): D {
  const socket = e.socket;
  const flags: D = {};
  for (const f of e.flags ? e.flags.split(',') : []) {
    if (FLAGS[f]) flags[FLAGS[f]] = true;
    else if (f === 'UAEX') flags.unauthorized_details = { reason: EXTERNAL_SERVICE };
  }
  const common: D = {
    downstream_remote_address: address(socket?.remoteAddress, socket?.remotePort),
    downstream_local_address: address(socket?.localAddress, socket?.localPort),
    start_time: timestamp(e.startTime),
    time_to_last_downstream_tx_byte: { seconds: Math.floor(e.durationMs / 1000), nanos: Math.round((e.durationMs % 1000) * 1e6) },
    upstream_cluster: e.upstreamCluster ?? '',
    response_flags: flags,
  };
  const tls = tlsConnectionInfo(socket);
  if (tls?.peerCertificatePresented) common.tls_properties = { peer_certificate_properties: { subject_alt_name: tls.uriSanPeerCertificate.map((uri) => ({ uri })) } };
  const meta = e.requestHeaders ? filterMetadata(e.requestHeaders, METADATA_NAMESPACE) : undefined;
  if (meta) common.metadata = { filter_metadata: { [METADATA_NAMESPACE]: toStruct(meta) } };
  const h = e.requestHeaders;
  const reqHeaders = headersOf(h, requestHeaders);
  const contentType = h?.['content-type'];
  if (typeof contentType === 'string') reqHeaders['content-type'] = contentType;
  const res = e.response;
  const resHeaders: Record<string, string> = {};
  for (const n of responseHeaders) {
    const v = res?.getHeader(n);
    if (v !== undefined) resHeaders[n] = Array.isArray(v) ? v.join(',') : String(v);
  }
  return {
    common_properties: common,
    protocol_version: e.protocol === 'HTTP/2' ? HTTP2 : e.protocol === 'HTTP/1.0' ? HTTP10 : HTTP11,
    request: {
      request_method: METHODS[e.method] ?? 0,
      scheme: tls ? 'https' : 'http',
      authority: e.authority ?? '',
      path: e.path,
      user_agent: e.userAgent ?? '',
      forwarded_for: e.forwardedFor ?? '',
      request_id: e.requestId ?? '',
      referer: typeof h?.referer === 'string' ? h.referer : '',
      request_body_bytes: e.bytesReceived,
      request_headers: reqHeaders,
    },
    response: {
      response_code: { value: e.status },
      response_body_bytes: e.bytesSent,
      response_headers: resHeaders,
    },
  };
}

let messageType: ReturnType<ReturnType<typeof loadXdsProtos>['lookupType']> | undefined;

/** A StreamAccessLogsMessage in its wire form: one encode() for the whole batch. */
export function encodeMessage(msg: D): Uint8Array {
  messageType ??= loadXdsProtos().root.lookupType('envoy.service.accesslog.v3.StreamAccessLogsMessage');
  return messageType.encode(msg).finish();
}

let encodedClient: grpc.ServiceClientConstructor | undefined;

/** The AccessLogService client whose StreamAccessLogs writes messages already encoded by encodeMessage. */
function preEncodedClient(): grpc.ServiceClientConstructor {
  if (!encodedClient) {
    const definition = loadXdsProtos().serviceDefinition(ACCESS_LOG_SERVICE);
    const method = definition.StreamAccessLogs!;
    const passThrough = (bytes: Uint8Array): Buffer => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    encodedClient = grpc.makeGenericClientConstructor({ StreamAccessLogs: { ...method, requestSerialize: passThrough } }, ACCESS_LOG_SERVICE);
  }
  return encodedClient;
}

interface StreamerStats {
  readonly written: Counter;
  readonly dropped: Counter;
}

/** One buffered stream per (cluster, log_name): every HCM's logger with the same target shares it. */
export class AlsStreamer {
  private buffer: D[] = [];
  private call: grpc.ClientWritableStream<Uint8Array> | undefined;
  private client: grpc.Client | undefined;
  private clientAddress = '';
  private waitingDrain = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly flushEntries: number;
  readonly stats: StreamerStats;

  private readonly cluster: string;
  private readonly logName: string;
  private readonly node: D;
  readonly clusters: ClusterManager;
  private readonly flushMs: number;

  constructor(cluster: string, logName: string, node: D, clusters: ClusterManager, flushMs: number, bufferBytes: number, stats: StreamerStats) {
    this.cluster = cluster;
    this.logName = logName;
    this.node = node;
    this.clusters = clusters;
    this.flushMs = flushMs;
    this.flushEntries = Math.max(1, Math.floor(bufferBytes / ENTRY_BYTES));
    this.stats = stats;
  }

  /** Queues one entry; O(1), never waits. */
  push(entry: D): void {
    if (this.closed || this.buffer.length >= MAX_BUFFERED) {
      this.stats.dropped.value++;
      return;
    }
    this.buffer.push(entry);
    if (this.buffer.length >= this.flushEntries) setImmediate(this.flush);
    else if (!this.timer) {
      this.timer = setTimeout(this.flush, this.flushMs);
      this.timer.unref();
    }
  }

  readonly flush = (): void => {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.buffer.length === 0 || this.waitingDrain || this.closed) return;
    const call = this.stream();
    if (!call) {
      // No host yet: try again later; the bound above protects memory.
      this.timer = setTimeout(this.flush, this.flushMs);
      this.timer.unref();
      return;
    }
    const batch = this.buffer;
    this.buffer = [];
    const first = !(call as { identified?: boolean }).identified;
    (call as { identified?: boolean }).identified = true;
    const msg: D = { http_logs: { log_entry: batch } };
    if (first) msg.identifier = { node: this.node, log_name: this.logName };
    const ok = call.write(encodeMessage(msg));
    this.stats.written.value += batch.length;
    if (!ok) {
      this.waitingDrain = true;
      call.once('drain', () => {
        this.waitingDrain = false;
        if (this.buffer.length > 0) setImmediate(this.flush);
      });
    }
  };

  private stream(): grpc.ClientWritableStream<Uint8Array> | undefined {
    if (this.call) return this.call;
    const host = this.clusters.get(this.cluster)?.pickHost();
    if (!host) return undefined;
    const address = `${host.address}:${host.port}`;
    if (!this.client || this.clientAddress !== address) {
      this.client?.close();
      this.client = new (preEncodedClient())(address, grpc.credentials.createInsecure(), {});
      this.clientAddress = address;
    }
    const call = (this.client as unknown as { StreamAccessLogs: (cb: (err: grpc.ServiceError | null) => void) => grpc.ClientWritableStream<Uint8Array> }).StreamAccessLogs(() => {
      // The server ended the stream (or it failed): the next flush opens another.
      if (this.call === call) this.call = undefined;
      this.waitingDrain = false;
    });
    call.on('error', () => {
      if (this.call === call) this.call = undefined;
      this.waitingDrain = false;
    });
    this.call = call;
    return call;
  }

  close(): void {
    this.flush();
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.call?.end();
    this.call = undefined;
    this.client?.close();
  }
}

const streamers = new Map<string, AlsStreamer>();

export const httpGrpcAccessLogExtension: AccessLoggerExtension = {
  typeUrl: HTTP_GRPC_ACCESS_LOG_TYPE_URL,
  category: 'access_log',
  create(config: D, ctx, path) {
    const c = config.common_config ?? {};
    const g = c.grpc_service;
    if (!g?.envoy_grpc?.cluster_name) throw configError(`${path}.common_config.grpc_service.envoy_grpc.cluster_name`, 'must not be empty (google_grpc is not supported)');
    if (!c.log_name) throw configError(`${path}.common_config.log_name`, 'must not be empty');
    const cluster = String(g.envoy_grpc.cluster_name);
    const logName = String(c.log_name);
    // Streamers are shared by target and per stats store (one proxy process normally has one).
    const key = `${cluster}\n${logName}`;
    let streamer = streamers.get(key);
    if (!streamer || streamer.clusters !== ctx.clusters) {
      const node = { id: String(ctx.node?.id ?? ''), cluster: String(ctx.node?.cluster ?? '') };
      const stats = { written: ctx.stats.counter('access_logs.grpc_access_log.logs_written'), dropped: ctx.stats.counter('access_logs.grpc_access_log.logs_dropped') };
      streamer = new AlsStreamer(cluster, logName, node, ctx.clusters, durationMs(c.buffer_flush_interval, 1000), Number(c.buffer_size_bytes?.value ?? 16384), stats);
      streamers.set(key, streamer);
    }
    const s = streamer;
    const reqHeaders: string[] = (config.additional_request_headers_to_log ?? []).map((x: string) => x.toLowerCase());
    const resHeaders: string[] = (config.additional_response_headers_to_log ?? []).map((x: string) => x.toLowerCase());
    const logger: AccessLogger = { log: (entry) => s.push(httpEntry(entry, reqHeaders, resHeaders)) };
    return { logger };
  },
};
