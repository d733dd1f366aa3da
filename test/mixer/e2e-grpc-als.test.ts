// The gRPC access logger (src/proxy/access-loggers/grpc-als) against a real
// ALS v3 server on 127.0.0.1: entries go out in batches on one stream whose
// first message carries the identifier; logging never waits (no host, or a
// server that stops reading): the buffer is bounded and the excess is
// dropped and counted.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { loadXdsProtos } from '../../src/xds/index.ts';
import { StatsStore } from '../../src/proxy/stats.ts';
import type { ClusterManager } from '../../src/proxy/upstream/cluster-manager.ts';
import { ACCESS_LOG_SERVICE, AlsStreamer, MAX_BUFFERED } from '../../src/proxy/access-loggers/grpc-als/grpc-als.ts';

type Msg = Record<string, any>;

interface AlsServer {
  readonly port: number;
  readonly messages: Msg[];
  streams: number;
  /** Stop reading from open streams (HTTP/2 flow control then pushes back). */
  stall(): void;
  close(): Promise<void>;
}

async function startAls(): Promise<AlsServer> {
  const server = new grpc.Server();
  const calls: grpc.ServerReadableStream<Msg, Msg>[] = [];
  const state: AlsServer = {
    port: 0,
    messages: [],
    streams: 0,
    stall: () => calls.forEach((c) => c.pause()),
    close: async () => server.forceShutdown(),
  };
  server.addService(loadXdsProtos().serviceDefinition(ACCESS_LOG_SERVICE), {
    StreamAccessLogs: (call: grpc.ServerReadableStream<Msg, Msg>, callback: grpc.sendUnaryData<Msg>) => {
      state.streams++;
      calls.push(call);
      call.on('data', (m: Msg) => state.messages.push(m));
      call.on('end', () => callback(null, {}));
      call.on('error', () => undefined);
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return Object.assign(state, { port });
}

function clustersWith(port: number | undefined): ClusterManager {
  return { get: () => (port === undefined ? undefined : { pickHost: () => ({ address: '127.0.0.1', port }) }) } as unknown as ClusterManager;
}

function entry(i: number): Msg {
  return { common_properties: { upstream_cluster: 'inbound|9080||', start_time: { seconds: '1', nanos: 0 } }, request: { path: `/r/${i}`, request_method: 'GET', request_headers: {} }, response: { response_code: { value: 200 } } };
}

async function until(cond: () => boolean, what: string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('entries are batched on one stream; the first message carries the identifier', { timeout: 15_000 }, async () => {
  const als = await startAls();
  const stats = new StatsStore();
  const s = new AlsStreamer('mixer', 'mixer', { id: 'sidecar~1~a.default~default.svc.cluster.local' }, clustersWith(als.port), 200, 16_384, { written: stats.counter('w'), dropped: stats.counter('d') });
  try {
    for (let i = 0; i < 1000; i++) s.push(entry(i));
    // A few stragglers below the batch size go out on the flush interval.
    for (let i = 1000; i < 1005; i++) s.push(entry(i));
    await until(() => als.messages.reduce((n, m) => n + (m.http_logs?.log_entry?.length ?? 0), 0) === 1005, 'all 1005 entries');
    assert.equal(als.streams, 1);
    assert.ok(als.messages.length <= 1005 / 40 + 3, `${als.messages.length} messages for 1005 entries`);
    assert.equal(als.messages[0].identifier?.log_name, 'mixer');
    assert.match(String(als.messages[0].identifier?.node?.id), /^sidecar~/);
    assert.ok(als.messages.slice(1).every((m) => !m.identifier));
    assert.equal(stats.counter('w').value, 1005);
    assert.equal(stats.counter('d').value, 0);
    const paths = als.messages.flatMap((m) => m.http_logs.log_entry.map((e: Msg) => e.request.path));
    assert.deepEqual(paths.slice(0, 3), ['/r/0', '/r/1', '/r/2']);
  } finally {
    s.close();
    await als.close();
  }
});

test('no host for the ALS cluster: log() never waits, at most MAX_BUFFERED entries are held, the rest are dropped and counted', { timeout: 15_000 }, async () => {
  const stats = new StatsStore();
  const s = new AlsStreamer('mixer', 'mixer', { id: 'n' }, clustersWith(undefined), 50, 16_384, { written: stats.counter('w'), dropped: stats.counter('d') });
  try {
    const start = performance.now();
    for (let i = 0; i < MAX_BUFFERED + 500; i++) s.push(entry(i));
    const perEntryUs = ((performance.now() - start) * 1000) / (MAX_BUFFERED + 500);
    assert.ok(perEntryUs < 20, `push took ${perEntryUs.toFixed(2)} µs an entry`);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(stats.counter('d').value, 500);
    assert.equal(stats.counter('w').value, 0);
  } finally {
    s.close();
  }
});

test('a server that stops reading: writes back up, the buffer stays bounded, drops are counted, push stays cheap', { timeout: 20_000 }, async () => {
  const als = await startAls();
  const stats = new StatsStore();
  const s = new AlsStreamer('mixer', 'mixer', { id: 'n' }, clustersWith(als.port), 20, 16_384, { written: stats.counter('w'), dropped: stats.counter('d') });
  try {
    s.push(entry(0));
    await until(() => als.streams === 1 && als.messages.length === 1, 'the first message');
    als.stall();
    const big = (i: number): Msg => ({ ...entry(i), request: { ...entry(i).request, path: `/${'x'.repeat(2000)}/${i}` } });
    let pushed = 1;
    const deadline = Date.now() + 8_000;
    let worst = 0;
    // Keep logging until the stream pushes back and the bound is hit.
    while (stats.counter('d').value === 0 && Date.now() < deadline) {
      const t0 = performance.now();
      for (let i = 0; i < 1000; i++) s.push(big(pushed++));
      worst = Math.max(worst, performance.now() - t0);
      await new Promise((r) => setImmediate(r));
    }
    assert.ok(stats.counter('d').value > 0, `no drops after ${pushed} entries (${stats.counter('w').value} written)`);
    assert.ok(worst < 200, `1000 pushes took up to ${worst.toFixed(1)} ms`);
    const held = pushed - stats.counter('w').value - stats.counter('d').value;
    assert.ok(held <= MAX_BUFFERED, `${held} entries held`);
  } finally {
    s.close();
    await als.close();
  }
});
