// The raw-socket HTTP/1.1 upstream codec: the strict response parser on
// its own (framing, limits, malformed input, smuggling defences), and the
// connection pool through the proxy against raw TCP upstreams that send
// exactly the bytes under test (keep-alive reuse, chunked, close-delimited,
// 1xx, HEAD/204/304, bad responses -> 503, request framing on the wire).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { once } from 'node:events';
import type { Proxy } from '../../src/proxy/index.ts';
import type { ResponseHead, ResponseHeaders } from '../../src/proxy/http/http1-codec.ts';
import { MAX_RESPONSE_HEAD, ResponseParser } from '../../src/proxy/http/http1-codec.ts';
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import type { Upstream } from './helpers.ts';
import { get, hcmListener, startProxy, startUpstream, staticCluster } from './helpers.ts';

interface Parsed {
  heads: ResponseHead[];
  body: Buffer[];
  trailers: ResponseHeaders | undefined;
  complete: number;
  rest: Buffer | undefined;
}

function parser(method = 'GET'): { p: ResponseParser; out: Parsed } {
  const out: Parsed = { heads: [], body: [], trailers: undefined, complete: 0, rest: undefined };
  const p = new ResponseParser({
    onHead: (h) => out.heads.push(h),
    onBody: (c) => out.body.push(Buffer.from(c)),
    onTrailers: (t) => (out.trailers = t),
    onComplete: (rest) => {
      out.complete++;
      out.rest = rest;
    },
  });
  p.start(method);
  return { p, out };
}

/** Feeds `raw` whole and byte by byte; both must give the same result. */
function parse(raw: string, method = 'GET'): Parsed {
  const whole = parser(method);
  whole.p.execute(Buffer.from(raw, 'latin1'));
  const bytes = parser(method);
  for (const b of Buffer.from(raw, 'latin1')) bytes.p.execute(Buffer.from([b]));
  assert.deepEqual(Buffer.concat(bytes.out.body), Buffer.concat(whole.out.body));
  assert.equal(bytes.out.complete, whole.out.complete);
  assert.deepEqual(bytes.out.heads, whole.out.heads);
  return whole.out;
}

function parseThrows(raw: string, code: string | RegExp, method = 'GET'): void {
  const { p } = parser(method);
  assert.throws(() => p.execute(Buffer.from(raw, 'latin1')), (err: NodeJS.ErrnoException) => (typeof code === 'string' ? err.code === code : code.test(err.code ?? '')));
}

test('parser: content-length body, split at every byte', () => {
  const out = parse('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nhello');
  assert.equal(out.heads[0].statusCode, 200);
  assert.equal(out.heads[0].statusMessage, 'OK');
  assert.equal(out.heads[0].headers['x-a'], '1, 2');
  assert.deepEqual(out.heads[0].headers['set-cookie'], ['a=1', 'b=2']);
  assert.equal(Buffer.concat(out.body).toString(), 'hello');
  assert.equal(out.complete, 1);
  assert.equal(out.heads[0].keepAlive, true);
});

test('parser: chunked with extensions and trailers', () => {
  const out = parse('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nGrpc-Status: 0\r\nX-T: a\r\n\r\n');
  assert.equal(Buffer.concat(out.body).toString(), 'hello0123456789');
  assert.deepEqual(out.trailers, { 'grpc-status': '0', 'x-t': 'a' });
  assert.equal(out.complete, 1);
});

test('parser: HEAD, 204 and 304 have no body whatever the headers say', () => {
  assert.equal(parse('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n', 'HEAD').complete, 1);
  assert.equal(parse('HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n').complete, 1);
  assert.equal(parse('HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n').complete, 1);
});

test('parser: 1xx interim responses are skipped; 101 without an upgrade is an error', () => {
  const out = parse('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  assert.equal(out.heads.length, 1);
  assert.equal(out.heads[0].statusCode, 200);
  parseThrows('HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n', 'HPE_UNEXPECTED_UPGRADE');
});

test('parser: close-delimited body ends at finish(); HTTP/1.0 is not kept alive by default', () => {
  const { p, out } = parser();
  p.execute(Buffer.from('HTTP/1.0 200 OK\r\n\r\nabc'));
  p.execute(Buffer.from('def'));
  assert.equal(out.complete, 0);
  assert.equal(p.closeDelimited, true);
  assert.equal(p.finish(), true);
  assert.equal(out.complete, 1);
  assert.equal(Buffer.concat(out.body).toString(), 'abcdef');
  assert.equal(p.keepAlive, false);
  assert.equal(parse('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n').heads[0].keepAlive, true);
  assert.equal(parse('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n').heads[0].keepAlive, false);
});

test('parser: smuggling defences on content-length and transfer-encoding', () => {
  parseThrows('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello', 'HPE_INVALID_CONTENT_LENGTH');
  parseThrows('HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello', 'HPE_INVALID_CONTENT_LENGTH');
  parseThrows('HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello', 'HPE_INVALID_CONTENT_LENGTH');
  parseThrows('HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\nhello', 'HPE_INVALID_CONTENT_LENGTH');
  // Agreeing duplicates are one length.
  assert.equal(Buffer.concat(parse('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok').body).toString(), 'ok');
  // Both framings: chunked wins and the connection is not reused.
  const { p, out } = parser();
  p.execute(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n'));
  assert.equal(out.complete, 1);
  assert.equal(Buffer.concat(out.body).toString(), 'ok');
  assert.equal(p.keepAlive, false);
  // A coding other than chunked last: read until close.
  const g = parser();
  g.p.execute(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxyz'));
  assert.equal(g.p.closeDelimited, true);
  // chunked anywhere but last is refused (llhttp lets it through to read-until-close; we are stricter).
  parseThrows('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', 'HPE_INVALID_TRANSFER_ENCODING');
  parseThrows('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n', 'HPE_INVALID_TRANSFER_ENCODING');
});

test('parser: malformed heads and chunks are errors', () => {
  parseThrows('HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN');
  parseThrows('HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n', /^HPE_/);
  parseThrows('HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n', /^HPE_/);
  parseThrows('HTTP/1.1 200 OK\r\nX-A: a\nb\r\n\r\n', /^HPE_/);
  parseThrows('HTTP/1.1 200 OK\r\nX-A\n: b\r\n\r\n', /^HPE_/);
  parseThrows('HTTP/1.1 200 OK\r\n\nX-A: b\r\n\r\n', /^HPE_/);
  parseThrows('HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN');
  parseThrows('HTTP/1.1 200 OK\r\n: 1\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN');
  parseThrows('HTTP/1.1 200 OK\r\nX-A: a\x00b\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN');
  parseThrows('HTTP/2.0 200 OK\r\n\r\n', 'HPE_INVALID_CONSTANT');
  parseThrows('HTTP/1.1 2000 OK\r\n\r\n', 'HPE_INVALID_CONSTANT');
  parseThrows('ICY 200 OK\r\n\r\n', 'HPE_INVALID_CONSTANT');
  parseThrows('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n', 'HPE_INVALID_CHUNK_SIZE');
  parseThrows('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\n', 'HPE_INVALID_CHUNK_SIZE');
  parseThrows('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\n', 'HPE_INVALID_CHUNK_SIZE');
  parseThrows('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n', 'HPE_INVALID_CHUNK_SIZE');
  parseThrows('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX0\r\n\r\n', 'HPE_STRICT');
  parseThrows(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(MAX_RESPONSE_HEAD)}\r\n\r\n`, 'HPE_HEADER_OVERFLOW');
  parseThrows(`HTTP/1.1 200 OK\r\n${'X-A: 1\r\n'.repeat(101)}\r\n`, 'HPE_HEADER_OVERFLOW');
  // An unterminated oversized head fails as soon as it passes the limit.
  const { p } = parser();
  assert.throws(() => {
    for (let i = 0; i < 100; i++) p.execute(Buffer.from(`HTTP/1.1 200 OK\r\nX-A: ${'a'.repeat(1000)}\r\n`));
  }, /too large/);
});

test('parser: bytes after a complete response are reported; a later response parses after start()', () => {
  const { p, out } = parser();
  p.execute(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 204 No Content\r\n\r\n'));
  assert.equal(out.complete, 1);
  assert.ok(out.rest);
  p.start('GET');
  p.execute(out.rest);
  assert.equal(out.heads[1].statusCode, 204);
  assert.equal(out.complete, 2);
  // Data while idle is an error.
  assert.throws(() => p.execute(Buffer.from('x')), /unexpected data/);
});

// --- the pool through the proxy ---

interface RawUpstream {
  server: Server;
  port: number;
  /** Requests (raw bytes) each connection received, by connection index. */
  requests: string[][];
}

/**
 * A TCP upstream answering each request with `reply(head, index)`; a reply
 * of null closes the connection. Requests are framed by Content-Length or
 * chunked so several may share a connection.
 */
async function rawUpstream(reply: (request: string, n: number) => string | null | { bytes: string; close: boolean }): Promise<RawUpstream> {
  const requests: string[][] = [];
  let n = 0;
  const server = createServer((socket: Socket) => {
    const mine: string[] = [];
    requests.push(mine);
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.slice(0, end + 4);
        let total = end + 4;
        const cl = /\r\ncontent-length: (\d+)/i.exec(head);
        if (cl) total += Number(cl[1]);
        else if (/\r\ntransfer-encoding: chunked/i.test(head)) {
          const last = buf.indexOf('\r\n0\r\n\r\n', end);
          if (last < 0) return;
          total = last + 7;
        }
        if (buf.length < total) return;
        const req = buf.slice(0, total);
        buf = buf.slice(total);
        mine.push(req);
        const r = reply(req, n++);
        if (r === null) return void socket.destroy();
        if (typeof r === 'string') socket.write(r);
        else if (r.close) socket.end(r.bytes);
        else socket.write(r.bytes);
      }
    });
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port, requests };
}

const ups: Record<string, RawUpstream> = {};
let pipeUp: Upstream;
let proxy: Proxy;
let port: number;

before(async () => {
  ups.keep = await rawUpstream((req) => {
    const path = /^\S+ (\S+)/.exec(req)![1];
    return `HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\nX-Echo-Method: ${req.split(' ')[0]}\r\n\r\n${path}`;
  });
  ups.chunked = await rawUpstream(() => 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n3\r\nabc\r\n3;x=y\r\ndef\r\n0\r\nX-Trailer: t\r\n\r\n');
  ups.close = await rawUpstream(() => ({ bytes: 'HTTP/1.1 200 OK\r\n\r\nuntil-close', close: true }));
  ups.interim = await rawUpstream(() => 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone');
  ups.bad = await rawUpstream(() => 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd');
  ups.garbage = await rawUpstream(() => 'NOT HTTP\r\n\r\n');
  ups.hangup = await rawUpstream(() => null);
  ups.short = await rawUpstream(() => ({ bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-some', close: true }));
  ups.nobody = await rawUpstream((req) => (req.startsWith('HEAD') ? 'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n' : 'HTTP/1.1 204 No Content\r\nContent-Length: 50\r\n\r\n'));
  ups.hint = await rawUpstream(() => 'HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 2\r\n\r\nok');
  ups.echo = await rawUpstream((req) => {
    const body = Buffer.from(req, 'latin1').toString('base64');
    return `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  });
  // Streams the request body back, slowly reading nothing until it has all arrived.
  pipeUp = await startUpstream('pipe', (req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    req.pipe(res);
  });
  const names = Object.keys(ups);
  proxy = await startProxy({
    static_resources: {
      clusters: [...names.map((n) => staticCluster(n, [ups[n].port])), staticCluster('pipe', [pipeUp.port])],
      listeners: [hcmListener('http', { name: 'r', virtual_hosts: [...names, 'pipe'].map((n) => ({ name: n, domains: [`${n}.local`], routes: [{ match: { prefix: '/' }, route: { cluster: n } }] })) })],
    },
  });
  port = proxy.listenerPort('http')!;
});

after(async () => {
  await proxy.stop();
  for (const u of Object.values(ups)) u.server.close();
  await pipeUp.close();
});

test('pool: keep-alive connections are reused across requests', async () => {
  for (let i = 0; i < 5; i++) {
    const r = await get(port, `/k${i}`, { host: 'keep.local' });
    assert.equal(r.status, 200);
    assert.equal(r.body, `/k${i}`);
  }
  assert.equal(ups.keep.requests.length, 1, 'one upstream connection');
  assert.equal(ups.keep.requests[0].length, 5);
  assert.equal(proxy.stats.get('cluster.keep.upstream_cx_total'), 1);
  // The head went out as sent: no hop-by-hop headers, host kept.
  const head = ups.keep.requests[0][0];
  assert.match(head, /^GET \/k0 HTTP\/1\.1\r\n/);
  assert.match(head, /\r\nhost: keep\.local\r\n/);
  assert.doesNotMatch(head, /\r\nconnection:/i);
});

test('pool: chunked responses stream through', async () => {
  const r = await get(port, '/', { host: 'chunked.local' });
  assert.equal(r.status, 200);
  assert.equal(r.body, 'abcdef');
  const r2 = await get(port, '/', { host: 'chunked.local' });
  assert.equal(r2.body, 'abcdef');
  assert.equal(ups.chunked.requests.length, 1, 'reused after a chunked response');
});

test('pool: close-delimited responses end with the connection, which is not reused', async () => {
  const r = await get(port, '/', { host: 'close.local' });
  assert.equal(r.body, 'until-close');
  const r2 = await get(port, '/', { host: 'close.local' });
  assert.equal(r2.body, 'until-close');
  assert.equal(ups.close.requests.length, 2);
});

test('pool: 100 Continue is skipped; the final response is forwarded', async () => {
  const r = await get(port, '/', { host: 'interim.local', method: 'POST', body: 'x' });
  assert.equal(r.status, 201);
  assert.equal(r.body, 'done');
});

test('pool: HEAD and 204 responses end without a body despite content-length', async () => {
  const h = await get(port, '/', { host: 'nobody.local', method: 'HEAD' });
  assert.equal(h.status, 200);
  assert.equal(h.body, '');
  const n = await get(port, '/', { host: 'nobody.local' });
  assert.equal(n.status, 204);
  const h2 = await get(port, '/', { host: 'nobody.local', method: 'HEAD' });
  assert.equal(h2.status, 200);
  assert.equal(ups.nobody.requests.length, 1, 'the connection survived the bodiless responses');
});

test('pool: conflicting content-length, a non-HTTP reply and a hang-up are 503 UC', async () => {
  for (const host of ['bad.local', 'garbage.local', 'hangup.local']) {
    const r = await get(port, '/', { host });
    assert.equal(r.status, 503, host);
    assert.match(r.body, /reset reason: connection termination/, host);
  }
});

test('pool: a response cut short after its headers resets the downstream', async () => {
  await assert.rejects(get(port, '/', { host: 'short.local' }));
});

test('pool: request bodies are framed by content-length, or chunked when the downstream sent chunks', async () => {
  const r = await get(port, '/p', { host: 'echo.local', method: 'POST', body: 'hello' });
  const sent = Buffer.from(r.body, 'base64').toString('latin1');
  assert.match(sent, /^POST \/p HTTP\/1\.1\r\n/);
  assert.match(sent, /\r\ncontent-length: 5\r\n/);
  assert.match(sent, /\r\n\r\nhello$/);
  // A chunked downstream body goes chunked upstream.
  const { request } = await import('node:http');
  const body = await new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'PUT', path: '/c', headers: { host: 'echo.local', 'transfer-encoding': 'chunked' } }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => (b += c.toString()));
      res.on('end', () => resolve(b));
    });
    req.on('error', reject);
    req.write('ab');
    setTimeout(() => req.end('cd'), 20);
  });
  const up = Buffer.from(body, 'base64').toString('latin1');
  assert.match(up, /\r\ntransfer-encoding: chunked\r\n\r\n/);
  assert.match(up, /2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n$/);
  // A POST without a body gets content-length: 0, as node:http sends.
  const e = await get(port, '/e', { host: 'echo.local', method: 'POST' });
  const empty = Buffer.from(e.body, 'base64').toString('latin1');
  assert.match(empty, /\r\ncontent-length: 0\r\n/);
  assert.match(empty, /\r\n\r\n$/);
});

test("pool: a server's keep-alive timeout hint retires idle connections a second early", async () => {
  // timeout=1 leaves no idle time at all: each request gets a new connection.
  assert.equal((await get(port, '/', { host: 'hint.local' })).body, 'ok');
  assert.equal((await get(port, '/', { host: 'hint.local' })).body, 'ok');
  assert.equal(ups.hint.requests.length, 2);
  assert.equal(proxy.stats.get('cluster.hint.upstream_cx_active'), 0);
});

test('pool: an 8 MiB body streams both ways with backpressure (a slow reader)', async () => {
  const body = Buffer.alloc(8 * 1024 * 1024);
  for (let i = 0; i < body.length; i += 4) body.writeUInt32LE(i, i);
  const want = createHash('sha256').update(body).digest('hex');
  const got = await new Promise<{ hash: string; len: number }>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/big', headers: { host: 'pipe.local', 'content-length': body.length } }, (res) => {
      const h = createHash('sha256');
      let len = 0;
      // Read slowly at first so the proxy has to pause the upstream.
      res.pause();
      setTimeout(() => res.resume(), 200);
      res.on('data', (c: Buffer) => {
        len += c.length;
        h.update(c);
      });
      res.on('end', () => resolve({ hash: h.digest('hex'), len }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
  assert.equal(got.len, body.length);
  assert.equal(got.hash, want);
});

test('pool: a small response goes downstream in one write, head and body together, also for pipelined requests', async () => {
  const { Socket: NetSocket } = await import('node:net');
  const { connect } = await import('node:net');
  const client = connect(port, '127.0.0.1');
  await once(client, 'connect');
  // Count the proxy's writes on the socket that serves this client (the stream layer's _write/_writev: one each per syscall).
  const proto = NetSocket.prototype as unknown as Record<'_write' | '_writev', (...a: unknown[]) => unknown>;
  const orig = { _write: proto._write, _writev: proto._writev };
  let writes = 0;
  for (const m of ['_write', '_writev'] as const) {
    proto[m] = function (this: Socket, ...a: unknown[]) {
      if (this.remotePort === client.localPort && this.localPort === port) writes++;
      return orig[m].apply(this, a);
    };
  }
  try {
    let buf = '';
    client.setEncoding('latin1');
    client.on('data', (d: string) => (buf += d));
    client.write('GET /a HTTP/1.1\r\nhost: keep.local\r\n\r\nGET /bbb HTTP/1.1\r\nhost: keep.local\r\n\r\n');
    const bodies: string[] = [];
    while (bodies.length < 2) {
      await new Promise((r) => setTimeout(r, 5));
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) continue;
      const len = Number(/\r\ncontent-length: (\d+)/.exec(buf.slice(0, end))![1]);
      if (buf.length < end + 4 + len) continue;
      assert.match(buf, /^HTTP\/1\.1 200 OK\r\n/);
      bodies.push(buf.slice(end + 4, end + 4 + len));
      buf = buf.slice(end + 4 + len);
    }
    assert.deepEqual(bodies, ['/a', '/bbb']);
    assert.equal(writes, 2, 'one write per response');
  } finally {
    Object.assign(proto, orig);
    client.destroy();
  }
});
