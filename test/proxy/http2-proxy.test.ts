// HTTP/2 through the proxy on real sockets: h2c prior-knowledge clients on a
// codec_type AUTO listener, HTTP/1.1 <-> HTTP/2 translation both ways, the
// upstream protocol chosen by the cluster's HttpProtocolOptions (explicit,
// use_downstream_protocol_config, legacy http2_protocol_options), one
// multiplexed upstream connection for many requests, a new connection after
// GOAWAY, trailers, SETTINGS from http2_protocol_options and backpressure.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, constants, createServer as createH2Server } from 'node:http2';
import type { ClientHttp2Session, Http2Server, Http2ServerRequest, Http2ServerResponse, IncomingHttpHeaders, ServerHttp2Session } from 'node:http2';
import { createServer as createH1Server } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { Server as NetServer, Socket } from 'node:net';
import { once } from 'node:events';
import type { Proxy } from '../../src/proxy/index.ts';
import type { Upstream } from './helpers.ts';
import { clientAgent, deadPort, get, hcmListener, startProxy, startUpstream, staticCluster } from './helpers.ts';

const HPO = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const explicitH2 = (h2: Record<string, unknown> = {}): Record<string, unknown> => ({
  typed_extension_protocol_options: { [HPO]: { '@type': `type.googleapis.com/${HPO}`, explicit_http_config: { http2_protocol_options: h2 } } },
});

let proxy: Proxy;
let port: number;
let h2OnlyPort: number;
let h2: Http2Server;
let h2Port: number;
let h1: Upstream;
let dual: NetServer;
let dualPort: number;
const h2Sessions: ServerHttp2Session[] = [];
/** Requests the held route has parked, released by the multiplexing tests. */
const parked: Array<() => void> = [];
let parkedArrived: (() => void) | undefined;
let parkedWanted = 0;
/** The slow-reader route: its body is read only after release. */
let releaseReader: (() => void) | undefined;
let readerGotRequest: (() => void) | undefined;
const clients: ClientHttp2Session[] = [];

function onH2Request(req: Http2ServerRequest, res: Http2ServerResponse): void {
  const url = req.url;
  if (url.includes('/held/')) {
    parked.push(() => res.end(JSON.stringify({ session: h2Sessions.indexOf(req.stream.session as ServerHttp2Session) })));
    if (parked.length >= parkedWanted) parkedArrived?.();
    req.resume();
    return;
  }
  if (url.startsWith('/goaway')) {
    res.end('bye');
    req.stream.session?.goaway(constants.NGHTTP2_NO_ERROR);
    return;
  }
  if (url.startsWith('/trailers')) {
    res.addTrailers({ 'x-checksum': 'abc123' });
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('with trailers');
    return;
  }
  if (url.startsWith('/download')) {
    const total = 4 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    res.writeHead(200);
    let sent = 0;
    const pump = (): void => {
      while (sent < total) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
    return;
  }
  if (url.startsWith('/slow-reader')) {
    req.pause();
    releaseReader = () => {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => res.end(String(n)));
      req.resume();
    };
    readerGotRequest?.();
    return;
  }
  let n = 0;
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => {
    n += c.length;
    if (chunks.length < 4) chunks.push(c);
  });
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'h2' });
    res.end(JSON.stringify({ version: req.httpVersion, method: req.method, url, authority: req.headers[':authority'], headers: req.headers, bytes: n, body: n < 1024 ? Buffer.concat(chunks).toString() : '' }));
  });
}

/** An upstream that speaks both HTTP/1.1 and h2c on one port (for use_downstream_protocol_config). */
async function startDual(): Promise<NetServer> {
  const h1s = createH1Server((req: IncomingMessage, res: ServerResponse) => res.end(JSON.stringify({ version: req.httpVersion })));
  const h2s = createH2Server((req, res) => res.end(JSON.stringify({ version: req.httpVersion })));
  const preface = Buffer.from('PRI * HTTP/2.0');
  const server = createNetServer((socket: Socket) => {
    socket.once('data', (chunk: Buffer) => {
      socket.pause();
      socket.unshift(chunk);
      if (chunk.subarray(0, preface.length).equals(preface)) h2s.emit('connection', socket);
      else {
        h1s.emit('connection', socket);
        socket.resume();
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

before(async () => {
  h2 = createH2Server({ settings: { maxConcurrentStreams: 1000 } }, onH2Request);
  h2.on('session', (s: ServerHttp2Session) => h2Sessions.push(s));
  h2.listen(0, '127.0.0.1');
  await once(h2, 'listening');
  h2Port = (h2.address() as { port: number }).port;
  h1 = await startUpstream('h1');
  dual = await startDual();
  dualPort = (dual.address() as { port: number }).port;
  const route = (prefix: string, cluster: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ match: { prefix }, route: { cluster, ...extra } });
  const routes = {
    name: 'local',
    virtual_hosts: [
      {
        name: 'all',
        domains: ['*'],
        routes: [
          route('/h1/', 'h1', { prefix_rewrite: '/' }),
          route('/capped/', 'h2-capped'),
          route('/legacy/', 'h2-legacy'),
          route('/follow/', 'follow'),
          route('/dead/', 'h2-dead'),
          route('/', 'h2', { timeout: '0s' }),
        ],
      },
    ],
  };
  proxy = await startProxy({
    static_resources: {
      clusters: [
        staticCluster('h2', [h2Port], explicitH2({ max_concurrent_streams: 1000 })),
        staticCluster('h2-capped', [h2Port], explicitH2({ max_concurrent_streams: 5 })),
        staticCluster('h2-legacy', [h2Port], { http2_protocol_options: {} }),
        staticCluster('h1', [h1.port]),
        staticCluster('h2-dead', [await deadPort()], explicitH2()),
        staticCluster('follow', [dualPort], { typed_extension_protocol_options: { [HPO]: { '@type': `type.googleapis.com/${HPO}`, use_downstream_protocol_config: { http2_protocol_options: {} } } } }),
      ],
      listeners: [
        hcmListener('auto', routes, { hcm: { codec_type: 'AUTO' } }),
        hcmListener('h2only', routes, { hcm: { codec_type: 'HTTP2', http2_protocol_options: { max_concurrent_streams: 7, initial_stream_window_size: 131072 } } }),
      ],
    },
  });
  port = proxy.listenerPort('auto')!;
  h2OnlyPort = proxy.listenerPort('h2only')!;
});

after(async () => {
  for (const p of parked) p();
  for (const c of clients) c.destroy();
  clientAgent.destroy();
  await proxy.stop();
  await h1.close();
  for (const s of h2Sessions) s.destroy();
  await new Promise((r) => h2.close(r));
  dual.close();
});

function h2client(p = port): ClientHttp2Session {
  const c = connect(`http://127.0.0.1:${p}`);
  c.on('error', () => {});
  clients.push(c);
  return c;
}

interface H2Reply {
  status: number;
  headers: IncomingHttpHeaders;
  trailers: IncomingHttpHeaders | undefined;
  body: string;
}

function h2request(c: ClientHttp2Session, path: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const stream = c.request({ ':path': path, ':method': init.method ?? 'GET', ':authority': 'svc.local', ...init.headers });
    let status = 0;
    let headers: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      status = Number(h[':status']);
      headers = h;
    });
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (d: Buffer) => chunks.push(d));
    stream.on('end', () => resolve({ status, headers, trailers, body: Buffer.concat(chunks).toString() }));
    stream.on('error', reject);
    stream.end(init.body);
  });
}

test('h2c prior knowledge on an AUTO listener reaches an HTTP/2 upstream', async () => {
  const c = h2client();
  const r = await h2request(c, '/echo?q=1', { method: 'POST', body: 'hello h2', headers: { 'x-custom': 'yes' } });
  assert.equal(r.status, 200);
  const echo = JSON.parse(r.body);
  assert.equal(echo.version, '2.0');
  assert.equal(echo.method, 'POST');
  assert.equal(echo.url, '/echo?q=1');
  assert.equal(echo.authority, 'svc.local');
  assert.equal(echo.body, 'hello h2');
  assert.equal(echo.headers['x-custom'], 'yes');
  assert.equal(echo.headers['x-forwarded-proto'], 'http');
  assert.match(echo.headers['x-request-id'], /^[0-9a-f-]{36}$/);
  assert.equal(r.headers['x-upstream'], 'h2');
  assert.equal(r.headers['server'], 'envoy');
  assert.match(String(r.headers['x-envoy-upstream-service-time']), /^\d+$/);
  assert.ok(proxy.stats.get('http.auto.downstream_cx_http2_total') >= 1);
});

test('HTTP/1.1 client to an HTTP/2 upstream and back', async () => {
  const r = await get(port, '/from-h1', { host: 'svc.local', method: 'POST', body: 'one-one' });
  assert.equal(r.status, 200);
  const echo = r.json();
  assert.equal(echo.version, '2.0');
  assert.equal(echo.authority, 'svc.local');
  assert.equal(echo.body, 'one-one');
  assert.equal(echo.headers.connection, undefined);
  assert.equal(r.headers['x-upstream'], 'h2');
  assert.ok(proxy.stats.get('http.auto.downstream_cx_http1_total') >= 1);
});

test('connection-specific HTTP/1.1 headers never reach an HTTP/2 upstream', async () => {
  const r = await get(port, '/conn-headers', { host: 'svc.local', headers: { 'http2-settings': 'AAMAAABkAAQAoAAAAAIAAAAA', 'proxy-connection': 'keep-alive', te: 'gzip' } });
  assert.equal(r.status, 200);
  const echo = r.json();
  assert.equal(echo.version, '2.0');
  for (const h of ['http2-settings', 'proxy-connection', 'te', 'connection', 'host']) assert.equal(echo.headers[h], undefined, h);
});

test('HTTP/2 client to an HTTP/1.1 upstream: :authority becomes Host, no pseudo-headers', async () => {
  const c = h2client();
  const r = await h2request(c, '/h1/path', { method: 'PUT', body: 'to-h1' });
  assert.equal(r.status, 200);
  const echo = JSON.parse(r.body);
  assert.equal(echo.upstream, 'h1');
  assert.equal(echo.url, '/path');
  assert.equal(echo.method, 'PUT');
  assert.equal(echo.headers.host, 'svc.local');
  assert.equal(echo.body, 'to-h1');
  assert.ok(Object.keys(echo.headers).every((k: string) => !k.startsWith(':')));
});

test('legacy cluster.http2_protocol_options selects HTTP/2 upstream', async () => {
  const r = await get(port, '/legacy/x', { host: 'svc.local' });
  assert.equal(r.json().version, '2.0');
});

test('use_downstream_protocol_config follows the downstream protocol', async () => {
  assert.equal((await get(port, '/follow/a', { host: 'svc.local' })).json().version, '1.1');
  const c = h2client();
  assert.equal(JSON.parse((await h2request(c, '/follow/b')).body).version, '2.0');
});

async function parkRequests(n: number, prefix: string): Promise<Array<Promise<number>>> {
  parked.length = 0;
  parkedWanted = n;
  const arrived = new Promise<void>((r) => (parkedArrived = r));
  const replies: Array<Promise<number>> = [];
  for (let i = 0; i < n; i++) replies.push(get(port, `${prefix}held/${i}`, { host: 'svc.local' }).then((r) => r.json().session as number));
  await arrived;
  return replies;
}

test('N concurrent requests share one multiplexed upstream connection', async () => {
  const before = proxy.stats.get('cluster.h2.upstream_cx_http2_total');
  const sessionsBefore = h2Sessions.length;
  const replies = await parkRequests(20, '/');
  assert.equal(parked.length, 20);
  for (const p of parked) p();
  const sessions = new Set(await Promise.all(replies));
  assert.equal(sessions.size, 1);
  // Earlier tests may have opened the cluster's connection already; this one adds none or one.
  assert.ok(proxy.stats.get('cluster.h2.upstream_cx_http2_total') - before <= 1);
  assert.ok(h2Sessions.length - sessionsBefore <= 1);
  assert.ok(proxy.stats.get('cluster.h2.upstream_rq_total') >= 20);
});

test('the cluster max_concurrent_streams caps streams per connection (20 streams, 5 each -> 4 connections)', async () => {
  const replies = await parkRequests(20, '/capped/');
  for (const p of parked) p();
  const sessions = new Set(await Promise.all(replies));
  assert.equal(sessions.size, 4);
  assert.equal(proxy.stats.get('cluster.h2-capped.upstream_cx_http2_total'), 4);
});

test('GOAWAY from the upstream: the next request opens a new connection', async () => {
  const c = h2client();
  assert.equal((await h2request(c, '/goaway')).body, 'bye');
  const total = proxy.stats.get('cluster.h2.upstream_cx_http2_total');
  const r = await h2request(c, '/after-goaway');
  assert.equal(r.status, 200);
  assert.equal(proxy.stats.get('cluster.h2.upstream_cx_http2_total'), total + 1);
  assert.ok(proxy.stats.get('cluster.h2.upstream_cx_close_notify') >= 1);
});

test('response trailers pass through to an HTTP/2 client', async () => {
  const c = h2client();
  const r = await h2request(c, '/trailers');
  assert.equal(r.body, 'with trailers');
  assert.equal(r.trailers?.['x-checksum'], 'abc123');
});

test('http2_protocol_options set the listener SETTINGS (max_concurrent_streams, initial window)', async () => {
  const c = h2client(h2OnlyPort);
  await once(c, 'remoteSettings');
  assert.equal(c.remoteSettings.maxConcurrentStreams, 7);
  assert.equal(c.remoteSettings.initialWindowSize, 131072);
  const r = await h2request(c, '/on-h2-only');
  assert.equal(JSON.parse(r.body).version, '2.0');
});

test('a 4 MiB streamed download arrives whole', async () => {
  const c = h2client();
  const r = await h2request(c, '/download');
  assert.equal(r.status, 200);
  assert.equal(r.body.length, 4 * 1024 * 1024);
});

test('upload backpressure: a slow upstream reader stalls the client instead of the proxy buffering it all', async () => {
  const c = h2client();
  const gotRequest = new Promise<void>((r) => (readerGotRequest = r));
  const stream = c.request({ ':path': '/slow-reader', ':method': 'POST', ':authority': 'svc.local' });
  const chunk = Buffer.alloc(64 * 1024, 0x62);
  const limit = 64 * 1024 * 1024;
  let written = 0;
  // Write until the client's window is exhausted and nothing drains for a while.
  await new Promise<void>((resolve) => {
    const pump = (): void => {
      while (written < limit) {
        written += chunk.length;
        if (!stream.write(chunk)) {
          const stalled = setTimeout(resolve, 500);
          stream.once('drain', () => {
            clearTimeout(stalled);
            pump();
          });
          return;
        }
      }
      resolve();
    };
    pump();
  });
  await gotRequest;
  // Each hop holds about a window (1 MiB) plus socket buffers; far below what was offered.
  assert.ok(written < 24 * 1024 * 1024, `client could write ${written} bytes with nobody reading`);
  stream.removeAllListeners('drain');
  const body = new Promise<string>((resolve) => {
    const chunks: Buffer[] = [];
    stream.on('data', (d: Buffer) => chunks.push(d));
    stream.on('end', () => resolve(Buffer.concat(chunks).toString()));
  });
  releaseReader!();
  stream.end();
  assert.equal(Number(await body), written);
});

test('an HTTP/2 upstream that refuses connections: 503 UF, connect failure counted', async () => {
  const r = await get(port, '/dead/x', { host: 'svc.local' });
  assert.equal(r.status, 503);
  assert.match(r.body, /connection failure/);
  assert.equal(proxy.stats.get('cluster.h2-dead.upstream_cx_connect_fail'), 1);
  const c = h2client();
  const r2 = await h2request(c, '/dead/y');
  assert.equal(r2.status, 503);
  assert.equal(proxy.stats.get('cluster.h2-dead.upstream_cx_active'), 0);
});
