// The HTTP connection manager (envoy.filters.network.http_connection_manager)
// on HTTP/1.1: the raw-socket codec (http1-server-codec.ts; or node:http
// with MESH_PROXY_HTTP1_DOWNSTREAM=node) parses (keep-alive, chunked,
// header limits -> 431), this module selects the route once per request on the route table current
// at that moment, runs the HTTP filter chain and accounts stats and access
// logs. One instance per listener config version: connections keep the
// instance they were accepted on until they drain.

import { createServer, ServerResponse } from 'node:http';
import type { IncomingMessage, OutgoingHttpHeaders, Server } from 'node:http';
import type { Http2Server, ServerHttp2Session } from 'node:http2';
import { env } from '../../../../common/index.ts';
import type { Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { TypeUrl } from '../../../../xds/index.ts';
import type { Route, RouteTable, VirtualHost } from '../../../config/route-config.ts';
import { matchRoute } from '../../../config/route-config.ts';
import type { FactoryContext, NetworkFilterExtension, NetworkFilterFactory } from '../../../registry.ts';
import type { Counter, Gauge, StatsStore } from '../../../stats.ts';
import type { FilterStatus, HttpFilter, HttpStream } from '../../http/http-filter.ts';
import type { HcmSettings } from './hcm-settings.ts';
import { decodeHcmSettings } from './hcm-settings.ts';
import { applyXfcc } from './xfcc.ts';
import { createHttp2Codec, detectCodec } from './codec.ts';
import type { Http1ServerHandlers, Http1ServerOptions } from './http1-server-codec.ts';
import { serveHttp1 } from './http1-server-codec.ts';
import { isGrpcRequest, sendGrpcLocalReply } from '../../../http/grpc.ts';
import type { UpgradeRequest } from '../../../http/upgrade.ts';
import { upgradeAllowed } from '../../../http/upgrade.ts';

interface HcmStats {
  downstream_cx_total: Counter;
  downstream_cx_active: Gauge;
  downstream_rq_total: Counter;
  downstream_rq_active: Gauge;
  downstream_rq_1xx: Counter;
  downstream_rq_2xx: Counter;
  downstream_rq_3xx: Counter;
  downstream_rq_4xx: Counter;
  downstream_rq_5xx: Counter;
  no_route: Counter;
  rq_direct_response: Counter;
  rq_redirect: Counter;
  downstream_rq_header_overflow: Counter;
  downstream_cx_http1_total: Counter;
  downstream_cx_http2_total: Counter;
  downstream_cx_upgrades_total: Counter;
  downstream_cx_upgrades_active: Gauge;
}

const HEADER_OVERFLOW_REPLY = 'HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 31\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nRequest Header Fields Too Large';
const BAD_REQUEST_REPLY = 'HTTP/1.1 400 Bad Request\r\ncontent-length: 11\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nBad Request';
const TIMEOUT_REPLY = 'HTTP/1.1 408 Request Timeout\r\ncontent-length: 15\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nRequest Timeout';

/**
 * HTTP/1.1 downstreams use the raw-socket codec (http1-server-codec.ts)
 * unless MESH_PROXY_HTTP1_DOWNSTREAM=node asks for node:http's server.
 */
const RAW_HTTP1 = env('MESH_PROXY_HTTP1_DOWNSTREAM') !== 'node';

export class HttpConnectionManager implements NetworkFilterFactory, Http1ServerHandlers {
  readonly settings: HcmSettings;
  readonly stats: HcmStats;
  private readonly context: FactoryContext;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  draining = false;
  private drainTimer: NodeJS.Timeout | undefined;
  /** The HTTP/2 codec (codec_type AUTO or HTTP2) and its live sessions. */
  private readonly h2Server: Http2Server | undefined;
  private readonly h2Sessions = new Set<ServerHttp2Session>();
  private readonly http1Options: Http1ServerOptions;

  constructor(settings: HcmSettings, context: FactoryContext) {
    this.settings = settings;
    this.context = context;
    this.stats = hcmStats(context.stats, settings.statPrefix);
    this.server = createServer(
      {
        maxHeaderSize: settings.maxRequestHeadersKb * 1024,
        keepAliveTimeout: settings.idleTimeoutMs,
        requestTimeout: 0,
        // Envoy forwards Host as given; node must not reject requests without one.
        requireHostHeader: false,
      },
      (req, res) => this.onRequest(req, res),
    );
    this.server.headersTimeout = settings.requestHeadersTimeoutMs;
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.onParseError(err, socket));
    this.http1Options = { maxHeadBytes: settings.maxRequestHeadersKb * 1024, idleTimeoutMs: settings.idleTimeoutMs, headersTimeoutMs: settings.requestHeadersTimeoutMs };
    // Upgrades (WebSocket, ...) and CONNECT leave node's parser with the raw socket.
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.onUpgrade(req, socket, head));
    this.server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => this.onUpgrade(req, socket, head));
    if (settings.codecType !== 'HTTP1') {
      // The compat request/response mirror node:http's (see codec.ts).
      this.h2Server = createHttp2Codec(settings, this.h2Sessions, (req, res) => this.onRequest(req as unknown as IncomingMessage, res as unknown as ServerResponse));
    }
  }

  get rdsNames(): readonly string[] {
    return this.settings.rdsName ? [this.settings.rdsName] : [];
  }

  get activeConnections(): number {
    return this.sockets.size;
  }

  onConnection(socket: Socket): void {
    this.stats.downstream_cx_total.value++;
    this.stats.downstream_cx_active.value++;
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.once('close', () => {
      this.stats.downstream_cx_active.value--;
      this.sockets.delete(socket);
    });
    if (this.settings.codecType === 'HTTP1') this.onHttp1Connection(socket);
    else if (this.settings.codecType === 'HTTP2') this.onHttp2Connection(socket);
    else detectCodec(socket, this.onHttp1Connection, this.onHttp2Connection);
  }

  private readonly onHttp1Connection = (socket: Socket): void => {
    this.stats.downstream_cx_http1_total.value++;
    if (RAW_HTTP1) serveHttp1(socket, this, this.http1Options);
    else this.server.emit('connection', socket);
  };

  /** A request either HTTP/1.1 codec refused: 431 for oversized headers, 408 for a slow head, else 400; then close. */
  onParseError(err: NodeJS.ErrnoException, socket: Socket): void {
    if (!socket.writable) return void socket.destroy();
    if (err.code === 'HPE_HEADER_OVERFLOW') {
      this.stats.downstream_rq_header_overflow.value++;
      this.stats.downstream_rq_4xx.value++;
      socket.end(HEADER_OVERFLOW_REPLY);
    } else if (err.code === 'HPE_HEADERS_TIMEOUT') socket.end(TIMEOUT_REPLY);
    else if (err.code === 'ECONNRESET') socket.destroy();
    else socket.end(BAD_REQUEST_REPLY);
  }

  private readonly onHttp2Connection = (socket: Socket): void => {
    this.stats.downstream_cx_http2_total.value++;
    this.h2Server!.emit('connection', socket);
  };

  /**
   * An Upgrade or CONNECT request: it runs the filter chain like any other,
   * with a response bound to the raw socket; the router relays the upgraded
   * bytes (http/upgrade.ts). `Upgrade: h2c` is ignored, as Envoy does: the
   * request is served over HTTP/1.1 and the connection then closes.
   */
  onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const type = req.method === 'CONNECT' ? 'connect' : String(req.headers.upgrade ?? '').toLowerCase();
    const res = new ServerResponse(req);
    res.assignSocket(socket);
    res.shouldKeepAlive = false;
    if (type === 'h2c') {
      delete req.headers.upgrade;
      delete req.headers['http2-settings'];
      res.once('finish', () => socket.end());
      this.onRequest(req, res);
      return;
    }
    const upgrade: UpgradeRequest = { type, socket, head, established: false };
    // A local reply (403, 404, 503...) ends the connection: no parser is left to read another request.
    res.once('finish', () => {
      if (!upgrade.established) socket.end();
    });
    this.stats.downstream_cx_upgrades_total.value++;
    this.stats.downstream_cx_upgrades_active.value++;
    socket.once('close', () => this.stats.downstream_cx_upgrades_active.value--);
    this.onRequest(req, res, upgrade);
  }

  drain(): void {
    if (this.draining) return;
    this.draining = true;
    // Responses from now on carry `connection: close`; idle keep-alive
    // connections get until drain_timeout to send one last request.
    this.drainTimer = setTimeout(() => this.close(), this.settings.drainTimeoutMs);
    this.drainTimer.unref();
    // HTTP/2: GOAWAY now; open streams finish.
    for (const session of this.h2Sessions) session.close();
  }

  close(): void {
    if (this.drainTimer) clearTimeout(this.drainTimer);
    this.server.closeAllConnections();
    for (const session of this.h2Sessions) session.destroy();
    for (const s of this.sockets) s.destroy();
  }

  routeTable(): RouteTable | undefined {
    return this.settings.routeTable ?? this.context.routes.get(this.settings.rdsName!);
  }

  onRequest(req: IncomingMessage, res: ServerResponse, upgrade?: UpgradeRequest): void {
    const stats = this.stats;
    stats.downstream_rq_total.value++;
    stats.downstream_rq_active.value++;
    const startTime = performance.now();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const query = q < 0 ? '' : url.slice(q + 1);
    const headers = req.headers;
    // HTTP/2 carries the host in :authority; filters and HTTP/1.1 upstreams read `host`.
    if (req.httpVersionMajor === 2 && headers[':authority'] !== undefined) headers.host = headers[':authority'] as string;
    let host = (headers.host ?? '').toLowerCase();
    if (this.settings.stripAnyHostPort) host = stripPort(host);
    if (this.settings.generateRequestId && !headers['x-request-id']) headers['x-request-id'] = randomUUID();
    applyXfcc(headers, req.socket, this.settings.xfcc);
    if (this.settings.useRemoteAddress) {
      const remote = req.socket.remoteAddress ?? '';
      const xff = headers['x-forwarded-for'];
      headers['x-forwarded-for'] = xff ? `${xff}, ${remote}` : remote;
      headers['x-forwarded-proto'] = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
    } else if (!headers['x-forwarded-proto']) headers['x-forwarded-proto'] = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
    if (this.draining) res.shouldKeepAlive = false;
    res.setHeader('server', this.settings.serverName);

    const table = this.routeTable();
    const vh = table?.selectVirtualHost(host);
    const route = vh ? matchRoute(vh, path, query, headers, req.method) : undefined;
    const stream = new Stream(this, req, res, path, query, host, table!, vh!, route!, startTime);
    if (!route) {
      stats.no_route.value++;
      stream.sendLocalReply(404, '', 'NR');
      return;
    }
    if (upgrade) {
      stream.upgrade = upgrade;
      // Envoy: an upgrade neither the route nor the HCM enables is refused with 403.
      if (!upgradeAllowed(upgrade.type, route, this.settings.upgrades)) {
        stream.sendLocalReply(403, '');
        return;
      }
    }
    stream.filters = this.settings.filters.map((f) => f.create());
    if (this.settings.streamTimeouts) stream.filters.unshift(this.settings.streamTimeouts.create());
    if (this.settings.tracing) stream.filters.unshift(this.settings.tracing.create());
    stream.continueDecoding();
  }
}

function stripPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end < 0 ? host : host.slice(0, end + 1);
  }
  const colon = host.lastIndexOf(':');
  return colon < 0 ? host : host.slice(0, colon);
}

function hcmStats(store: StatsStore, prefix: string): HcmStats {
  const p = store.scope('http', prefix);
  const c = (n: string): Counter => store.counter(p + n);
  return {
    downstream_cx_total: c('downstream_cx_total'),
    downstream_cx_active: store.gauge(`${p}downstream_cx_active`),
    downstream_rq_total: c('downstream_rq_total'),
    downstream_rq_active: store.gauge(`${p}downstream_rq_active`),
    downstream_rq_1xx: c('downstream_rq_1xx'),
    downstream_rq_2xx: c('downstream_rq_2xx'),
    downstream_rq_3xx: c('downstream_rq_3xx'),
    downstream_rq_4xx: c('downstream_rq_4xx'),
    downstream_rq_5xx: c('downstream_rq_5xx'),
    no_route: c('no_route'),
    rq_direct_response: c('rq_direct_response'),
    rq_redirect: c('rq_redirect'),
    downstream_rq_header_overflow: c('downstream_rq_header_overflow'),
    downstream_cx_http1_total: c('downstream_cx_http1_total'),
    downstream_cx_http2_total: c('downstream_cx_http2_total'),
    downstream_cx_upgrades_total: c('downstream_cx_upgrades_total'),
    downstream_cx_upgrades_active: store.gauge(`${p}downstream_cx_upgrades_active`),
  };
}

/** Per-request state; one object per request, no promise chains. */
class Stream implements HttpStream {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly path: string;
  readonly query: string;
  readonly host: string;
  readonly routeTable: RouteTable;
  readonly virtualHost: VirtualHost;
  readonly route: Route;
  readonly startTime: number;
  readonly hcm: HttpConnectionManager;
  upgrade: UpgradeRequest | undefined;
  upstreamHost = '';
  upstreamCluster = '';
  bytesSent = 0;
  filters: HttpFilter[] = [];
  private next = 0;
  private flags = '';
  private finished = false;
  bytesReceived = 0;

  constructor(hcm: HttpConnectionManager, req: IncomingMessage, res: ServerResponse, path: string, query: string, host: string, table: RouteTable, vh: VirtualHost, route: Route, startTime: number) {
    this.hcm = hcm;
    this.req = req;
    this.res = res;
    this.path = path;
    this.query = query;
    this.host = host;
    this.routeTable = table;
    this.virtualHost = vh;
    this.route = route;
    this.startTime = startTime;
    const originalPath = req.headers['x-envoy-original-path'] ?? req.url ?? '/';
    const method = req.method ?? 'GET';
    // Bytes received are counted by the filter that reads the body (the
    // router): a 'data' listener here would start the flow before a filter
    // that pauses (a fault delay) is done, and the body would be lost.
    res.once('close', () => this.onDone(String(originalPath), method));
  }

  get ended(): boolean {
    return this.finished || this.res.writableEnded || this.res.destroyed;
  }

  addResponseFlag(flag: string): void {
    this.flags = this.flags ? `${this.flags},${flag}` : flag;
  }

  get responseFlags(): string {
    return this.flags;
  }

  encodeHeaders(status: number, headers: OutgoingHttpHeaders): void {
    const filters = this.filters;
    for (let i = filters.length - 1; i >= 0; i--) filters[i].encodeHeaders?.(this, status, headers);
  }

  continueDecoding(): void {
    while (this.next < this.filters.length) {
      if (this.ended) return;
      const status: FilterStatus = this.filters[this.next++].decodeHeaders(this);
      if (status === 'stop') return;
    }
  }

  sendLocalReply(status: number, body: string, flag?: string): void {
    if (flag) this.addResponseFlag(flag);
    const res = this.res;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // gRPC clients get a trailers-only reply with the status mapped, as Envoy sends.
    if (isGrpcRequest(this.req.headers)) {
      sendGrpcLocalReply(this.req, res, status, body);
      if (!this.req.complete) this.req.resume();
      return;
    }
    const headers: Record<string, string | number> = { 'content-length': Buffer.byteLength(body) };
    if (body) headers['content-type'] = 'text/plain';
    res.writeHead(status, headers);
    res.end(body);
    this.bytesSent += Buffer.byteLength(body);
    // Envoy replies before the request body is read; drain it so keep-alive works.
    if (!this.req.complete) this.req.resume();
  }

  private onDone(path: string, method: string): void {
    if (this.finished) return;
    this.finished = true;
    for (const f of this.filters) f.onDestroy?.();
    const stats = this.hcm.stats;
    stats.downstream_rq_active.value--;
    const res = this.res;
    const status = res.headersSent ? res.statusCode : 0;
    if (!res.writableFinished && !this.flags.includes('D')) this.addResponseFlag('DC');
    const klass = Math.floor(status / 100);
    if (klass === 2) stats.downstream_rq_2xx.value++;
    else if (klass === 5) stats.downstream_rq_5xx.value++;
    else if (klass === 4) stats.downstream_rq_4xx.value++;
    else if (klass === 3) stats.downstream_rq_3xx.value++;
    else if (klass === 1) stats.downstream_rq_1xx.value++;
    for (const f of this.filters) f.onStreamComplete?.(this);
    const loggers = this.hcm.settings.accessLoggers;
    if (loggers.length === 0) return;
    const h = this.req.headers;
    const entry = {
      startTime: performance.timeOrigin + this.startTime,
      method,
      path,
      protocol: this.req.httpVersionMajor === 2 ? 'HTTP/2' : `HTTP/${this.req.httpVersion}`,
      status,
      flags: this.flags,
      bytesReceived: this.bytesReceived,
      bytesSent: this.bytesSent,
      durationMs: Math.round(performance.now() - this.startTime),
      upstreamServiceTime: res.getHeader('x-envoy-upstream-service-time') as string | undefined,
      forwardedFor: h['x-forwarded-for'] as string | undefined,
      userAgent: h['user-agent'],
      requestId: h['x-request-id'] as string | undefined,
      authority: h.host,
      upstreamHost: this.upstreamHost,
      upstreamCluster: this.upstreamCluster,
      requestHeaders: h,
      response: res,
      socket: this.req.socket,
      routeName: this.route?.name,
    };
    for (const l of loggers) l.log(entry);
  }
}

export const httpConnectionManagerExtension: NetworkFilterExtension = {
  typeUrl: TypeUrl.HttpConnectionManager,
  category: 'network',
  create(config, context, path) {
    return new HttpConnectionManager(decodeHcmSettings(config, context, path), context);
  },
};
