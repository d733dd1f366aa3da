// The HCM's codecs: which one serves a connection, and the HTTP/2 one.
// codec_type AUTO decides per connection as Envoy does: ALPN when TLS
// negotiated it, else whether the first bytes are the HTTP/2 client
// preface (h2c with prior knowledge). Bytes read to decide go back into the
// socket, so the chosen codec parses the connection from its first byte.
// HTTP/2 is node:http2's server in compatibility mode: its request and
// response objects stand in for node:http's in the filter chain (the same
// headers/url/method/pipe/setHeader/writeHead/end surface), with
// `:authority` copied into `host` so routing and HTTP/1.1 upstreams see one
// form.

import { createServer as createHttp2Server } from 'node:http2';
import type { Http2Server, Http2ServerRequest, Http2ServerResponse, ServerHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { http2Settings } from '../../../http/http2-options.ts';
import type { HcmSettings } from './hcm-settings.ts';

export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/**
 * Hands `socket` to `onHttp1` or `onHttp2` once ALPN or its first bytes
 * say which protocol it speaks. A connection that closes first is dropped.
 */
export function detectCodec(socket: Socket, onHttp1: (socket: Socket) => void, onHttp2: (socket: Socket) => void): void {
  const alpn = (socket as TLSSocket).alpnProtocol;
  if (alpn === 'h2') return onHttp2(socket);
  if (alpn === 'http/1.1' || alpn === 'http/1.0') return onHttp1(socket);
  let seen: Buffer | undefined;
  const onError = (): void => void socket.destroy();
  const decide = (http2: boolean): void => {
    socket.off('data', onData);
    socket.off('error', onError);
    socket.pause();
    socket.unshift(seen!);
    if (http2) onHttp2(socket);
    else {
      onHttp1(socket);
      socket.resume();
    }
  };
  const onData = (chunk: Buffer): void => {
    seen = seen ? Buffer.concat([seen, chunk]) : chunk;
    const n = Math.min(seen.length, H2_PREFACE.length);
    if (seen.compare(H2_PREFACE, 0, n, 0, n) !== 0) decide(false);
    else if (n === H2_PREFACE.length) decide(true);
  };
  socket.on('error', onError);
  socket.on('data', onData);
}

export type Http2RequestHandler = (req: Http2ServerRequest, res: Http2ServerResponse) => void;

/**
 * node:http2's server for the HCM: SETTINGS from http2_protocol_options
 * (max_concurrent_streams, initial windows), the header list limit from
 * max_request_headers_kb, and sessions tracked so a drain can GOAWAY them.
 */
export function createHttp2Codec(settings: HcmSettings, sessions: Set<ServerHttp2Session>, onRequest: Http2RequestHandler): Http2Server {
  const o = settings.http2;
  const server = createHttp2Server(
    {
      settings: http2Settings(o, settings.maxRequestHeadersKb * 1024),
      maxSessionMemory: 64,
      // A peer may hold this many streams past our SETTINGS before we reset them.
      maxSessionInvalidFrames: 1000,
    },
    onRequest,
  );
  server.on('session', (session: ServerHttp2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    session.on('error', () => {});
    if (o.initialConnectionWindowSize > 65535) session.setLocalWindowSize(o.initialConnectionWindowSize);
    // common_http_protocol_options.idle_timeout: a quiet connection gets GOAWAY.
    if (settings.idleTimeoutMs > 0) session.setTimeout(settings.idleTimeoutMs, () => session.close());
  });
  return server;
}
