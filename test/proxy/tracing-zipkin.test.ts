// Tracing through a sidecar pair with Envoy's zipkin tracer: the outbound
// proxy records a CLIENT span, the inbound proxy a SERVER span, both in the
// caller's trace (B3 multi, B3 single or W3C traceparent), and the app gets
// the context in both header styles. Spans arrive at a small Zipkin collector
// as JSON v2 in batches; a full buffer drops and counts spans.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { Proxy } from '../../src/proxy/index.ts';
import { StatsStore } from '../../src/proxy/index.ts';
import { ZipkinReporter } from '../../src/proxy/tracing/zipkin-reporter.ts';
import type { ZipkinSpan } from '../../src/proxy/tracing/zipkin-reporter.ts';
import { extractContext } from '../../src/proxy/tracing/trace-context.ts';
import type { Upstream } from './helpers.ts';
import { get, startProxy, startUpstream, staticCluster } from './helpers.ts';
import { directedListener, istioNode } from './telemetry-helpers.ts';

const ZIPKIN = 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig';

let app: Upstream;
let collector: Server;
let collectorPort: number;
const posts: Array<{ path: string; contentType: string; spans: ZipkinSpan[] }> = [];
let waiter: (() => void) | undefined;
let inbound: Proxy;
let outbound: Proxy;

function tracing(shared: boolean, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    tracing: {
      provider: { name: 'envoy.tracers.zipkin', typed_config: { '@type': ZIPKIN, collector_cluster: 'zipkin', collector_endpoint: '/api/v2/spans', collector_endpoint_version: 'HTTP_JSON', shared_span_context: shared, trace_id_128bit: true } },
      custom_tags: [{ tag: 'istio.mesh_id', literal: { value: 'cluster.local' } }, { tag: 'x-tenant', request_header: { name: 'x-tenant', default_value: 'none' } }],
      ...extra,
    },
  };
}

const spans = (): ZipkinSpan[] => posts.flatMap((p) => p.spans);

async function spansAtLeast(n: number): Promise<ZipkinSpan[]> {
  while (spans().length < n) await new Promise<void>((r) => (waiter = r));
  return spans();
}

before(async () => {
  app = await startUpstream('app');
  collector = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      posts.push({ path: req.url ?? '', contentType: String(req.headers['content-type']), spans: JSON.parse(Buffer.concat(chunks).toString()) });
      res.writeHead(202).end();
      waiter?.();
    });
  }).listen(0, '127.0.0.1');
  await once(collector, 'listening');
  collectorPort = (collector.address() as { port: number }).port;
  inbound = await startProxy({
    node: istioNode('reviews', 'v1'),
    static_resources: {
      clusters: [staticCluster('inbound|9080||', [app.port]), staticCluster('zipkin', [collectorPort])],
      listeners: [directedListener('virtualInbound', 'INBOUND', 'inbound|9080||', [], tracing(false))],
    },
  });
  outbound = await startProxy({
    node: istioNode('productpage', 'v1'),
    static_resources: {
      clusters: [staticCluster('outbound|9080||reviews.default.svc.cluster.local', [inbound.listenerPort('virtualInbound')!]), staticCluster('zipkin', [collectorPort])],
      listeners: [
        directedListener('0.0.0.0_9080', 'OUTBOUND', 'outbound|9080||reviews.default.svc.cluster.local', [], tracing(false)),
        directedListener('no_collector', 'OUTBOUND', 'outbound|9080||reviews.default.svc.cluster.local', [], {
          tracing: { provider: { name: 'envoy.tracers.zipkin', typed_config: { '@type': ZIPKIN, collector_cluster: 'missing', collector_endpoint: '/api/v2/spans', collector_endpoint_version: 'HTTP_JSON' } } },
        }),
      ],
    },
  });
});

after(async () => {
  await outbound?.stop();
  await inbound?.stop();
  await app?.close();
  collector?.closeAllConnections();
  collector?.close();
});

test('client and server spans per request, one trace, exported as Zipkin JSON v2 in batches', async () => {
  const port = outbound.listenerPort('0.0.0.0_9080')!;
  const seen: Array<Record<string, string>> = [];
  const traceparentId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const b3Trace = '80f198ee56343ba864fe8b2a57d3eff7';
  const requests: Array<Record<string, string>> = [
    {},
    { 'x-tenant': 'acme' },
    { traceparent: `00-${traceparentId}-00f067aa0ba902b7-01`, tracestate: 'vendor=opaque' },
    { b3: `${b3Trace}-e457b5a2e4d86bd1-1` },
    { 'x-b3-traceid': 'a3ce929d0e0e4736', 'x-b3-spanid': '00f067aa0ba902b7', 'x-b3-sampled': '1' },
  ];
  for (const headers of requests) {
    const r = await get(port, '/reviews/1', { host: 'reviews:9080', headers });
    assert.equal(r.status, 200);
    seen.push(r.json().headers);
  }
  // Five requests, two spans each; min_flush_spans (5) sends a batch per proxy.
  const all = await spansAtLeast(10);
  assert.equal(all.length, 10);
  assert.ok(posts.every((p) => p.path === '/api/v2/spans' && p.contentType === 'application/json'));
  assert.ok(posts.length >= 2 && posts.length <= 4, `batched: ${posts.length} posts`);

  for (const [i, h] of seen.entries()) {
    const client = all.find((s) => s.kind === 'CLIENT' && s.tags['http.url'] && s.traceId === h['x-b3-traceid'] && s.id !== h['x-b3-spanid']);
    const server = all.find((s) => s.kind === 'SERVER' && s.id === h['x-b3-spanid']);
    assert.ok(server, `request ${i}: the app's parent is the inbound server span`);
    assert.ok(client, `request ${i}: a client span in the same trace`);
    assert.equal(server.parentId, client.id, 'the server span is a child of the client span (shared_span_context: false)');
    assert.equal(h['x-b3-parentspanid'], client.id);
    assert.equal(h['x-b3-sampled'], '1');
    assert.equal(h.traceparent, `00-${h['x-b3-traceid'].padStart(32, '0')}-${h['x-b3-spanid']}-01`);
    assert.equal(server.tags['http.status_code'], '200');
    assert.equal(server.tags['upstream_cluster'], 'inbound|9080||');
    assert.equal(client.tags['upstream_cluster'], 'outbound|9080||reviews.default.svc.cluster.local');
    assert.equal(client.tags['http.method'], 'GET');
    assert.equal(client.tags['istio.mesh_id'], 'cluster.local');
    assert.equal(client.tags.component, 'proxy');
    assert.equal(client.tags.guid, h['x-request-id']);
    assert.equal(client.localEndpoint.serviceName, 'productpage.default');
    assert.equal(server.localEndpoint.serviceName, 'reviews.default');
    assert.ok(client.timestamp > 1.6e15 && client.duration >= 1);
  }
  assert.match(seen[0]['x-b3-traceid'], /^[0-9a-f]{32}$/, 'trace_id_128bit');
  assert.equal(all.find((s) => s.kind === 'CLIENT' && s.traceId === seen[1]['x-b3-traceid'])!.tags['x-tenant'], 'acme');
  assert.equal(all.find((s) => s.kind === 'CLIENT' && s.traceId === seen[0]['x-b3-traceid'])!.tags['x-tenant'], 'none');
  // W3C: the trace continues and tracestate passes through.
  assert.equal(seen[2]['x-b3-traceid'], traceparentId);
  assert.equal(seen[2].tracestate, 'vendor=opaque');
  assert.equal(all.find((s) => s.kind === 'CLIENT' && s.traceId === traceparentId)!.parentId, '00f067aa0ba902b7');
  // B3 single: the trace continues and the single header is rewritten for the next hop.
  assert.equal(seen[3]['x-b3-traceid'], b3Trace);
  assert.equal(seen[3].b3, `${b3Trace}-${seen[3]['x-b3-spanid']}-1-${seen[3]['x-b3-parentspanid']}`);
  // B3 multi, 64-bit trace id kept as is.
  assert.equal(seen[4]['x-b3-traceid'], 'a3ce929d0e0e4736');
  // The collector has the batch; the proxy counts it when the answer arrives.
  while (outbound.stats.get('tracing.zipkin.spans_sent') < 5) await new Promise((r) => setTimeout(r, 5));
  assert.equal(outbound.stats.get('tracing.zipkin.spans_sent'), 5);
  assert.equal(outbound.stats.get('tracing.zipkin.reports_sent'), 1);
});

test('a caller that decided not to sample gets no spans, and the decision propagates', async () => {
  const port = outbound.listenerPort('0.0.0.0_9080')!;
  const before = spans().length;
  const r = await get(port, '/', { host: 'reviews:9080', headers: { 'x-b3-sampled': '0' } });
  const h = r.json().headers;
  assert.equal(h['x-b3-sampled'], '0');
  assert.match(h.traceparent, /-00$/);
  // Five sampled requests fill the next batches; the unsampled trace is in none of them.
  for (let i = 0; i < 5; i++) await get(port, '/', { host: 'reviews:9080' });
  const all = await spansAtLeast(before + 10);
  assert.equal(all.length, before + 10);
  assert.ok(!all.some((s) => s.traceId === h['x-b3-traceid']));
});

test('no collector host: reports are skipped and spans dropped, counted', async () => {
  const port = outbound.listenerPort('no_collector')!;
  for (let i = 0; i < 5; i++) assert.equal((await get(port, '/', { host: 'reviews:9080' })).status, 200);
  assert.equal(outbound.stats.get('tracing.zipkin.reports_skipped_no_cluster'), 1);
  assert.equal(outbound.stats.get('tracing.zipkin.spans_dropped'), 5);
});

test('the buffer is bounded: while a report is in flight, spans beyond the bound are dropped and counted', async () => {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let bodies = 0;
  const slow = createServer((req, res) => {
    req.resume();
    bodies++;
    void held.then(() => res.writeHead(202).end());
  }).listen(0, '127.0.0.1');
  await once(slow, 'listening');
  const store = new StatsStore();
  const clusters = { get: () => ({ pickHost: () => ({ address: '127.0.0.1', port: (slow.address() as { port: number }).port }) }) };
  const reporter = new ZipkinReporter({ cluster: 'zipkin', endpoint: '/api/v2/spans', hostname: 'zipkin', minFlushSpans: 1, maxBufferedSpans: 3 }, clusters as never, store);
  const span = (id: string): ZipkinSpan => ({ traceId: id.repeat(16), id: id.repeat(16), name: 'x', kind: 'CLIENT', timestamp: 1, duration: 1, localEndpoint: { serviceName: 's' }, tags: {} });
  reporter.report(span('1')); // sent at once; the collector holds the answer
  for (const id of ['2', '3', '4', '5', '6']) reporter.report(span(id));
  assert.equal(store.get('tracing.zipkin.spans_dropped'), 2);
  while (bodies < 1) await new Promise((r) => setImmediate(r));
  release();
  while (store.get('tracing.zipkin.spans_sent') < 4) await new Promise((r) => setTimeout(r, 5));
  assert.equal(store.get('tracing.zipkin.spans_sent'), 4);
  reporter.close();
  slow.closeAllConnections();
  slow.close();
});

test('malformed trace headers are ignored', () => {
  assert.equal(extractContext({ 'x-b3-traceid': 'zz', 'x-b3-spanid': '00f067aa0ba902b7' }), undefined);
  assert.equal(extractContext({ traceparent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01' }), undefined);
  assert.deepEqual(extractContext({ b3: '0' }), { sampled: false });
  assert.deepEqual(extractContext({ 'x-b3-traceid': '463ac35c9f6413ad48485a3953bb6124', 'x-b3-spanid': 'a2fb4a1d1a96d312', 'x-b3-flags': '1' }), { traceId: '463ac35c9f6413ad48485a3953bb6124', spanId: 'a2fb4a1d1a96d312', parentId: undefined, sampled: true });
});
