// gRPC through the proxy with @grpc/grpc-js on both ends: unary with
// metadata and trailers, errors from the server (trailers-only), server and
// bidi streaming, client deadlines, and the proxy's own gRPC local replies
// (trailers-only, grpc-status mapped from the HTTP status as Envoy maps it):
// route timeout, grpc-timeout honoured through max_stream_duration, and no
// healthy upstream.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:http2';
import type { ClientHttp2Session, IncomingHttpHeaders } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import type { Proxy } from '../../src/proxy/index.ts';
import { hcmListener, startProxy, staticCluster } from './helpers.ts';

const HPO = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const h2Options = { typed_extension_protocol_options: { [HPO]: { '@type': `type.googleapis.com/${HPO}`, explicit_http_config: { http2_protocol_options: {} } } } };

type Msg = { text: string; n?: number };
const ser = (m: Msg): Buffer => Buffer.from(JSON.stringify(m));
const de = (b: Buffer): Msg => JSON.parse(b.toString()) as Msg;
const method = (path: string, requestStream: boolean, responseStream: boolean): grpc.MethodDefinition<Msg, Msg> => ({ path, requestStream, responseStream, requestSerialize: ser, requestDeserialize: de, responseSerialize: ser, responseDeserialize: de });
const service = {
  unary: method('/test.Echo/Unary', false, false),
  fail: method('/test.Echo/Fail', false, false),
  slow: method('/test.Echo/Slow', false, false),
  deadline: method('/test.Deadline/Slow', false, false),
  list: method('/test.Echo/List', false, true),
  chat: method('/test.Echo/Chat', true, true),
};

let server: grpc.Server;
let proxy: Proxy;
let client: grpc.Client;
let port: number;
const raw: ClientHttp2Session[] = [];
let serverSawCancel: (() => void) | undefined;

before(async () => {
  server = new grpc.Server();
  const slow = (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>): void => {
    const t = setTimeout(() => cb(null, { text: 'late' }), 3000);
    call.on('cancelled', () => {
      clearTimeout(t);
      serverSawCancel?.();
    });
  };
  server.addService(service as unknown as grpc.ServiceDefinition, {
    unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      const trailer = new grpc.Metadata();
      trailer.set('x-trailer', 'done');
      call.sendMetadata(new grpc.Metadata());
      cb(null, { text: `echo:${call.request.text}:${String(call.metadata.get('x-client')[0] ?? '')}` }, trailer);
    },
    fail: (_call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => cb({ code: grpc.status.NOT_FOUND, details: 'no such thing' }),
    slow,
    deadline: slow,
    list: (call: grpc.ServerWritableStream<Msg, Msg>) => {
      for (let i = 0; i < (call.request.n ?? 0); i++) call.write({ text: 'item', n: i });
      call.end();
    },
    chat: (call: grpc.ServerDuplexStream<Msg, Msg>) => {
      call.on('data', (m: Msg) => call.write({ text: `re:${m.text}`, n: m.n }));
      call.on('end', () => call.end());
    },
  });
  const grpcPort = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const routes = {
    name: 'grpc',
    virtual_hosts: [
      {
        name: 'grpc',
        domains: ['*'],
        routes: [
          { match: { prefix: '/test.Echo/Slow' }, route: { cluster: 'grpc', timeout: '0.3s' } },
          { match: { prefix: '/test.Deadline/' }, route: { cluster: 'grpc', timeout: '0s', max_stream_duration: { grpc_timeout_header_max: '0s' } } },
          { match: { prefix: '/test.Empty/' }, route: { cluster: 'empty' } },
          { match: { prefix: '/test.' }, route: { cluster: 'grpc', timeout: '0s' } },
        ],
      },
    ],
  };
  proxy = await startProxy({
    static_resources: {
      clusters: [staticCluster('grpc', [grpcPort], h2Options), { name: 'empty', type: 'STATIC', load_assignment: { cluster_name: 'empty', endpoints: [] } }],
      listeners: [hcmListener('grpc_in', routes)],
    },
  });
  port = proxy.listenerPort('grpc_in')!;
  client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
});

after(async () => {
  client.close();
  for (const r of raw) r.destroy();
  await proxy.stop();
  server.forceShutdown();
});

function unary(def: grpc.MethodDefinition<Msg, Msg>, req: Msg, options: grpc.CallOptions = {}, md = new grpc.Metadata()): Promise<{ res?: Msg; err?: grpc.ServiceError; trailers?: grpc.Metadata }> {
  return new Promise((resolve) => {
    let result: { res?: Msg; err?: grpc.ServiceError } | undefined;
    let trailers: grpc.Metadata | undefined;
    // grpc-js calls back and emits 'status' in either order: answer once both are in.
    const settle = (): void => void (result && trailers && resolve({ ...result, trailers }));
    const call = client.makeUnaryRequest(def.path, ser, de, req, md, options, (err, res) => {
      result = { res, err: err ?? undefined };
      settle();
    });
    call.on('status', (s: grpc.StatusObject) => {
      trailers = s.metadata;
      settle();
    });
  });
}

test('unary: request metadata in, response and trailing metadata out', async () => {
  const md = new grpc.Metadata();
  md.set('x-client', 'c1');
  const r = await unary(service.unary, { text: 'hi' }, {}, md);
  assert.equal(r.err, undefined);
  assert.equal(r.res?.text, 'echo:hi:c1');
  assert.deepEqual(r.trailers?.get('x-trailer'), ['done']);
  assert.ok(proxy.stats.get('cluster.grpc.upstream_cx_http2_total') >= 1);
});

test('a server error (trailers-only) keeps its grpc-status and grpc-message', async () => {
  const r = await unary(service.fail, { text: 'x' });
  assert.equal(r.err?.code, grpc.status.NOT_FOUND);
  assert.equal(r.err?.details, 'no such thing');
});

test('server streaming: 200 messages in order', async () => {
  const got: number[] = [];
  await new Promise<void>((resolve, reject) => {
    const call = client.makeServerStreamRequest(service.list.path, ser, de, { text: 'go', n: 200 });
    call.on('data', (m: Msg) => got.push(m.n!));
    call.on('error', reject);
    call.on('end', resolve);
  });
  assert.equal(got.length, 200);
  assert.deepEqual(got.slice(0, 3), [0, 1, 2]);
  assert.equal(got[199], 199);
});

test('bidi streaming: each message echoed while the call stays open, with a deadline set', async () => {
  const call = client.makeBidiStreamRequest(service.chat.path, ser, de, new grpc.Metadata(), { deadline: Date.now() + 10_000 });
  const replies: Msg[] = [];
  for (let i = 0; i < 20; i++) {
    const reply = new Promise<Msg>((resolve) => call.once('data', resolve));
    call.write({ text: `m${i}`, n: i });
    replies.push(await reply);
  }
  const ended = new Promise<void>((resolve) => call.on('end', resolve));
  call.resume();
  call.end();
  await ended;
  assert.deepEqual(replies.map((m) => m.text), Array.from({ length: 20 }, (_, i) => `re:m${i}`));
});

test('a client deadline ends the call with DEADLINE_EXCEEDED and cancels the upstream', async () => {
  const cancelled = new Promise<void>((r) => (serverSawCancel = r));
  const started = Date.now();
  const r = await unary(service.deadline, { text: 'slow' }, { deadline: Date.now() + 300 });
  assert.equal(r.err?.code, grpc.status.DEADLINE_EXCEEDED);
  assert.ok(Date.now() - started < 2500);
  await cancelled;
});

test('route timeout on a gRPC request: trailers-only 200 with grpc-status 14 (504 -> UNAVAILABLE)', async () => {
  const started = Date.now();
  const r = await unary(service.slow, { text: 'x' });
  assert.equal(r.err?.code, grpc.status.UNAVAILABLE);
  assert.equal(r.err?.details, 'upstream request timeout');
  assert.ok(Date.now() - started < 2500);
  assert.ok(proxy.stats.get('cluster.grpc.upstream_rq_timeout') >= 1);
});

test('no healthy upstream: grpc-status 14 with the message', async () => {
  const r = await unary(method('/test.Empty/Call', false, false), { text: 'x' });
  assert.equal(r.err?.code, grpc.status.UNAVAILABLE);
  assert.equal(r.err?.details, 'no healthy upstream');
});

function rawGrpc(path: string, headers: Record<string, string>): Promise<{ headers: IncomingHttpHeaders; endStream: boolean; ms: number }> {
  const c = connect(`http://127.0.0.1:${port}`);
  c.on('error', () => {});
  raw.push(c);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const s = c.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers });
    s.on('response', (h, flags) => resolve({ headers: h, endStream: (flags & 1) === 1, ms: Date.now() - started }));
    s.on('error', reject);
    // One empty length-prefixed message.
    s.end(Buffer.from([0, 0, 0, 0, 2, 0x7b, 0x7d]));
  });
}

test('grpc-timeout is the route timeout when grpc_timeout_header_max is set', async () => {
  const r = await rawGrpc('/test.Deadline/Slow', { 'grpc-timeout': '200m' });
  assert.equal(r.headers[':status'], 200);
  assert.equal(r.endStream, true, 'a trailers-only response');
  assert.equal(r.headers['grpc-status'], '14');
  assert.equal(r.headers['grpc-message'], 'upstream request timeout');
  assert.equal(r.headers['content-type'], 'application/grpc');
  assert.ok(r.ms < 2500, `took ${r.ms}ms`);
});

test('no route for a gRPC request: grpc-status 12 UNIMPLEMENTED (404 NR)', async () => {
  const r = await rawGrpc('/other.Svc/Call', {});
  assert.equal(r.headers[':status'], 200);
  assert.equal(r.endStream, true);
  assert.equal(r.headers['grpc-status'], '12');
  assert.ok(proxy.stats.get('http.grpc_in.no_route') >= 1);
});
