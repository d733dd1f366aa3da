// The HCM's raw downstream HTTP/1.1 codec: requests parsed straight off
// the socket by http/http1-codec.ts's strict RequestParser, responses
// serialized into one string head and written with the body in one
// syscall, instead of node:http's parser, IncomingMessage and
// ServerResponse. The request and response objects carry the parts of
// node's that the filter chain uses (headers/url/method/socket/complete and
// a Readable body for the request; setHeader/getHeader/writeHead/write/end/
// headersSent/statusCode and 'close' for the response), so filters and the
// router run unchanged. Response header names go out lower-cased, as
// Envoy writes them.
//
// Per connection, one exchange at a time: bytes of a pipelined next request
// are held (the socket paused) until the current response has finished.
// Limits: the head size (max_request_headers_kb -> 431) and header count
// (100 -> 431), the time to receive a head (request_headers_timeout), the
// connection's idle timeout between requests. `Expect: 100-continue` gets
// its 100 Continue at once, as node's server sends it. Upgrade and CONNECT
// requests leave this codec with the raw socket and the bytes after the
// head, like node's 'upgrade' event.

import { EventEmitter } from 'node:events';
import { STATUS_CODES } from 'node:http';
import type { IncomingMessage, OutgoingHttpHeader, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { RequestHead, RequestParserEvents, ResponseHeaders } from '../../../http/http1-codec.ts';
import { isToken, parseError, RequestParser } from '../../../http/http1-codec.ts';

export interface Http1ServerHandlers {
  onRequest(req: IncomingMessage, res: ServerResponse): void;
  /** An Upgrade or CONNECT request: the socket and the bytes after the head are the caller's now. */
  onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void;
  /** A request the parser refused before any response; `err.code` is llhttp's (HPE_HEADER_OVERFLOW -> 431). */
  onParseError(err: NodeJS.ErrnoException, socket: Socket): void;
  /** True while the listener drains: responses carry `connection: close`. */
  readonly draining: boolean;
}

export interface Http1ServerOptions {
  /** Request head limit in bytes. */
  readonly maxHeadBytes: number;
  /** Close a connection with no request in flight after this long (0: never). */
  readonly idleTimeoutMs: number;
  /** A request head must arrive within this long of its first byte (0: no limit). */
  readonly headersTimeoutMs: number;
}

const CRLF = '\r\n';
const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';
const LAST_CHUNK = '0\r\n\r\n';
const EMPTY = Buffer.alloc(0);
const BAD_VALUE = /[\r\n\0]/;

// The Date header, rendered once per second (as node's server does).
let dateCache = '';
let dateSecond = -1;
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateCache = new Date(now).toUTCString();
  }
  return dateCache;
}

function invalidHeader(name: string): NodeJS.ErrnoException {
  const err = new TypeError(`Invalid character in header content ["${name}"]`) as NodeJS.ErrnoException;
  err.code = 'ERR_INVALID_CHAR';
  return err;
}

function headersSentError(): NodeJS.ErrnoException {
  const err = new Error('Cannot set headers after they are sent to the client') as NodeJS.ErrnoException;
  err.code = 'ERR_HTTP_HEADERS_SENT';
  return err;
}

/** Serves HTTP/1.1 on `socket` until it closes or an upgrade takes it. */
export function serveHttp1(socket: Socket, handlers: Http1ServerHandlers, options: Http1ServerOptions): void {
  new Http1ServerConnection(socket, handlers, options);
}

/** One downstream connection: its parser and the exchange in flight. */
class Http1ServerConnection implements RequestParserEvents {
  readonly socket: Socket;
  private readonly handlers: Http1ServerHandlers;
  private readonly options: Http1ServerOptions;
  private readonly parser: RequestParser;
  /** As node's server says it: `connection: keep-alive` and the idle timeout as a hint. */
  readonly keepAliveFields: string;
  private req: DownstreamRequest | undefined;
  private res: DownstreamResponse | undefined;
  private requestDone = false;
  /** Bytes after the current request (a pipelined next one), parsed once its response finished. */
  private held: Buffer | undefined;
  /** Inside parser.execute(): exchange changes wait until it returns. */
  private parsing = false;
  private headTimer: NodeJS.Timeout | undefined;
  /** The client half-closed: no request follows the one in flight. */
  private peerEnded = false;
  private gone = false;

  constructor(socket: Socket, handlers: Http1ServerHandlers, options: Http1ServerOptions) {
    this.socket = socket;
    this.handlers = handlers;
    this.options = options;
    this.parser = new RequestParser(this, options.maxHeadBytes);
    this.parser.start();
    this.keepAliveFields = options.idleTimeoutMs > 0 ? `connection: keep-alive\r\nkeep-alive: timeout=${Math.floor(options.idleTimeoutMs / 1000)}\r\n` : 'connection: keep-alive\r\n';
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.once('close', this.onClose);
    socket.on('timeout', this.onIdle);
    if (options.idleTimeoutMs > 0) socket.setTimeout(options.idleTimeoutMs);
  }

  private readonly onData = (data: Buffer): void => {
    if (this.gone) return;
    if (this.req && this.requestDone) {
      // The next request came before this response finished: it waits.
      this.hold(data);
      return;
    }
    this.parse(data);
  };

  private hold(data: Buffer): void {
    this.held = this.held ? Buffer.concat([this.held, data]) : data;
    this.socket.pause();
  }

  private parse(data: Buffer): void {
    this.parsing = true;
    try {
      this.parser.execute(data);
    } catch (err) {
      this.parsing = false;
      this.fail(err as NodeJS.ErrnoException);
      return;
    }
    this.parsing = false;
    // Part of a head arrived (a whole one, the common case, costs no timer).
    if (!this.req && !this.headTimer && !this.gone && this.parser.midHead && this.options.headersTimeoutMs > 0) {
      this.headTimer = setTimeout(this.onHeadTimeout, this.options.headersTimeoutMs);
    }
    this.advance();
  }

  private readonly onHeadTimeout = (): void => {
    this.headTimer = undefined;
    if (!this.req) this.fail(parseError('HPE_HEADERS_TIMEOUT', 'request headers timeout'));
  };

  private readonly onIdle = (): void => {
    // The socket's timer runs all along (node refreshes it on every read and
    // write); only a connection with no request in flight or arriving is idle.
    if (!this.req && !this.headTimer) this.socket.destroy();
  };

  /** A protocol error: reply 400/431 when no response started, then close. */
  private fail(err: NodeJS.ErrnoException): void {
    if (this.gone) return;
    this.gone = true;
    clearTimeout(this.headTimer);
    this.parser.reset();
    const req = this.req;
    if (req && !req.complete) req.abort();
    if (this.res && this.res.headersSent) this.socket.destroy();
    else if (this.res) {
      // A response is being prepared for a request whose body was malformed: reset the exchange.
      this.socket.destroy();
    } else this.handlers.onParseError(err, this.socket);
  }

  private readonly onEnd = (): void => {
    // The client half-closed: a request in flight still gets its response; an idle connection closes.
    this.peerEnded = true;
    if (!this.req && !this.held) {
      this.gone = true;
      this.socket.end();
    } else if (this.req && !this.requestDone) this.socket.destroy();
  };

  private readonly onError = (): void => {
    this.socket.destroy();
  };

  private readonly onClose = (): void => {
    this.gone = true;
    clearTimeout(this.headTimer);
    this.parser.reset();
    const req = this.req;
    if (req && !req.complete) req.abort();
    this.res?.socketClosed();
  };

  // RequestParserEvents
  onHead(head: RequestHead): void {
    if (this.headTimer) {
      clearTimeout(this.headTimer);
      this.headTimer = undefined;
    }
    const req = new DownstreamRequest(head, this.socket, this);
    this.req = req;
    this.requestDone = false;
    if (head.upgrade) return; // handed over in onComplete, with the bytes after the head
    const res = new DownstreamResponse(this, req, head.keepAlive && !this.handlers.draining);
    this.res = res;
    const expect = head.headers.expect;
    if (head.httpMinor === 1 && typeof expect === 'string' && expect.toLowerCase() === '100-continue') this.socket.write(CONTINUE);
    // No body to wait for: filters see a complete request (the router arms its timeout at once, with no 'end' listener).
    if (head.bodyless) req.finish();
    this.handlers.onRequest(req as unknown as IncomingMessage, res as unknown as ServerResponse);
  }

  onBody(chunk: Buffer): void {
    this.req?.deliver(chunk);
  }

  onTrailers(trailers: ResponseHeaders): void {
    if (this.req) this.req.trailers = trailers;
  }

  onComplete(rest: Buffer | undefined): void {
    const req = this.req!;
    this.requestDone = true;
    if (req.upgrade) {
      this.handOver(req, rest ?? EMPTY);
      return;
    }
    req.finish();
    if (rest) this.held = this.held ? Buffer.concat([rest, this.held]) : rest;
  }

  /** The socket leaves HTTP/1.1 for an upgrade or CONNECT. */
  private handOver(req: DownstreamRequest, head: Buffer): void {
    this.gone = true;
    const socket = this.socket;
    socket.off('data', this.onData);
    socket.off('end', this.onEnd);
    socket.off('error', this.onError);
    socket.off('close', this.onClose);
    socket.off('timeout', this.onIdle);
    socket.setTimeout(0);
    // Not flowing until the relay pipes it: bytes wait in the socket meanwhile.
    socket.pause();
    req.finish();
    this.handlers.onUpgrade(req as unknown as IncomingMessage, socket, head);
  }

  /** The response finished writing. */
  responseDone(res: DownstreamResponse): void {
    if (res !== this.res || this.gone) return;
    if (!res.keepAlive) {
      this.gone = true;
      this.parser.reset();
      this.socket.end();
      return;
    }
    this.advance();
  }

  /** Moves to the next exchange once both the request and the response are over. */
  private advance(): void {
    if (this.parsing || this.gone) return;
    const res = this.res;
    if (res && !(this.requestDone && res.writableFinished)) {
      // Waiting for the body (reading) or for the response (holding what comes next).
      if (this.requestDone && this.held) this.socket.pause();
      return;
    }
    if (res) {
      this.req = undefined;
      this.res = undefined;
      this.requestDone = false;
      this.parser.start();
    }
    const held = this.held;
    if (held) {
      this.held = undefined;
      this.parse(held);
      if (this.gone) return;
    }
    if (this.peerEnded && !this.req) {
      this.gone = true;
      this.socket.end();
      return;
    }
    if (this.socket.isPaused() && !(this.req && this.requestDone)) this.resumeReading();
  }

  /** The request's consumer wants more body, or the next request may come. */
  resumeReading(): void {
    if (!this.gone && !this.held && this.socket.readableFlowing === false) this.socket.resume();
  }

  pauseReading(): void {
    this.socket.pause();
  }

  get draining(): boolean {
    return this.handlers.draining;
  }
}

/** The request as filters see it: node's IncomingMessage surface over the parsed head. */
class DownstreamRequest extends Readable {
  readonly method: string;
  url: string;
  readonly httpVersionMajor = 1;
  readonly httpVersionMinor: number;
  readonly httpVersion: string;
  readonly headers: ResponseHeaders;
  readonly rawHeaders: string[];
  trailers: ResponseHeaders = {};
  readonly rawTrailers: string[] = [];
  readonly upgrade: boolean;
  readonly socket: Socket;
  complete = false;
  aborted = false;
  private readonly conn: Http1ServerConnection;

  constructor(head: RequestHead, socket: Socket, conn: Http1ServerConnection) {
    super();
    this.method = head.method;
    this.url = head.url;
    this.httpVersionMinor = head.httpMinor;
    this.httpVersion = head.httpMinor === 1 ? '1.1' : '1.0';
    this.headers = head.headers;
    this.rawHeaders = head.rawHeaders;
    this.upgrade = head.upgrade;
    this.socket = socket;
    this.conn = conn;
  }

  get connection(): Socket {
    return this.socket;
  }

  override _read(): void {
    if (!this.complete) this.conn.resumeReading();
  }

  /** Body bytes; the socket pauses while the consumer is behind. */
  deliver(chunk: Buffer): void {
    if (!this.push(chunk)) this.conn.pauseReading();
  }

  finish(): void {
    if (this.complete) return;
    this.complete = true;
    this.push(null);
  }

  /** The connection closed before the body ended. */
  abort(): void {
    if (this.complete || this.destroyed) return;
    this.aborted = true;
    this.emit('aborted');
    const err = new Error('aborted') as NodeJS.ErrnoException;
    err.code = 'ECONNRESET';
    this.destroy(err);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    // As node's IncomingMessage: an error nobody listens for is not thrown.
    callback(this.listenerCount('error') > 0 ? err : null);
  }

  /** node's API; the HCM's own timers (stream-timeouts.ts) govern streams here. */
  setTimeout(): this {
    return this;
  }
}

type HeaderValue = number | string | readonly string[];

/**
 * The response as filters and the router drive it: ServerResponse's header
 * methods, writeHead, and a writable side good enough for pipe(). The head
 * is rendered once, when the first body bytes or end() come, and leaves in
 * the same write as them.
 */
class DownstreamResponse extends EventEmitter {
  readonly req: DownstreamRequest;
  readonly socket: Socket;
  statusCode = 200;
  statusMessage = '';
  /** False: `connection: close` and the connection ends after this response. */
  keepAlive: boolean;
  /** node's name for the same; filters may clear it. */
  sendDate = true;
  /** CONNECT's 200 has no body framing. */
  useChunkedEncodingByDefault: boolean;
  /** The rendered head once sent (istio.stats counts its bytes). */
  _header: string | null = null;
  writableEnded = false;
  writableFinished = false;
  destroyed = false;
  private readonly conn: Http1ServerConnection;
  private readonly fields = new Map<string, HeaderValue>();
  private headWritten = false;
  private chunked = false;
  private hasBody = true;
  private corked = false;
  private closed = false;
  private waitingDrain = false;

  constructor(conn: Http1ServerConnection, req: DownstreamRequest, keepAlive: boolean) {
    super();
    this.conn = conn;
    this.req = req;
    this.socket = conn.socket;
    this.keepAlive = keepAlive;
    this.useChunkedEncodingByDefault = req.method !== 'CONNECT';
  }

  get connection(): Socket {
    return this.socket;
  }

  get headersSent(): boolean {
    return this._header !== null;
  }

  get shouldKeepAlive(): boolean {
    return this.keepAlive;
  }

  set shouldKeepAlive(v: boolean) {
    this.keepAlive = v;
  }

  get writable(): boolean {
    return !this.writableEnded && !this.destroyed;
  }

  get writableNeedDrain(): boolean {
    return this.waitingDrain;
  }

  setHeader(name: string, value: HeaderValue): this {
    if (this._header !== null) throw headersSentError();
    if (!isToken(name)) throw invalidHeader(name);
    if (Array.isArray(value)) {
      for (const v of value) if (BAD_VALUE.test(String(v))) throw invalidHeader(name);
    } else if (typeof value !== 'number' && BAD_VALUE.test(value as string)) throw invalidHeader(name);
    this.fields.set(name.toLowerCase(), value);
    return this;
  }

  getHeader(name: string): HeaderValue | undefined {
    return this.fields.get(name.toLowerCase());
  }

  getHeaders(): OutgoingHttpHeaders {
    const out: OutgoingHttpHeaders = Object.create(null) as OutgoingHttpHeaders;
    for (const [k, v] of this.fields) out[k] = v as OutgoingHttpHeader;
    return out;
  }

  getHeaderNames(): string[] {
    return [...this.fields.keys()];
  }

  hasHeader(name: string): boolean {
    return this.fields.has(name.toLowerCase());
  }

  removeHeader(name: string): void {
    if (this._header !== null) throw headersSentError();
    this.fields.delete(name.toLowerCase());
  }

  writeHead(status: number, reason?: string | OutgoingHttpHeaders | readonly string[], headers?: OutgoingHttpHeaders | readonly string[]): this {
    if (this._header !== null) throw headersSentError();
    if (typeof reason === 'string') this.statusMessage = reason;
    else headers = reason;
    if (!Number.isInteger(status) || status < 100 || status > 999) {
      const err = new RangeError(`Invalid status code: ${status}`) as NodeJS.ErrnoException;
      err.code = 'ERR_HTTP_INVALID_STATUS_CODE';
      throw err;
    }
    this.statusCode = status;
    if (Array.isArray(headers)) {
      for (let i = 0; i + 1 < headers.length; i += 2) this.setHeader(headers[i] as string, headers[i + 1] as string);
    } else if (headers) {
      for (const name in headers as OutgoingHttpHeaders) {
        const v = (headers as OutgoingHttpHeaders)[name];
        if (v !== undefined) this.setHeader(name, v as HeaderValue);
      }
    }
    this.renderHead(-1);
    return this;
  }

  /** No trailers on HTTP/1.1 downstreams (Envoy drops them by default). */
  addTrailers(): void {}

  flushHeaders(): void {
    if (this._header === null) this.renderHead(-1);
    this.sendHead();
  }

  /**
   * Renders the head. `endLength` is the whole body's length when end()
   * comes before any write (it frames the body by Content-Length), else -1.
   */
  private renderHead(endLength: number): void {
    const status = this.statusCode;
    const fields = this.fields;
    this.hasBody = this.req.method !== 'HEAD' && status !== 204 && status !== 304 && status >= 200;
    if (status === 204 || status === 304 || (status >= 100 && status < 200)) {
      fields.delete('content-length');
      fields.delete('transfer-encoding');
    }
    if (this.conn.draining) this.keepAlive = false;
    let head = `HTTP/1.1 ${status} ${this.statusMessage || STATUS_CODES[status] || 'unknown'}\r\n`;
    for (const [name, v] of fields) {
      if (typeof v === 'object') for (const x of v) head += `${name}: ${x}\r\n`;
      else head += `${name}: ${v}\r\n`;
    }
    if (this.sendDate && !fields.has('date')) head += `date: ${httpDate()}\r\n`;
    const framed = fields.has('content-length') || fields.has('transfer-encoding');
    if (!framed && status >= 200 && status !== 204 && status !== 304) {
      if (endLength >= 0 && this.useChunkedEncodingByDefault) head += `content-length: ${this.hasBody ? endLength : 0}\r\n`;
      else if (this.hasBody && this.useChunkedEncodingByDefault && this.req.httpVersionMinor === 1) {
        this.chunked = true;
        head += 'transfer-encoding: chunked\r\n';
      } else if (this.hasBody && this.useChunkedEncodingByDefault) this.keepAlive = false; // HTTP/1.0: the close ends the body
    } else if (framed && fields.has('transfer-encoding')) this.chunked = /(^|,)\s*chunked\s*$/i.test(String(fields.get('transfer-encoding')));
    head += this.keepAlive ? this.conn.keepAliveFields : 'connection: close\r\n';
    this._header = head + CRLF;
  }

  /** Writes the head now if it is still waiting (with data that follows in the same syscall when corked). */
  private sendHead(): void {
    if (this.headWritten || this.destroyed) return;
    this.headWritten = true;
    this.cork();
    this.socket.write(this._header!, 'latin1');
  }

  /** Everything written in this tick leaves in one writev. */
  private cork(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    process.nextTick(uncork, this);
  }

  uncorkNow(): void {
    if (!this.corked) return;
    this.corked = false;
    this.socket.uncork();
  }

  write(chunk: Buffer | string, encoding?: BufferEncoding | (() => void), cb?: () => void): boolean {
    if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    if (this.writableEnded || this.destroyed) return false;
    if (this._header === null) this.renderHead(-1);
    this.sendHead();
    const len = typeof chunk === 'string' ? Buffer.byteLength(chunk, encoding) : chunk.length;
    if (!this.hasBody || len === 0) {
      if (cb) process.nextTick(cb);
      return true;
    }
    const socket = this.socket;
    if (this.chunked) socket.write(`${len.toString(16)}\r\n`, 'latin1');
    let ok = encoding ? socket.write(chunk, encoding, cb) : socket.write(chunk, cb);
    if (this.chunked) ok = socket.write(CRLF, 'latin1');
    if (!ok && !this.waitingDrain) {
      this.waitingDrain = true;
      socket.once('drain', this.onDrain);
    }
    return ok;
  }

  private readonly onDrain = (): void => {
    this.waitingDrain = false;
    if (!this.destroyed) this.emit('drain');
  };

  end(chunk?: Buffer | string | (() => void), encoding?: BufferEncoding | (() => void), cb?: () => void): this {
    if (typeof chunk === 'function') {
      cb = chunk;
      chunk = undefined;
    } else if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    if (this.writableEnded || this.destroyed) return this;
    const enc = encoding as BufferEncoding | undefined;
    if (this._header === null) {
      const len = chunk === undefined ? 0 : typeof chunk === 'string' ? Buffer.byteLength(chunk, enc) : chunk.length;
      this.renderHead(len);
    }
    if (chunk !== undefined && chunk.length > 0) this.write(chunk, enc);
    else this.sendHead();
    this.writableEnded = true;
    if (cb) this.once('finish', cb);
    const socket = this.socket;
    if (this.chunked && this.hasBody) socket.write(LAST_CHUNK, 'latin1', this.onFlushed);
    else if (socket.writableLength > 0 || this.corked) socket.write(EMPTY, this.onFlushed);
    else process.nextTick(this.onFlushed);
    // The whole response is in: it leaves now, in one writev, rather than at the end of the tick.
    this.uncorkNow();
    return this;
  }

  /** The last bytes reached the kernel: 'finish', then 'close'. */
  private readonly onFlushed = (): void => {
    if (this.writableFinished || this.destroyed) return;
    this.writableFinished = true;
    this.emit('finish');
    this.emitClose();
    this.conn.responseDone(this);
  };

  private emitClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close');
  }

  /** Resets the exchange: the connection closes (a response cut short cannot be framed). */
  destroy(_err?: Error): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.uncorkNow();
    this.socket.destroy();
    process.nextTick(emitCloseOf, this);
    return this;
  }

  /** The connection closed under this response. */
  socketClosed(): void {
    if (this.writableFinished) return;
    this.destroyed = true;
    this.emitClose();
  }

  /** node's API; the HCM's own timers (stream-timeouts.ts) govern streams here. */
  setTimeout(): this {
    return this;
  }

  writeContinue(): void {
    this.socket.write(CONTINUE);
  }

  /** 'close' for a destroyed response (on a later tick, as streams emit it). */
  closeNow(): void {
    this.emitClose();
  }
}

function uncork(res: DownstreamResponse): void {
  res.uncorkNow();
}

function emitCloseOf(res: DownstreamResponse): void {
  res.closeNow();
}
