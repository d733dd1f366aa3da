// The HTTP/1.1 upstream connection pool of a cluster, on raw sockets
// instead of node:http's Agent and ClientRequest: the request head is
// serialized once into one string and written with one call; the response
// is read by http1-codec.ts's strict parser. One request per connection at a
// time (no pipelining), idle connections reused last-in first-out, the
// circuit breaker's max_connections shared with the cluster's Agent (both
// count upstream_cx_active); past it, requests wait per host for a
// connection to free up. The objects handed out behave as the ClientRequest
// and IncomingMessage the router drives: the request is written like a
// ClientRequest (the body is piped or replayed into it, with backpressure
// from the socket) and emits 'socket' once a connection is assigned,
// 'response' and 'error'; the
// response is a Readable with statusCode and headers (pausing the socket
// when the downstream is slow) that emits 'trailers' before 'end', or, through
// forwardTo(), writes its body straight into the downstream response.

import type { ClientRequest, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import { performance } from 'node:perf_hooks';
import type { Counter, Gauge } from '../stats.ts';
import type { Host } from './host.ts';
import type { ParserEvents, ResponseHead, ResponseHeaders } from '../http/http1-codec.ts';
import { parseError, ResponseParser } from '../http/http1-codec.ts';

export interface Http1PoolStats {
  readonly upstream_cx_total: Counter;
  readonly upstream_cx_active: Gauge;
  readonly upstream_cx_connect_fail: Counter;
  readonly upstream_cx_connect_timeout: Counter;
}

export interface Http1PoolOptions {
  readonly connectTimeoutMs: number;
  /** The circuit breaker's max_connections, for the whole cluster. */
  readonly maxConnections: number;
  /** Error code a connect timeout carries (the router maps it to UF). */
  readonly connectTimeoutCode: string;
  /** A new transport connection (TCP or TLS) to a host. */
  openConnection(address: string, port: number): Socket;
}

// Methods node sends `content-length: 0` for when they end without a body.
const NO_BODY_BY_DEFAULT = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);
const BAD_VALUE = /[\r\n\0]/;
// eslint-disable-next-line no-control-regex
const BAD_PATH = /[\x00-\x20\x7f]/;
const CRLF = '\r\n';
const LAST_CHUNK = '0\r\n\r\n';

type Framing = 'length' | 'chunked' | 'none' | 'defer';

/** The request head up to (not including) its final CRLF, or an error for headers that cannot be sent. */
function serializeHead(method: string, path: string, headers: OutgoingHttpHeaders): string | Error {
  if (BAD_PATH.test(path)) return parseError('ERR_UNESCAPED_CHARACTERS', 'request path contains unescaped characters');
  let head = `${method} ${path} HTTP/1.1\r\n`;
  for (const name in headers) {
    if (name.charCodeAt(0) === 58 /* : */) continue;
    const v = headers[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) {
      for (const x of v) {
        if (BAD_VALUE.test(x)) return parseError('ERR_INVALID_CHAR', `invalid character in header ${name}`);
        head += `${name}: ${x}\r\n`;
      }
    } else {
      const s = typeof v === 'string' ? v : String(v);
      if (BAD_VALUE.test(s)) return parseError('ERR_INVALID_CHAR', `invalid character in header ${name}`);
      head += `${name}: ${s}\r\n`;
    }
  }
  return head;
}

export class Http1ConnectionPool {
  private readonly options: Http1PoolOptions;
  private readonly stats: Http1PoolStats;
  private readonly idle = new Map<string, Http1Connection[]>();
  private readonly waiting = new Map<string, UpstreamRequest[]>();
  private waitingCount = 0;
  private closed = false;
  /** Connections this pool opened and has not seen close. */
  private open = 0;

  constructor(options: Http1PoolOptions, stats: Http1PoolStats) {
    this.options = options;
    this.stats = stats;
  }

  /** Open connections of this pool (tests, admin). */
  get connectionCount(): number {
    return this.open;
  }

  /**
   * Starts a request. `bodyless` says the downstream request has no body
   * (HTTP/1.x without Content-Length or Transfer-Encoding): end() sends the
   * head alone. Otherwise a Content-Length in `headers` frames the body, or
   * it goes chunked (decided at the first write: a request that ends
   * without data is sent without a body).
   */
  request(host: Host, method: string, path: string, headers: OutgoingHttpHeaders, bodyless: boolean): ClientRequest {
    let framing: Framing;
    let length = 0;
    if (headers['content-length'] !== undefined) {
      framing = 'length';
      length = Number(headers['content-length']);
    } else if (bodyless) framing = 'none';
    else framing = 'defer';
    let head = serializeHead(method, path, headers);
    if (framing === 'length' && !(Number.isSafeInteger(length) && length >= 0)) head = parseError('ERR_HTTP_INVALID_HEADER_VALUE', 'invalid content-length');
    const req = new UpstreamRequest(this, host, method, typeof head === 'string' ? head : '', framing, length);
    if (typeof head !== 'string') {
      process.nextTick(() => req.destroy(head));
      return req as unknown as ClientRequest;
    }
    if (framing === 'none' && !NO_BODY_BY_DEFAULT.has(method)) req.head += 'content-length: 0\r\n';
    this.assign(req);
    return req as unknown as ClientRequest;
  }

  /** A connection for `req`: an idle one, a new one, or a place in the host's queue. */
  private assign(req: UpstreamRequest): void {
    const key = req.host.key;
    const list = this.idle.get(key);
    if (list && list.length > 0) {
      const now = performance.now();
      while (list.length > 0) {
        const conn = list.pop()!;
        if (conn.socket.destroyed) continue;
        // Past the server's keep-alive hint (less a second, as node's Agent does): it may be closing it now.
        if (conn.idleLimitMs >= 0 && now - conn.idleSince >= conn.idleLimitMs) {
          conn.close();
          continue;
        }
        conn.attach(req);
        return;
      }
    }
    if (this.closed || this.stats.upstream_cx_active.value < this.options.maxConnections) {
      let conn: Http1Connection;
      try {
        conn = this.connect(req.host);
      } catch (err) {
        // A transport that cannot even start (bad TLS material): fail like a connect error.
        process.nextTick(() => req.destroy(err as Error));
        return;
      }
      conn.attach(req);
      return;
    }
    let q = this.waiting.get(key);
    if (!q) this.waiting.set(key, (q = []));
    q.push(req);
    this.waitingCount++;
  }

  /** Removes a queued request that went away before it got a connection. */
  unqueue(req: UpstreamRequest): void {
    const q = this.waiting.get(req.host.key);
    const i = q ? q.indexOf(req) : -1;
    if (i < 0) return;
    q!.splice(i, 1);
    this.waitingCount--;
    if (q!.length === 0) this.waiting.delete(req.host.key);
  }

  private nextWaiting(key: string): UpstreamRequest | undefined {
    const q = this.waiting.get(key);
    if (!q) return undefined;
    const req = q.shift()!;
    this.waitingCount--;
    if (q.length === 0) this.waiting.delete(key);
    return req;
  }

  private connect(host: Host): Http1Connection {
    const stats = this.stats;
    const socket = this.options.openConnection(host.address, host.port);
    socket.setNoDelay(true);
    stats.upstream_cx_total.value++;
    stats.upstream_cx_active.value++;
    this.open++;
    host.cxActive++;
    return new Http1Connection(this, host, socket, this.options.connectTimeoutMs, this.options.connectTimeoutCode, stats);
  }

  /** A connection finished an exchange and may be reused. */
  release(conn: Http1Connection): void {
    const key = conn.host.key;
    const next = this.nextWaiting(key);
    if (next) {
      conn.attach(next);
      return;
    }
    if (this.closed || (this.waitingCount > 0 && this.stats.upstream_cx_active.value >= this.options.maxConnections)) {
      // Another host waits for a slot under max_connections: give it this one's.
      conn.close();
      return;
    }
    let list = this.idle.get(key);
    if (!list) this.idle.set(key, (list = []));
    if (conn.idleLimitMs >= 0) conn.idleSince = performance.now();
    list.push(conn);
  }

  /** A connection closed: forget it, and let a waiting request open a new one. */
  forget(conn: Http1Connection): void {
    this.open--;
    conn.host.cxActive--;
    this.stats.upstream_cx_active.value--;
    const list = this.idle.get(conn.host.key);
    const i = list ? list.indexOf(conn) : -1;
    if (i >= 0) list!.splice(i, 1);
    if (list?.length === 0) this.idle.delete(conn.host.key);
    if (this.waitingCount === 0) return;
    for (const key of this.waiting.keys()) {
      if (this.stats.upstream_cx_active.value >= this.options.maxConnections) return;
      const req = this.nextWaiting(key);
      if (req) this.assign(req);
    }
  }

  /** Cluster removed: idle connections close now, busy ones after their exchange. */
  close(): void {
    this.closed = true;
    for (const list of [...this.idle.values()]) for (const c of [...list]) c.close();
    this.idle.clear();
  }
}

/** One upstream connection: its socket, its parser and the exchange in flight. */
class Http1Connection implements ParserEvents {
  readonly pool: Http1ConnectionPool;
  readonly host: Host;
  readonly socket: Socket;
  private readonly parser: ResponseParser;
  private readonly stats: Http1PoolStats;
  exchange: UpstreamRequest | undefined;
  /** From the server's `Keep-Alive: timeout=N` hint, less a second; -1 without one. */
  idleLimitMs = -1;
  idleSince = 0;
  private connected = false;
  private timer: NodeJS.Timeout | undefined;
  private dead = false;

  constructor(pool: Http1ConnectionPool, host: Host, socket: Socket, timeoutMs: number, timeoutCode: string, stats: Http1PoolStats) {
    this.pool = pool;
    this.host = host;
    this.socket = socket;
    this.stats = stats;
    this.parser = new ResponseParser(this);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      stats.upstream_cx_connect_timeout.value++;
      socket.destroy(parseError(timeoutCode, `connect timeout after ${timeoutMs}ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      this.connected = true;
      clearTimeout(this.timer);
      this.timer = undefined;
    });
    socket.on('data', (data: Buffer) => this.onData(data));
    socket.on('end', () => this.onEnd());
    socket.on('error', (err: Error) => this.onError(err));
    socket.once('close', () => this.onClose());
  }

  attach(req: UpstreamRequest): void {
    this.exchange = req;
    this.parser.start(req.method);
    if (this.socket.isPaused()) this.socket.resume();
    req.attached(this);
  }

  /** Closes the connection (idle or done); no error reaches anyone. */
  close(): void {
    if (this.exchange) this.exchange.detached();
    this.exchange = undefined;
    this.dead = true;
    this.parser.reset();
    this.socket.destroy();
  }

  write(data: string | Buffer): boolean {
    // Heads are latin1, as node's ClientRequest writes them (no UTF-8 encoding pass).
    return typeof data === 'string' ? this.socket.write(data, 'latin1') : this.socket.write(data);
  }

  private onData(data: Buffer): void {
    if (this.dead) return;
    try {
      this.parser.execute(data);
    } catch (err) {
      this.fail(err as Error);
    }
  }

  private onEnd(): void {
    if (this.dead) return;
    // A close-delimited body ends here; anything else in flight was cut short.
    if (this.exchange) this.parser.finish();
    const err = new Error('socket hang up') as NodeJS.ErrnoException;
    err.code = 'ECONNRESET';
    this.fail(err);
  }

  private onError(err: Error): void {
    if (!this.connected) this.stats.upstream_cx_connect_fail.value++;
    this.fail(err);
  }

  private onClose(): void {
    clearTimeout(this.timer);
    if (!this.dead) {
      const err = new Error('socket hang up') as NodeJS.ErrnoException;
      err.code = 'ECONNRESET';
      this.fail(err);
    }
    this.pool.forget(this);
  }

  /** The connection broke: the exchange in flight (if any) fails with `err`. */
  private fail(err: Error): void {
    if (this.dead) return;
    this.dead = true;
    this.parser.reset();
    const ex = this.exchange;
    this.exchange = undefined;
    this.socket.destroy();
    ex?.failed(err);
  }

  /** The exchange is over on both sides: reuse or close. */
  done(reusable: boolean): void {
    this.exchange = undefined;
    if (reusable && !this.dead && !this.socket.destroyed) this.pool.release(this);
    else {
      this.dead = true;
      this.parser.reset();
      this.socket.destroy();
    }
  }

  /** Pauses reading while the response body's consumer is slow. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    if (!this.dead) this.socket.resume();
  }

  // ParserEvents
  onHead(head: ResponseHead): void {
    const hint = head.headers['keep-alive'];
    if (hint !== undefined) {
      const m = /timeout=(\d+)/.exec(hint as string);
      if (m) this.idleLimitMs = Number(m[1]) * 1000 - 1000;
    }
    this.exchange?.onHead(head);
  }

  onBody(chunk: Buffer): void {
    this.exchange?.onBody(chunk);
  }

  onTrailers(trailers: ResponseHeaders): void {
    this.exchange?.onTrailers(trailers);
  }

  onComplete(rest: Buffer | undefined): void {
    const ex = this.exchange;
    // Bytes after the response: the peer is not speaking HTTP/1.1 as we do; do not reuse.
    const reusable = rest === undefined && this.parser.keepAlive && this.idleLimitMs !== 0;
    if (!reusable) {
      this.dead = true;
      this.parser.reset();
    }
    ex?.onResponseComplete(reusable);
    if (!reusable) this.socket.destroy();
  }
}

/**
 * Where forwardTo() sends a response body: the downstream response (the
 * writable side of node's ServerResponse and its HTTP/2 and raw-codec
 * counterparts), with 'drain' once a write that returned false has flushed.
 */
export interface ResponseSink {
  write(chunk: Buffer): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

/** The response body as the router reads it (IncomingMessage's surface it uses). */
class UpstreamResponse extends Readable {
  statusCode: number;
  statusMessage: string;
  headers: ResponseHeaders;
  trailers: ResponseHeaders = {};
  readonly httpVersionMajor = 1;
  readonly httpVersionMinor: number;
  complete = false;
  private conn: Http1Connection | undefined;
  /** Set by forwardTo(): body bytes bypass the Readable's buffer and events. */
  private sink: ResponseSink | undefined;
  private onEnd: (() => void) | undefined;
  private waitingDrain = false;

  constructor(head: ResponseHead, conn: Http1Connection) {
    super();
    this.statusCode = head.statusCode;
    this.statusMessage = head.statusMessage;
    this.headers = head.headers;
    this.httpVersionMinor = head.httpMinor;
    this.conn = conn;
  }

  override _read(): void {
    this.conn?.resume();
  }

  /**
   * The router's fast path instead of pipe(): each body chunk is written to
   * `sink` as the parser yields it (the socket pauses until 'drain' when a
   * write returns false) and `onEnd` runs when the body is complete, in the
   * same tick, where pipe() would take a tick to start flowing and another
   * to emit 'end'. 'end' and 'data' are not emitted; 'error' still is.
   * Returns false (and changes nothing) once body bytes were buffered or the
   * body ended: call it from the 'response' event.
   */
  forwardTo(sink: ResponseSink, onEnd: () => void): boolean {
    if (this.complete || this.destroyed || this.readableLength > 0 || this.readableFlowing !== null) return false;
    this.sink = sink;
    this.onEnd = onEnd;
    return true;
  }

  /** Pushes body bytes; pauses the socket when the consumer is behind. */
  deliver(chunk: Buffer): void {
    const sink = this.sink;
    if (sink) {
      if (!sink.write(chunk) && !this.waitingDrain) {
        this.waitingDrain = true;
        this.conn?.pause();
        sink.once('drain', this.onDrain);
      }
      return;
    }
    if (!this.push(chunk)) this.conn?.pause();
  }

  private readonly onDrain = (): void => {
    this.waitingDrain = false;
    if (!this.destroyed) this.conn?.resume();
  };

  finish(): void {
    this.complete = true;
    this.conn = undefined;
    if (this.sink) this.endForward();
    else this.push(null);
  }

  private endForward(): void {
    const onEnd = this.onEnd;
    this.onEnd = undefined;
    onEnd?.();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    const conn = this.conn;
    this.conn = undefined;
    // Dropped before its end (the downstream went away): the rest of the body is not read.
    if (!this.complete && conn) conn.close();
    // As node's IncomingMessage: an error nobody listens for is not thrown.
    callback(this.listenerCount('error') > 0 ? err : null);
  }
}

/** Body bytes queued before a connection is assigned, past which write() asks the writer to wait for 'drain'. */
const QUEUE_HIGH_WATER_MARK = 16 * 1024;

/**
 * One request to an upstream. Written the way node's ClientRequest is (an
 * EventEmitter with write(), end() and destroy(), which Readable.pipe()
 * and the retry buffer write the body into), not as a stream.Writable: a
 * Writable made per request was kept alive by V8's scavenger into the old
 * generation, and everything it referenced with it (the response, the
 * headers), a large part of the promoted garbage behind the p99 tail (see
 * docs/proxy.md). write() returns false while the socket (or the queue
 * before a connection is assigned) is full and 'drain' follows; end() emits
 * 'finish' once the request is written; destroy(err) emits 'error' (with an
 * error) and 'close'.
 */
class UpstreamRequest extends EventEmitter {
  readonly pool: Http1ConnectionPool;
  readonly host: Host;
  readonly method: string;
  head: string;
  destroyed = false;
  private framing: Framing;
  /** Body bytes still owed under a Content-Length. */
  private owed: number;
  private conn: Http1Connection | undefined;
  /** Body written before the connection was assigned. */
  private queued: Buffer[] | undefined;
  private queuedBytes = 0;
  /** end() was called (the request is finished once it is written). */
  private ending = false;
  /** A write returned false: 'drain' is owed. */
  private needDrain = false;
  private requestDone = false;
  private response: UpstreamResponse | undefined;
  private responseDone = false;
  private reusable = false;
  /** The exchange is over (completed, failed or abandoned): later writes are dropped. */
  private over = false;

  constructor(pool: Http1ConnectionPool, host: Host, method: string, head: string, framing: Framing, length: number) {
    super();
    this.pool = pool;
    this.host = host;
    this.method = method;
    this.head = head;
    this.framing = framing;
    this.owed = length;
  }

  /** Readable.pipe() reads this: the writer should wait for 'drain'. */
  get writableNeedDrain(): boolean {
    return this.needDrain;
  }

  get writableEnded(): boolean {
    return this.ending;
  }

  /** The pool gave us a connection (maybe synchronously within request()). */
  attached(conn: Http1Connection): void {
    if (this.destroyed || this.over) return conn.close();
    this.conn = conn;
    // Like an Agent, 'socket' comes on a later tick: the router listens after request() returns.
    process.nextTick(emitSocket, this, conn.socket);
    if (this.framing === 'length' || this.framing === 'none') this.sendHead('');
    if (this.framing === 'none' || (this.framing === 'length' && this.owed === 0)) this.requestDone = true;
    const queued = this.queued;
    this.queued = undefined;
    this.queuedBytes = 0;
    let ok = true;
    if (queued) for (const chunk of queued) ok = this.writeBody(chunk);
    if (this.ending) this.final();
    if (this.needDrain) this.drainWhen(ok);
  }

  private sendHead(framingLine: string): void {
    this.conn!.write(this.head + framingLine + CRLF);
  }

  write(chunk: Buffer | string): boolean {
    if (this.destroyed || this.ending || this.over) return false;
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (buf.length === 0) return true;
    if (!this.conn) {
      (this.queued ??= []).push(buf);
      this.queuedBytes += buf.length;
      if (this.queuedBytes < QUEUE_HIGH_WATER_MARK) return true;
      this.needDrain = true;
      return false;
    }
    const ok = this.writeBody(buf);
    if (ok) return !this.needDrain;
    // One 'drain' listener on the socket however many writes were refused (the retry buffer ignores the answer).
    if (!this.needDrain) {
      this.needDrain = true;
      this.drainWhen(false);
    }
    return false;
  }

  /** 'drain' now (the socket took everything) or once the socket drains. */
  private drainWhen(socketOk: boolean): void {
    if (socketOk) {
      this.needDrain = false;
      process.nextTick(emitDrain, this);
    } else this.conn!.socket.once('drain', () => {
      if (!this.needDrain) return;
      this.needDrain = false;
      this.emit('drain');
    });
  }

  /** One body chunk on the wire, framed as the request announced; false when the socket is full. */
  private writeBody(chunk: Buffer): boolean {
    const conn = this.conn!;
    switch (this.framing) {
      case 'none':
        // No framing announced: the request has no body (RFC 9112 6.3).
        return true;
      case 'defer':
        this.framing = 'chunked';
        this.head += `transfer-encoding: chunked\r\n\r\n${chunk.length.toString(16)}\r\n`;
        conn.write(this.head);
        conn.write(chunk);
        return conn.write(CRLF);
      case 'chunked':
        conn.write(`${chunk.length.toString(16)}\r\n`);
        conn.write(chunk);
        return conn.write(CRLF);
      case 'length': {
        // Never more than announced (it would be read as the next response's request).
        const n = Math.min(chunk.length, this.owed);
        if (n === 0) return true;
        this.owed -= n;
        const ok = conn.write(n === chunk.length ? chunk : chunk.subarray(0, n));
        if (this.owed === 0) this.requestDone = true;
        return ok;
      }
    }
  }

  end(chunk?: Buffer | string): this {
    if (chunk !== undefined) this.write(chunk);
    if (this.ending || this.destroyed) return this;
    this.ending = true;
    if (this.conn) this.final();
    return this;
  }

  /** The body is all written: close the framing, then 'finish'. */
  private final(): void {
    if (this.over) return;
    if (this.framing === 'defer') {
      this.framing = 'none';
      if (!NO_BODY_BY_DEFAULT.has(this.method)) this.head += 'content-length: 0\r\n';
      this.sendHead('');
    } else if (this.framing === 'chunked') this.conn!.write(LAST_CHUNK);
    else if (this.framing === 'length' && this.owed > 0) {
      // The downstream body ended short of its Content-Length: the upstream would wait forever.
      const err = new Error('request body shorter than content-length') as NodeJS.ErrnoException;
      err.code = 'ECONNRESET';
      this.destroy(err);
      return;
    }
    this.requestDone = true;
    process.nextTick(emitFinish, this);
    this.maybeDone();
  }

  destroy(err?: Error | null): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    const conn = this.conn;
    this.conn = undefined;
    this.queued = undefined;
    if (!this.over) {
      this.over = true;
      if (conn) conn.close();
      else this.pool.unqueue(this);
      const res = this.response;
      if (res && !this.responseDone && !res.destroyed) res.destroy(abortedError());
    }
    process.nextTick(emitDestroyed, this, err ?? undefined);
    return this;
  }

  onHead(head: ResponseHead): void {
    if (this.over) return;
    const res = new UpstreamResponse(head, this.conn!);
    this.response = res;
    this.emit('response', res as unknown as IncomingMessage);
  }

  onBody(chunk: Buffer): void {
    const res = this.response;
    if (res && !res.destroyed) res.deliver(chunk);
  }

  onTrailers(trailers: ResponseHeaders): void {
    const res = this.response;
    if (!res || res.destroyed) return;
    res.trailers = trailers;
    res.emit('trailers', trailers);
  }

  onResponseComplete(reusable: boolean): void {
    this.responseDone = true;
    this.reusable = reusable;
    this.response?.finish();
    // A response that completed before the request was sent: the connection cannot be reused.
    if (!this.requestDone) this.reusable = false;
    this.maybeDone();
  }

  private maybeDone(): void {
    if (!this.responseDone || this.over) return;
    if (!this.requestDone && this.reusable) return;
    this.over = true;
    const conn = this.conn;
    this.conn = undefined;
    conn?.done(this.reusable && this.requestDone);
  }

  /** The connection closed it (pool shutdown) with the exchange not over. */
  detached(): void {
    this.conn = undefined;
    if (this.over) return;
    this.over = true;
    const res = this.response;
    if (res && !this.responseDone && !res.destroyed) res.destroy(abortedError());
  }

  /** The connection broke. Before the response, the request fails; after, the response does. */
  failed(err: Error): void {
    this.conn = undefined;
    if (this.over) return;
    this.over = true;
    const res = this.response;
    if (!res) {
      if (!this.destroyed) this.destroy(err);
      return;
    }
    if (!this.responseDone && !res.destroyed) res.destroy(abortedError());
  }
}

function emitSocket(req: UpstreamRequest, socket: Socket): void {
  req.emit('socket', socket);
}

function emitDrain(req: UpstreamRequest): void {
  req.emit('drain');
}

function emitFinish(req: UpstreamRequest): void {
  req.emit('finish');
}

/** As a Writable's destroy(): 'error' when there is one (thrown when nobody listens, as there), then 'close'. */
function emitDestroyed(req: UpstreamRequest, err: Error | undefined): void {
  if (err) req.emit('error', err);
  req.emit('close');
}

function abortedError(): Error {
  const err = new Error('aborted') as NodeJS.ErrnoException;
  err.code = 'ECONNRESET';
  return err;
}
