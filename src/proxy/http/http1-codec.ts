// Small, strict HTTP/1.1 parsers: responses for the upstream connection
// pool (http1-pool.ts) and requests for the HCM's raw downstream codec
// (http1-server-codec.ts). Heads: start line and headers (CRLF only, no
// obs-fold, token names, no control characters in values, bounded size and
// count). Bodies share one state machine with the framing of RFC 9112 6.3:
// Transfer-Encoding: chunked (chunk extensions skipped, trailers parsed) or
// Content-Length (all copies must agree). Responses: no body for HEAD, 1xx,
// 204 and 304, else read until close; a response that declares both is
// read as chunked and its connection is not reused. Requests: no framing
// means no body; one that declares both is refused (request smuggling
// defence), as is any coding but chunked. Errors are thrown as Error with
// code 'HPE_*' like node's llhttp, so callers treat both alike.

/** Response head limit (Envoy's max_response_headers_kb default is 60). */
export const MAX_RESPONSE_HEAD = 60 * 1024;
/** Chunk-size line limit (digits plus extensions). */
const MAX_CHUNK_LINE = 4096;
const MAX_HEADERS = 100;

export type ResponseHeaders = Record<string, string | string[]>;

export interface ResponseHead {
  readonly statusCode: number;
  readonly statusMessage: string;
  readonly httpMinor: number;
  readonly headers: ResponseHeaders;
  /** Whether the connection may carry another request after this response. */
  readonly keepAlive: boolean;
}

/** What a parser reports after the head: body bytes, trailers, the end of the message. */
export interface BodyEvents {
  onBody(chunk: Buffer): void;
  onTrailers(trailers: ResponseHeaders): void;
  /** The message is complete; `rest` is any bytes after it (a protocol error for a pool that does not pipeline; the next requests for a server). */
  onComplete(rest: Buffer | undefined): void;
}

export interface ParserEvents extends BodyEvents {
  onHead(head: ResponseHead): void;
}

// Node drops later copies of these (IncomingMessage._addHeaderLine); the rest join with ', '.
const SINGLE = new Set(['content-type', 'content-length', 'user-agent', 'referer', 'host', 'authorization', 'proxy-authorization', 'if-modified-since', 'if-unmodified-since', 'from', 'location', 'max-forwards', 'retry-after', 'etag', 'last-modified', 'server', 'age', 'expires']);

/** RFC 9110 token characters. */
const TOKEN = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~") TOKEN[c.charCodeAt(0)] = 1;
for (let c = 48; c < 58; c++) TOKEN[c] = 1;
for (let c = 65; c < 91; c++) TOKEN[c] = 1;
for (let c = 97; c < 123; c++) TOKEN[c] = 1;

// Field values: no CTLs except HTAB (obs-text allowed).
// eslint-disable-next-line no-control-regex
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: ([^\r\n]*))?$/;

export function parseError(code: string, message: string): NodeJS.ErrnoException {
  const err = new Error(message) as NodeJS.ErrnoException;
  err.code = code;
  return err;
}

export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 127 || TOKEN[c] !== 1) return false;
  }
  return true;
}

/**
 * Header names seen before, validated and lower-cased: most messages repeat
 * the same few names, so a hit saves the token check and toLowerCase().
 */
const knownNames = new Map<string, string>();
const MAX_KNOWN_NAMES = 512;

function lowerCaseName(rawName: string): string {
  let name = knownNames.get(rawName);
  if (name !== undefined) return name;
  if (!isToken(rawName)) throw parseError('HPE_INVALID_HEADER_TOKEN', 'invalid header name');
  name = rawName.toLowerCase();
  if (knownNames.size < MAX_KNOWN_NAMES) knownNames.set(rawName, name);
  return name;
}

/** Parses header lines (after the start line) into node's IncomingHttpHeaders shape. */
function parseFields(lines: string[], from: number, headers: ResponseHeaders, contentLengths: string[] | undefined, rawHeaders?: string[]): void {
  if (lines.length - from > MAX_HEADERS) throw parseError('HPE_HEADER_OVERFLOW', 'too many headers');
  for (let i = from; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(':');
    if (colon <= 0) throw parseError('HPE_INVALID_HEADER_TOKEN', 'invalid header line');
    const rawName = line.slice(0, colon);
    const name = lowerCaseName(rawName);
    const value = line.slice(colon + 1).trim();
    if (BAD_VALUE.test(value)) throw parseError('HPE_INVALID_HEADER_TOKEN', 'invalid header value');
    if (contentLengths && name === 'content-length') contentLengths.push(value);
    rawHeaders?.push(rawName, value);
    const cur = headers[name];
    if (cur === undefined) headers[name] = name === 'set-cookie' ? [value] : value;
    else if (name === 'set-cookie') (cur as string[]).push(value);
    else if (!SINGLE.has(name)) headers[name] = `${cur as string}, ${value}`;
  }
}

/** The one length all Content-Length values agree on (`5, 5` is 5; `5, 6` is an error). */
function agreedLength(lengths: readonly string[]): string {
  if (lengths.length === 1 && DIGITS.test(lengths[0])) return lengths[0];
  const values = lengths.flatMap((v) => v.split(',').map((x) => x.trim()));
  for (const v of values) if (!DIGITS.test(v) || v !== values[0]) throw parseError('HPE_INVALID_CONTENT_LENGTH', 'invalid content-length');
  return values[0];
}

const DIGITS = /^\d{1,15}$/;
// Connection header tokens (RFC 9110 7.6.1).
const CLOSE_TOKEN = /(^|,)\s*close\s*(,|$)/i;
const KEEP_ALIVE_TOKEN = /(^|,)\s*keep-alive\s*(,|$)/i;
const UPGRADE_TOKEN = /(^|,)\s*upgrade\s*(,|$)/i;

const ST = { HEAD: 0, LENGTH: 1, CHUNK_SIZE: 2, CHUNK_DATA: 3, CHUNK_DATA_CRLF: 4, TRAILERS: 5, CLOSE: 6, DONE: 7, DEAD: 8 } as const;
type State = (typeof ST)[keyof typeof ST];

/**
 * The parts both directions share: the head found and bounded, then the
 * body state machine. A subclass parses the head text and picks the framing
 * with bodyFraming().
 */
abstract class MessageParser {
  private readonly body: BodyEvents;
  protected state: State = ST.DONE;
  private pending: Buffer | undefined;
  private remaining = 0;
  private trailerLines: string[] = [];
  /** Head size limit in bytes (start line and headers). */
  protected headLimit = MAX_RESPONSE_HEAD;
  /** Keep-alive as the head decided. */
  keepAlive = false;

  constructor(body: BodyEvents) {
    this.body = body;
  }

  protected abstract onHeadText(text: string): void;

  /** Ready for the next message's head. */
  protected begin(): void {
    this.state = ST.HEAD;
    this.pending = undefined;
    this.keepAlive = false;
  }

  /** After the head: no body, a chunked one, `length` bytes, or (responses only) until close. */
  protected bodyFraming(framing: 'none' | 'chunked' | 'length' | 'close', length = 0): void {
    if (framing === 'none') this.state = ST.DONE;
    else if (framing === 'chunked') this.state = ST.CHUNK_SIZE;
    else if (framing === 'length') {
      this.remaining = length;
      this.state = length === 0 ? ST.DONE : ST.LENGTH;
    } else this.state = ST.CLOSE;
  }

  /** The state, unnarrowed: event handlers may change it. */
  private is(st: State): boolean {
    return this.state === st;
  }

  /** Stops parsing (the connection is being destroyed); start() revives it. */
  reset(): void {
    this.state = ST.DEAD;
    this.pending = undefined;
  }

  get idle(): boolean {
    return this.state === ST.DONE;
  }

  /** Part of a head has arrived and the rest is awaited. */
  get midHead(): boolean {
    return this.state === ST.HEAD && this.pending !== undefined;
  }

  /** Whether the body runs until the connection closes. */
  get closeDelimited(): boolean {
    return this.state === ST.CLOSE;
  }

  /** The peer closed: completes a close-delimited body, else the message was cut short. */
  finish(): boolean {
    if (this.state === ST.CLOSE) {
      this.state = ST.DONE;
      this.body.onComplete(undefined);
      return true;
    }
    return this.state === ST.DONE;
  }

  execute(data: Buffer): void {
    if (this.pending) {
      data = Buffer.concat([this.pending, data]);
      this.pending = undefined;
    }
    let off = 0;
    while (off < data.length && this.state !== ST.DEAD) {
      switch (this.state as State) {
        case ST.HEAD: {
          const end = data.indexOf('\r\n\r\n', off, 'latin1');
          if (end < 0) {
            if (data.length - off > this.headLimit) throw parseError('HPE_HEADER_OVERFLOW', 'headers too large');
            this.pending = data.subarray(off);
            return;
          }
          if (end - off > this.headLimit) throw parseError('HPE_HEADER_OVERFLOW', 'headers too large');
          const text = data.toString('latin1', off, end);
          off = end + 4;
          this.onHeadText(text);
          if (this.is(ST.DONE)) {
            this.complete(data, off);
            return;
          }
          break;
        }
        case ST.LENGTH: {
          const n = Math.min(this.remaining, data.length - off);
          this.remaining -= n;
          const chunk = data.subarray(off, off + n);
          off += n;
          this.body.onBody(chunk);
          if (this.remaining === 0 && this.is(ST.LENGTH)) this.complete(data, off);
          if (this.is(ST.DONE)) return;
          break;
        }
        case ST.CHUNK_SIZE: {
          const eol = data.indexOf('\r\n', off, 'latin1');
          if (eol < 0) {
            if (data.length - off > MAX_CHUNK_LINE) throw parseError('HPE_INVALID_CHUNK_SIZE', 'chunk size line too long');
            this.pending = data.subarray(off);
            return;
          }
          const line = data.toString('latin1', off, eol);
          off = eol + 2;
          const semi = line.indexOf(';');
          const hex = semi < 0 ? line : line.slice(0, semi);
          // 1 to 12 hex digits (no sign, no whitespace, no 0x): below 2^48.
          if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) throw parseError('HPE_INVALID_CHUNK_SIZE', 'invalid chunk size');
          if (semi >= 0 && BAD_VALUE.test(line)) throw parseError('HPE_INVALID_CHUNK_SIZE', 'invalid chunk extension');
          const size = parseInt(hex, 16);
          if (size === 0) {
            this.state = ST.TRAILERS;
            this.trailerLines = [];
          } else {
            this.remaining = size;
            this.state = ST.CHUNK_DATA;
          }
          break;
        }
        case ST.CHUNK_DATA: {
          const n = Math.min(this.remaining, data.length - off);
          this.remaining -= n;
          const chunk = data.subarray(off, off + n);
          off += n;
          this.body.onBody(chunk);
          if (this.remaining === 0 && this.state === ST.CHUNK_DATA) this.state = ST.CHUNK_DATA_CRLF;
          break;
        }
        case ST.CHUNK_DATA_CRLF: {
          if (data.length - off < 2) {
            this.pending = data.subarray(off);
            return;
          }
          if (data[off] !== 13 || data[off + 1] !== 10) throw parseError('HPE_STRICT', 'missing CRLF after chunk data');
          off += 2;
          this.state = ST.CHUNK_SIZE;
          break;
        }
        case ST.TRAILERS: {
          const eol = data.indexOf('\r\n', off, 'latin1');
          if (eol < 0) {
            if (data.length - off > MAX_RESPONSE_HEAD) throw parseError('HPE_HEADER_OVERFLOW', 'trailers too large');
            this.pending = data.subarray(off);
            return;
          }
          const line = data.toString('latin1', off, eol);
          off = eol + 2;
          if (line.length > 0) {
            this.trailerLines.push(line);
            if (this.trailerLines.length > MAX_HEADERS) throw parseError('HPE_HEADER_OVERFLOW', 'too many trailers');
            break;
          }
          if (this.trailerLines.length > 0) {
            if (this.trailerLines.some((l) => l.includes('\r') || l.includes('\n'))) throw parseError('HPE_STRICT', 'invalid trailer');
            const trailers: ResponseHeaders = {};
            parseFields(this.trailerLines, 0, trailers, undefined);
            this.trailerLines = [];
            this.body.onTrailers(trailers);
          }
          if (this.state === ST.TRAILERS) this.complete(data, off);
          return;
        }
        case ST.CLOSE:
          this.body.onBody(off === 0 ? data : data.subarray(off));
          return;
        case ST.DEAD:
          return;
        case ST.DONE:
          // Bytes nobody asked for (no request in flight).
          throw parseError('HPE_UNEXPECTED_DATA', 'unexpected data from upstream');
      }
    }
  }

  private complete(data: Buffer, off: number): void {
    this.state = ST.DONE;
    this.body.onComplete(off < data.length ? data.subarray(off) : undefined);
  }
}

/** One response at a time on one connection. Call `start(method)` before each response. */
export class ResponseParser extends MessageParser {
  private readonly events: ParserEvents;
  private method = 'GET';

  constructor(events: ParserEvents) {
    super(events);
    this.events = events;
  }

  start(method: string): void {
    this.method = method;
    this.begin();
  }

  protected onHeadText(text: string): void {
    // Split on CRLF only: a bare CR or LF is left inside a line, where the
    // status-line pattern, the token check on names and the CTL check on values refuse it.
    const lines = text.split('\r\n');
    const m = STATUS_LINE.exec(lines[0]);
    if (!m) throw parseError('HPE_INVALID_CONSTANT', 'invalid response status line');
    for (let i = 1; i < lines.length; i++) {
      const c = lines[i].charCodeAt(0);
      if (c === 32 || c === 9) throw parseError('HPE_INVALID_HEADER_TOKEN', 'obsolete line folding in response');
    }
    const statusCode = Number(m[2]);
    const httpMinor = Number(m[1]);
    const headers: ResponseHeaders = {};
    const lengths: string[] = [];
    parseFields(lines, 1, headers, lengths);
    if (statusCode < 100) throw parseError('HPE_INVALID_STATUS', 'invalid response status');
    if (statusCode < 200) {
      // 100 Continue and other interim responses: skip, the final one follows.
      if (statusCode === 101) throw parseError('HPE_UNEXPECTED_UPGRADE', 'unexpected 101 on a non-upgrade request');
      return;
    }
    const connection = headers.connection as string | undefined;
    let keepAlive = httpMinor === 1 ? connection === undefined || !CLOSE_TOKEN.test(connection) : connection !== undefined && KEEP_ALIVE_TOKEN.test(connection);
    const te = headers['transfer-encoding'];
    let chunked = false;
    if (te !== undefined) {
      const codings = (te as string).toLowerCase().split(',').map((s) => s.trim());
      // Chunked must be the final coding; anything else means read until close (RFC 9112 6.3 item 4).
      if (codings[codings.length - 1] === 'chunked') chunked = true;
      if (codings.slice(0, -1).includes('chunked')) throw parseError('HPE_INVALID_TRANSFER_ENCODING', 'chunked applied twice');
      // Both framings: TE wins and the connection is not reused.
      if (lengths.length > 0) keepAlive = false;
    }
    let length = -1;
    if (!chunked && te === undefined && lengths.length > 0) {
      const agreed = agreedLength(lengths);
      length = Number(agreed);
      headers['content-length'] = agreed;
    }
    const noBody = this.method === 'HEAD' || statusCode === 204 || statusCode === 304;
    this.keepAlive = keepAlive;
    this.events.onHead({ statusCode, statusMessage: m[3] ?? '', httpMinor, headers, keepAlive });
    if (this.state !== ST.HEAD) return; // the head handler reset us
    if (noBody) this.bodyFraming('none');
    else if (chunked) this.bodyFraming('chunked');
    else if (length >= 0) this.bodyFraming('length', length);
    else {
      this.keepAlive = false;
      this.bodyFraming('close');
    }
  }
}

export interface RequestHead {
  readonly method: string;
  /** The request target as sent (origin-form path, absolute-form URL, authority for CONNECT, `*`). */
  readonly url: string;
  readonly httpMinor: number;
  readonly headers: ResponseHeaders;
  /** Names and values as received, alternating (node's rawHeaders). */
  readonly rawHeaders: string[];
  /** Whether the connection may carry another request after this one's response. */
  readonly keepAlive: boolean;
  /** CONNECT, or `Upgrade` with `Connection: upgrade`: the bytes after the head leave HTTP. */
  readonly upgrade: boolean;
  /** Neither Content-Length nor Transfer-Encoding (and no upgrade): the request is complete with its head. */
  readonly bodyless: boolean;
}

export interface RequestParserEvents extends BodyEvents {
  onHead(head: RequestHead): void;
}

const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) HTTP\/1\.([01])$/;

/**
 * One request at a time on one downstream connection. Call `start()` before
 * each request; `headLimit` bytes of head at most (max_request_headers_kb).
 * An upgrade request ends at its head: what follows is the upgraded stream.
 */
export class RequestParser extends MessageParser {
  private readonly events: RequestParserEvents;

  constructor(events: RequestParserEvents, headLimit: number) {
    super(events);
    this.events = events;
    this.headLimit = headLimit;
  }

  start(): void {
    this.begin();
  }

  protected onHeadText(text: string): void {
    // RFC 9112 2.2: empty lines before the request line are ignored.
    let from = 0;
    while (text.startsWith('\r\n', from)) from += 2;
    const lines = (from ? text.slice(from) : text).split('\r\n');
    const m = REQUEST_LINE.exec(lines[0]);
    if (!m) throw parseError('HPE_INVALID_CONSTANT', 'invalid request line');
    for (let i = 1; i < lines.length; i++) {
      const c = lines[i].charCodeAt(0);
      if (c === 32 || c === 9) throw parseError('HPE_INVALID_HEADER_TOKEN', 'obsolete line folding in request');
    }
    const method = m[1];
    const httpMinor = Number(m[3]);
    const headers: ResponseHeaders = {};
    const rawHeaders: string[] = [];
    const lengths: string[] = [];
    parseFields(lines, 1, headers, lengths, rawHeaders);
    const connection = headers.connection as string | undefined;
    const keepAlive = httpMinor === 1 ? connection === undefined || !CLOSE_TOKEN.test(connection) : connection !== undefined && KEEP_ALIVE_TOKEN.test(connection);
    const upgrade = method === 'CONNECT' || (headers.upgrade !== undefined && connection !== undefined && UPGRADE_TOKEN.test(connection));
    const te = headers['transfer-encoding'];
    let framing: 'none' | 'chunked' | 'length' = 'none';
    let length = 0;
    if (te !== undefined) {
      // Smuggling defences: only `chunked`, never together with a length.
      if ((te as string).toLowerCase().trim() !== 'chunked') throw parseError('HPE_INVALID_TRANSFER_ENCODING', 'unsupported transfer-encoding');
      if (lengths.length > 0) throw parseError('HPE_UNEXPECTED_CONTENT_LENGTH', 'both content-length and transfer-encoding');
      framing = 'chunked';
    } else if (lengths.length > 0) {
      const agreed = agreedLength(lengths);
      length = Number(agreed);
      headers['content-length'] = agreed;
      framing = 'length';
    }
    this.keepAlive = keepAlive;
    this.events.onHead({ method, url: m[2], httpMinor, headers, rawHeaders, keepAlive, upgrade, bodyless: framing === 'none' && !upgrade });
    if (this.state !== ST.HEAD) return; // the head handler reset us
    // An upgrade's body is the upgraded stream: the server takes the socket now.
    this.bodyFraming(upgrade ? 'none' : framing, length);
  }
}
