// The HTTP/2 upstream connection pool of a cluster: per host, a few
// connections each multiplexing many streams. A stream goes on the first
// connection with room (below both our max_concurrent_streams and the
// peer's SETTINGS), else a new connection opens while the circuit breaker's
// max_connections allows; past that, streams queue on the least busy one
// (nghttp2 holds them until the peer frees a slot). A connection that
// receives GOAWAY takes no new streams and closes when its last one ends;
// the next request opens a fresh connection.

import { connect, constants } from 'node:http2';
import type { ClientHttp2Session, ClientHttp2Stream, OutgoingHttpHeaders } from 'node:http2';
import type { ClientRequest, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { createConnection } from 'node:net';
import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
import type { Http2Options } from '../http/http2-options.ts';
import { http2Settings } from '../http/http2-options.ts';
import type { Counter, Gauge } from '../stats.ts';
import type { Host } from './host.ts';

/** The cluster stats this pool maintains (Envoy's names). */
export interface Http2PoolStats {
  readonly upstream_cx_total: Counter;
  readonly upstream_cx_active: Gauge;
  readonly upstream_cx_http2_total: Counter;
  readonly upstream_cx_connect_fail: Counter;
  readonly upstream_cx_connect_timeout: Counter;
  readonly upstream_cx_close_notify: Counter;
  readonly upstream_cx_destroy: Counter;
}

export interface Http2PoolOptions {
  readonly http2: Http2Options;
  readonly connectTimeoutMs: number;
  /** The circuit breaker's max_connections, for the whole cluster. */
  readonly maxConnections: number;
  /** Error code a connect timeout carries (the router maps it to UF). */
  readonly connectTimeoutCode: string;
}

interface PoolConnection {
  readonly session: ClientHttp2Session;
  readonly host: Host;
  active: number;
  /** min(our max_concurrent_streams, the peer's SETTINGS once they arrive). */
  limit: number;
  /** Set by GOAWAY or close: no new streams. */
  draining: boolean;
}

const { NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM } = constants;

export class Http2ConnectionPool {
  private readonly byHost = new Map<string, PoolConnection[]>();
  private readonly options: Http2PoolOptions;
  private readonly stats: Http2PoolStats;
  private total = 0;
  private closed = false;

  constructor(options: Http2PoolOptions, stats: Http2PoolStats) {
    this.options = options;
    this.stats = stats;
  }

  /** Open connections (for tests and /clusters). */
  connectionCount(host?: Host): number {
    if (host) return this.byHost.get(host.key)?.length ?? 0;
    return this.total;
  }

  /**
   * Starts a request to `host`. The result behaves as the ClientRequest the
   * router drives: pipe the body into it; it emits 'socket' once the stream
   * is open, 'response' with the response body stream (statusCode and
   * headers set, 'trailers' emitted before 'end'), and 'error'.
   */
  request(host: Host, headers: OutgoingHttpHeaders): ClientRequest {
    const conn = this.pick(host);
    let stream: ClientHttp2Stream;
    try {
      stream = conn.session.request(headers, { endStream: false });
    } catch (err) {
      // Headers HTTP/2 cannot carry: fail like a reset, asynchronously as a ClientRequest would.
      const failed = new Writable();
      process.nextTick(() => failed.destroy(err as Error));
      return failed as unknown as ClientRequest;
    }
    conn.active++;
    const req = new Http2UpstreamRequest(stream);
    stream.once('close', () => this.release(conn));
    // The cast is the contract above: the router reads no more than that.
    return req as unknown as ClientRequest;
  }

  private pick(host: Host): PoolConnection {
    let list = this.byHost.get(host.key);
    if (!list) this.byHost.set(host.key, (list = []));
    let least: PoolConnection | undefined;
    for (const c of list) {
      if (c.draining) continue;
      if (c.active < c.limit) return c;
      if (!least || c.active < least.active) least = c;
    }
    if (least && this.total >= this.options.maxConnections) return least;
    const conn = this.open(host);
    list.push(conn);
    return conn;
  }

  private open(host: Host): PoolConnection {
    const stats = this.stats;
    const socket: Socket = createConnection({ host: host.address, port: host.port });
    socket.setNoDelay(true);
    stats.upstream_cx_total.value++;
    stats.upstream_cx_http2_total.value++;
    stats.upstream_cx_active.value++;
    host.cxActive++;
    this.total++;
    let connected = false;
    const timeoutMs = this.options.connectTimeoutMs;
    const timer = setTimeout(() => {
      stats.upstream_cx_connect_timeout.value++;
      const err = new Error(`connect timeout after ${timeoutMs}ms`) as NodeJS.ErrnoException;
      err.code = this.options.connectTimeoutCode;
      socket.destroy(err);
    }, timeoutMs);
    socket.once('connect', () => {
      connected = true;
      clearTimeout(timer);
    });
    socket.once('error', () => {
      if (!connected) {
        stats.upstream_cx_connect_fail.value++;
        host.cxConnectFail++;
      }
    });
    const o = this.options.http2;
    const session = connect(`http://${host.key}`, { createConnection: () => socket, settings: http2Settings(o), maxSessionMemory: 64 });
    const conn: PoolConnection = { session, host, active: 0, limit: o.maxConcurrentStreams, draining: false };
    session.on('remoteSettings', (settings) => {
      conn.limit = Math.min(o.maxConcurrentStreams, settings.maxConcurrentStreams ?? o.maxConcurrentStreams);
    });
    session.once('connect', () => {
      if (o.initialConnectionWindowSize > 65535) session.setLocalWindowSize(o.initialConnectionWindowSize);
    });
    // Errors reach the streams (pending ones as ERR_HTTP2_STREAM_CANCEL with the cause).
    session.on('error', () => {});
    session.once('goaway', () => {
      stats.upstream_cx_close_notify.value++;
      this.retire(conn);
    });
    session.once('close', () => {
      clearTimeout(timer);
      this.retire(conn);
      stats.upstream_cx_active.value--;
      host.cxActive--;
      this.total--;
    });
    return conn;
  }

  /** Takes a connection out of rotation; it closes once its streams finish. */
  private retire(conn: PoolConnection): void {
    if (!conn.draining) {
      conn.draining = true;
      const list = this.byHost.get(conn.host.key);
      const i = list ? list.indexOf(conn) : -1;
      if (i >= 0) list!.splice(i, 1);
      if (list?.length === 0) this.byHost.delete(conn.host.key);
    }
    if (conn.active === 0 && !conn.session.closed) conn.session.close();
  }

  private release(conn: PoolConnection): void {
    conn.active--;
    if (conn.draining && conn.active === 0 && !conn.session.closed) conn.session.close();
  }

  /** Cluster removed: idle connections close now, busy ones after their streams. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const list of [...this.byHost.values()]) for (const c of [...list]) this.retire(c);
  }

  /** Resets everything now (proxy shutdown). */
  destroy(): void {
    this.close();
    this.stats.upstream_cx_destroy.value += this.total;
  }
}

/** The response as handed out: `trailersOnly` when the HEADERS frame ended the stream (gRPC errors). */
type ResponseStream = ClientHttp2Stream & { statusCode: number; headers: IncomingHttpHeaders; trailersOnly: boolean };

/**
 * One upstream HTTP/2 stream seen as a ClientRequest: the writable side is
 * the request body (write callbacks complete only as nghttp2 takes the data,
 * so flow control backs up into the downstream), and the stream itself is
 * handed out as the response body.
 */
class Http2UpstreamRequest extends Writable {
  private readonly stream: ClientHttp2Stream;
  private responded = false;

  constructor(stream: ClientHttp2Stream) {
    // Finishing the request body must not destroy this object: the response is still to come.
    super({ autoDestroy: false });
    this.stream = stream;
    stream.once('ready', () => this.emit('socket', stream.session?.socket));
    stream.once('response', (headers, flags) => {
      this.responded = true;
      const res = stream as ResponseStream;
      res.statusCode = Number(headers[':status']);
      res.trailersOnly = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
      delete headers[':status'];
      res.headers = headers as IncomingHttpHeaders;
      this.emit('response', res as unknown as IncomingMessage);
    });
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (this.responded) return; // the response stream's own 'error' listeners see it
      // A pending stream cancelled because the connection failed carries the socket error.
      const cause = (err as { cause?: NodeJS.ErrnoException }).cause;
      this.destroy(err.code === 'ERR_HTTP2_STREAM_CANCEL' && cause?.code ? cause : err);
    });
    stream.once('close', () => {
      if (this.responded || this.destroyed) return;
      const err = new Error('upstream stream closed before response headers') as NodeJS.ErrnoException;
      err.code = 'ECONNRESET';
      this.destroy(err);
    });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.stream.destroyed) return callback();
    // A failed write surfaces as the stream's 'error' (mapped above), not as this callback's.
    this.stream.write(chunk, () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.stream.destroyed) return callback();
    this.stream.end(() => callback());
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    // Only an explicit destroy gets here (autoDestroy is off): reset the stream.
    if (!this.stream.destroyed) this.stream.close(NGHTTP2_CANCEL);
    callback(err);
  }
}
