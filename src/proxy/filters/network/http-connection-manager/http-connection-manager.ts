// The HTTP connection manager (envoy.filters.network.http_connection_manager)
// on HTTP/1.1: node:http parses (keep-alive, chunked, header limits -> 431),
// this module selects the route once per request on the route table current
// at that moment, runs the HTTP filter chain and accounts stats and access
// logs. One instance per listener config version: connections keep the
// instance they were accepted on until they drain.

import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
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
}

const HEADER_OVERFLOW_REPLY = 'HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 31\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nRequest Header Fields Too Large';
const BAD_REQUEST_REPLY = 'HTTP/1.1 400 Bad Request\r\ncontent-length: 11\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nBad Request';

export class HttpConnectionManager implements NetworkFilterFactory {
  readonly settings: HcmSettings;
  readonly stats: HcmStats;
  private readonly context: FactoryContext;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  draining = false;
  private drainTimer: NodeJS.Timeout | undefined;

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
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (!socket.writable) return socket.destroy();
      if (err.code === 'HPE_HEADER_OVERFLOW') {
        this.stats.downstream_rq_header_overflow.value++;
        this.stats.downstream_rq_4xx.value++;
        socket.end(HEADER_OVERFLOW_REPLY);
      } else if (err.code === 'ECONNRESET') socket.destroy();
      else socket.end(BAD_REQUEST_REPLY);
    });
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
    this.server.emit('connection', socket);
  }

  drain(): void {
    if (this.draining) return;
    this.draining = true;
    // Responses from now on carry `connection: close`; idle keep-alive
    // connections get until drain_timeout to send one last request.
    this.drainTimer = setTimeout(() => this.close(), this.settings.drainTimeoutMs);
    this.drainTimer.unref();
  }

  close(): void {
    if (this.drainTimer) clearTimeout(this.drainTimer);
    this.server.closeAllConnections();
    for (const s of this.sockets) s.destroy();
  }

  routeTable(): RouteTable | undefined {
    return this.settings.routeTable ?? this.context.routes.get(this.settings.rdsName!);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const stats = this.stats;
    stats.downstream_rq_total.value++;
    stats.downstream_rq_active.value++;
    const startTime = performance.now();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const query = q < 0 ? '' : url.slice(q + 1);
    let host = (req.headers.host ?? '').toLowerCase();
    if (this.settings.stripAnyHostPort) host = stripPort(host);
    const headers = req.headers;
    if (this.settings.generateRequestId && !headers['x-request-id']) headers['x-request-id'] = randomUUID();
    if (this.settings.useRemoteAddress) {
      const remote = req.socket.remoteAddress ?? '';
      const xff = headers['x-forwarded-for'];
      headers['x-forwarded-for'] = xff ? `${xff}, ${remote}` : remote;
      headers['x-forwarded-proto'] = 'http';
    } else if (!headers['x-forwarded-proto']) headers['x-forwarded-proto'] = 'http';
    if (this.draining) res.shouldKeepAlive = false;
    res.setHeader('server', this.settings.serverName);

    const table = this.routeTable();
    const vh = table?.selectVirtualHost(host);
    const route = vh ? matchRoute(vh, path, query, headers) : undefined;
    const stream = new Stream(this, req, res, path, query, host, table!, vh!, route!, startTime);
    if (!route) {
      stats.no_route.value++;
      stream.sendLocalReply(404, '', 'NR');
      return;
    }
    stream.filters = this.settings.filters.map((f) => f.create());
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
  upstreamHost = '';
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
    const loggers = this.hcm.settings.accessLoggers;
    if (loggers.length === 0) return;
    const h = this.req.headers;
    const entry = {
      startTime: performance.timeOrigin + this.startTime,
      method,
      path,
      protocol: `HTTP/${this.req.httpVersion}`,
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
