// The HCM's raw-socket HTTP/1.1 downstream codec (http1-server-codec.ts)
// through a real proxy: a raw TCP client sends exactly the bytes under test
// and reads the bytes that come back. Keep-alive, pipelining, request
// bodies (chunked, content-length), 100-continue, HTTP/1.0, connection
// close, HEAD, and the limits: header size and count (431), malformed heads
// and smuggling attempts (400), the request head timeout (408) and the idle
// timeout between requests. The request parser on its own, split at every byte.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { once } from 'node:events';
import type { Proxy } from '../../src/proxy/index.ts';
import type { RequestHead } from '../../src/proxy/http/http1-codec.ts';
import { RequestParser } from '../../src/proxy/http/http1-codec.ts';
import type { Upstream } from './helpers.ts';
import { hcmListener, startProxy, startUpstream, staticCluster } from './helpers.ts';

let upstream: Upstream;
let proxy: Proxy;
let port: number;
let quickPort: number;

const routes = { name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/local' }, direct_response: { status: 404, body: { inline_string: 'nope' } } }, { match: { prefix: '/' }, route: { cluster: 'echo' } }] }] };

before(async () => {
  upstream = await startUpstream('echo');
  proxy = await startProxy({
    static_resources: {
      clusters: [staticCluster('echo', [upstream.port])],
      listeners: [
        hcmListener('http', routes),
        // Short limits, to exceed them in a test.
        hcmListener('quick', routes, { hcm: { request_headers_timeout: '0.3s', common_http_protocol_options: { idle_timeout: '0.3s' } } }),
      ],
    },
  });
  port = proxy.listenerPort('http')!;
  quickPort = proxy.listenerPort('quick')!;
});

after(async () => {
  await proxy.stop();
  await upstream.close();
});

/** A raw client: writes bytes, reads until `done` says the bytes so far are enough, or the peer closes. */
class RawClient {
  readonly socket: Socket;
  data = '';
  closed = false;
  private waiter: (() => void) | undefined;

  constructor(p: number) {
    this.socket = connect(p, '127.0.0.1');
    this.socket.setEncoding('latin1');
    this.socket.on('data', (d: string) => {
      this.data += d;
      this.waiter?.();
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
  }

  async send(bytes: string): Promise<void> {
    if (this.socket.connecting) await once(this.socket, 'connect');
    this.socket.write(bytes, 'latin1');
  }

  /** Waits until `n` complete responses (Content-Length framed or chunked) have arrived, or the socket closes. */
  async responses(n: number): Promise<string[]> {
    for (;;) {
      const got = splitResponses(this.data);
      if (got.length >= n || this.closed) return got;
      await new Promise<void>((r) => (this.waiter = r));
    }
  }

  async untilClosed(): Promise<void> {
    while (!this.closed) await new Promise<void>((r) => (this.waiter = r));
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Complete responses in `data`, interim 100 Continue included as its own entry. */
function splitResponses(data: string): string[] {
  const out: string[] = [];
  let off = 0;
  for (;;) {
    const end = data.indexOf('\r\n\r\n', off);
    if (end < 0) return out;
    const head = data.slice(off, end + 4);
    const status = Number(head.slice(9, 12));
    const len = /\r\ncontent-length: (\d+)/i.exec(head);
    let next = end + 4;
    if (status >= 100 && status < 200) {
      out.push(head);
      off = next;
      continue;
    }
    if (/\r\ntransfer-encoding: chunked/i.test(head)) {
      const last = data.indexOf('\r\n0\r\n\r\n', end);
      const empty = data.startsWith('0\r\n\r\n', next);
      if (empty) next += 5;
      else if (last < 0) return out;
      else next = last + 7;
    } else if (len) {
      next += Number(len[1]);
      if (data.length < next) return out;
    } else if (!head.startsWith('HTTP/1.1 101') && !/\r\nconnection: close/i.test(head)) next = end + 4;
    else next = data.length;
    out.push(data.slice(off, next));
    off = next;
  }
}

const statusOf = (r: string): number => Number(r.slice(9, 12));
/** The body of one response, de-chunked. */
function bodyOf(r: string): string {
  const head = r.slice(0, r.indexOf('\r\n\r\n') + 4);
  let rest = r.slice(head.length);
  if (!/\r\ntransfer-encoding: chunked/i.test(head)) return rest;
  let body = '';
  for (;;) {
    const eol = rest.indexOf('\r\n');
    const size = parseInt(rest.slice(0, eol), 16);
    if (!size) return body;
    body += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 4 + size);
  }
}
const echoed = (r: string): { method: string; url: string; headers: Record<string, string>; body: string } => JSON.parse(bodyOf(r));
const GET = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: svc.local\r\n${extra}\r\n`;

test('keep-alive: requests one after another on one connection', async () => {
  const c = new RawClient(port);
  try {
    await c.send(GET('/a'));
    assert.equal(statusOf((await c.responses(1))[0]), 200);
    await c.send(GET('/b'));
    const [, second] = await c.responses(2);
    assert.equal(echoed(second).url, '/b');
    assert.equal(c.closed, false);
  } finally {
    c.close();
  }
});

test('pipelining: three requests in one write get three responses, in order', async () => {
  const c = new RawClient(port);
  try {
    await c.send(GET('/1') + GET('/local') + GET('/3'));
    const r = await c.responses(3);
    assert.deepEqual(r.map(statusOf), [200, 404, 200]);
    assert.equal(echoed(r[0]).url, '/1');
    assert.equal(bodyOf(r[1]), 'nope');
    assert.equal(echoed(r[2]).url, '/3');
  } finally {
    c.close();
  }
});

test('request bodies: content-length and chunked (with trailers) reach the upstream', async () => {
  const c = new RawClient(port);
  try {
    await c.send('POST /cl HTTP/1.1\r\nHost: svc.local\r\nContent-Length: 5\r\n\r\nhello');
    await c.send('POST /ch HTTP/1.1\r\nHost: svc.local\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\nX-T: 1\r\n\r\n');
    const [a, b] = await c.responses(2);
    assert.equal(echoed(a).body, 'hello');
    assert.equal(echoed(b).body, 'abcdefg');
  } finally {
    c.close();
  }
});

test('a local reply before the body is read leaves the connection usable', async () => {
  const c = new RawClient(port);
  try {
    await c.send('POST /local HTTP/1.1\r\nHost: svc.local\r\nContent-Length: 10\r\n\r\n0123456789' + GET('/after'));
    const [a, b] = await c.responses(2);
    assert.equal(statusOf(a), 404);
    assert.equal(echoed(b).url, '/after');
  } finally {
    c.close();
  }
});

test('Expect: 100-continue gets 100 Continue before the final response', async () => {
  const c = new RawClient(port);
  try {
    await c.send('POST /e HTTP/1.1\r\nHost: svc.local\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n');
    const [interim] = await c.responses(1);
    assert.equal(statusOf(interim), 100);
    await c.send('ok');
    const [, final] = await c.responses(2);
    assert.equal(echoed(final).body, 'ok');
  } finally {
    c.close();
  }
});

test('HTTP/1.0 and Connection: close end the connection after the response', async () => {
  for (const req of ['GET /x HTTP/1.0\r\nHost: svc.local\r\n\r\n', GET('/y', 'Connection: close\r\n')]) {
    const c = new RawClient(port);
    try {
      await c.send(req);
      await c.untilClosed();
      const [r] = splitResponses(c.data);
      assert.equal(statusOf(r), 200);
      assert.match(r, /\r\nconnection: close\r\n/i);
    } finally {
      c.close();
    }
  }
});

test('HEAD: the head only, no body bytes before the next response', async () => {
  const c = new RawClient(port);
  try {
    await c.send('HEAD /h HTTP/1.1\r\nHost: svc.local\r\n\r\n' + GET('/next'));
    await new Promise<void>((r) => setTimeout(r, 50));
    await c.responses(1);
    const first = c.data.slice(0, c.data.indexOf('\r\n\r\n') + 4);
    assert.match(first, /^HTTP\/1\.1 200 /);
    assert.doesNotMatch(first, /\r\ntransfer-encoding: chunked\r\n/);
    // The next response starts right after the head: no body bytes in between.
    assert.match(c.data.slice(first.length), /^HTTP\/1\.1 200 /);
  } finally {
    c.close();
  }
});

test('limits: header block over max_request_headers_kb or over 100 headers -> 431', async () => {
  for (const extra of [`X-Big: ${'a'.repeat(61 * 1024)}\r\n`, Array.from({ length: 101 }, (_, i) => `X-H${i}: v\r\n`).join('')]) {
    const c = new RawClient(port);
    try {
      await c.send(GET('/big', extra));
      await c.untilClosed();
      assert.equal(statusOf(c.data), 431);
    } finally {
      c.close();
    }
  }
});

test('limits: an endless head without its blank line is cut at the limit -> 431', async () => {
  const c = new RawClient(port);
  try {
    await c.send(`GET / HTTP/1.1\r\nX-A: ${'a'.repeat(70 * 1024)}`);
    await c.untilClosed();
    assert.equal(statusOf(c.data), 431);
  } finally {
    c.close();
  }
});

test('malformed requests and smuggling attempts -> 400 and close', async () => {
  const bad = [
    'GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n',
    'GET / HTTP/2.0\r\nHost: a\r\n\r\n',
    'GET / HTTP/1.1\r\nBad Name: v\r\n\r\n',
    'GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd',
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
  ];
  for (const req of bad) {
    const c = new RawClient(port);
    try {
      await c.send(req);
      await c.untilClosed();
      assert.equal(statusOf(c.data), 400, JSON.stringify(req));
    } finally {
      c.close();
    }
  }
});

test('limits: a head that does not arrive within request_headers_timeout -> 408', async () => {
  const c = new RawClient(quickPort);
  try {
    await c.send('GET / HTTP/1.1\r\nHost: svc.local\r\n');
    await c.untilClosed();
    assert.equal(statusOf(c.data), 408);
  } finally {
    c.close();
  }
});

test('limits: an idle keep-alive connection closes after idle_timeout', async () => {
  const c = new RawClient(quickPort);
  try {
    await c.send(GET('/a'));
    assert.equal(statusOf((await c.responses(1))[0]), 200);
    await c.untilClosed();
    assert.equal(splitResponses(c.data).length, 1);
  } finally {
    c.close();
  }
});

test('request parser: every byte split gives the same heads and body', () => {
  const raw = '\r\nPOST /p?q=1 HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a: 2\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n';
  const run = (chunks: Buffer[]): RequestHead[] => {
    const heads: RequestHead[] = [];
    const p = new RequestParser({ onHead: (h) => heads.push(h), onBody: () => {}, onTrailers: () => {}, onComplete: () => {} }, 1024);
    p.start();
    for (const c of chunks) p.execute(c);
    return heads;
  };
  const whole = run([Buffer.from(raw, 'latin1')]);
  const bytes = run([...Buffer.from(raw, 'latin1')].map((b) => Buffer.from([b])));
  assert.deepEqual(bytes, whole);
  assert.equal(whole[0].method, 'POST');
  assert.equal(whole[0].url, '/p?q=1');
  assert.equal(whole[0].headers['x-a'], '1, 2');
  assert.deepEqual(whole[0].rawHeaders.slice(0, 4), ['Host', 'a', 'X-A', '1']);
  assert.equal(whole[0].upgrade, true);
});
