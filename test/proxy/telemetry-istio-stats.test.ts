// Istio's standard metrics through a sidecar pair: productpage's outbound
// proxy -> reviews' inbound proxy -> the app. The pair exchanges workload
// metadata in x-envoy-peer-metadata headers (stripped before the app and the
// client see them); each side reports its view with Istio's labels on
// /stats/prometheus; TCP metrics come from the network form of istio.stats;
// a stats listener (Istio's 15090) serves the same exposition.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer } from 'node:net';
import type { Server } from 'node:net';
import { once } from 'node:events';
import type { Proxy } from '../../src/proxy/index.ts';
import { decodePeerMetadata, encodePeerMetadata } from '../../src/proxy/telemetry/peer-metadata.ts';
import { loadXdsProtos } from '../../src/xds/index.ts';
import type { Upstream } from './helpers.ts';
import { TCP_PROXY, deadPort, get, startProxy, startUpstream, staticCluster } from './helpers.ts';
import { directedListener, find, istioNode, parsePrometheus, scrape, statsFilter, route } from './telemetry-helpers.ts';
import { HCM, ROUTER } from './helpers.ts';

const ADMIN = { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } };
const REVIEWS = 'outbound|9080|v1|reviews.default.svc.cluster.local';

let app: Upstream;
let tcpEcho: Server;
let inbound: Proxy;
let outbound: Proxy;
let statsPort: number;

before(async () => {
  app = await startUpstream('reviews');
  // A TCP upstream that answers each chunk with its length in bytes as text.
  tcpEcho = createServer((sock) => sock.on('data', (d: Buffer) => sock.write(`got ${d.length}\n`))).listen(0, '127.0.0.1');
  await once(tcpEcho, 'listening');
  inbound = await startProxy({
    node: istioNode('reviews', 'v1'),
    admin: ADMIN,
    static_resources: {
      clusters: [
        staticCluster('inbound|9080||', [app.port]),
        // Pilot's inbound clusters name the services they serve (Istio's istio.services metadata).
        { ...staticCluster('inbound|9090||', [app.port]), metadata: { filter_metadata: { istio: { services: [{ host: 'reviews.default.svc.cluster.local', name: 'reviews', namespace: 'default' }] } } } },
      ],
      listeners: [
        directedListener('virtualInbound', 'INBOUND', 'inbound|9080||', [statsFilter()]),
        directedListener('virtualInbound9090', 'INBOUND', 'inbound|9090||', [statsFilter()]),
      ],
    },
  });
  const adminForStats = await deadPort();
  outbound = await startProxy({
    node: istioNode('productpage', 'v1'),
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: adminForStats } } },
    static_resources: {
      clusters: [
        staticCluster(REVIEWS, [inbound.listenerPort('virtualInbound')!]),
        staticCluster('outbound|9080||ratings.default.svc.cluster.local', [await deadPort()]),
        staticCluster('outbound|9000||tcp-echo.default.svc.cluster.local', [(tcpEcho.address() as { port: number }).port]),
        // Istio's catch-all for unknown destinations (an ORIGINAL_DST cluster in a sidecar; static here).
        staticCluster('PassthroughCluster', [(tcpEcho.address() as { port: number }).port]),
        // Istio's prometheus_stats cluster: the stats listener forwards to the admin API.
        staticCluster('prometheus_stats', [adminForStats]),
      ],
      listeners: [
        directedListener('0.0.0.0_9080', 'OUTBOUND', REVIEWS, [statsFilter()]),
        directedListener('0.0.0.0_9081', 'OUTBOUND', 'outbound|9080||ratings.default.svc.cluster.local', [statsFilter()]),
        {
          name: '0.0.0.0_9000',
          traffic_direction: 'OUTBOUND',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [
            {
              filters: [
                { name: 'istio.stats', typed_config: { '@type': 'type.googleapis.com/xds.type.v3.TypedStruct', type_url: 'type.googleapis.com/stats.PluginConfig', value: {} } },
                { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY, stat_prefix: 'tcp', cluster: 'outbound|9000||tcp-echo.default.svc.cluster.local' } },
              ],
            },
          ],
        },
        {
          name: '0.0.0.0_9002',
          traffic_direction: 'OUTBOUND',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [
            {
              filters: [
                { name: 'istio.stats', typed_config: { '@type': 'type.googleapis.com/xds.type.v3.TypedStruct', type_url: 'type.googleapis.com/stats.PluginConfig', value: {} } },
                { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY, stat_prefix: 'passthrough', cluster: 'PassthroughCluster' } },
              ],
            },
          ],
        },
        {
          name: 'prometheus_stats_15090',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': HCM,
                    stat_prefix: 'stats',
                    route_config: { virtual_hosts: [{ name: 'backend', domains: ['*'], routes: [{ match: { prefix: '/stats/prometheus' }, route: { cluster: 'prometheus_stats' } }] }] },
                    http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
                  },
                },
              ],
            },
          ],
        },
      ],
    },
  });
  statsPort = outbound.listenerPort('prometheus_stats_15090')!;
});

after(async () => {
  await outbound?.stop();
  await inbound?.stop();
  await app?.close();
  tcpEcho?.close();
});

test('the peer metadata header is base64 of a google.protobuf.Struct and round-trips', () => {
  const header = encodePeerMetadata({ NAME: 'p-1', NAMESPACE: 'ns', LABELS: { app: 'p', version: 'v1' }, NOT_EXCHANGED: 'x' });
  const Struct = loadXdsProtos().lookupType('google.protobuf.Struct');
  const decoded = Struct.toObject(Struct.decode(Buffer.from(header, 'base64'))) as { fields: Record<string, unknown> };
  assert.deepEqual(Object.keys(decoded.fields).sort(), ['LABELS', 'NAME', 'NAMESPACE']);
  assert.deepEqual(decodePeerMetadata(header), { NAME: 'p-1', NAMESPACE: 'ns', LABELS: { app: 'p', version: 'v1' } });
  assert.equal(decodePeerMetadata('not a struct!'), undefined);
});

test('metadata exchange headers cross the pair but reach neither the app nor the client', async () => {
  const r = await get(outbound.listenerPort('0.0.0.0_9080')!, '/reviews/1', { host: 'reviews:9080' });
  assert.equal(r.status, 200);
  const seen = r.json().headers as Record<string, string>;
  assert.equal(seen['x-envoy-peer-metadata'], undefined);
  assert.equal(seen['x-envoy-peer-metadata-id'], undefined);
  assert.equal(r.headers['x-envoy-peer-metadata'], undefined);
  assert.equal(r.headers['x-envoy-peer-metadata-id'], undefined);
});

test('both reporters count the request with Istio labels from node metadata and the peer', async () => {
  const port = outbound.listenerPort('0.0.0.0_9080')!;
  for (let i = 0; i < 3; i++) assert.equal((await get(port, '/reviews/2', { host: 'reviews:9080' })).status, 200);
  const src = find(await scrape(outbound.admin!.port), 'istio_requests_total', { reporter: 'source', response_code: '200' });
  assert.equal(src.length, 1, 'one source series');
  const l = src[0].labels;
  assert.ok(src[0].value >= 3);
  assert.equal(l.source_workload, 'productpage-v1');
  assert.equal(l.source_workload_namespace, 'default');
  assert.equal(l.source_app, 'productpage');
  assert.equal(l.source_version, 'v1');
  assert.equal(l.destination_workload, 'reviews-v1');
  assert.equal(l.destination_app, 'reviews');
  assert.equal(l.destination_service, 'reviews.default.svc.cluster.local');
  assert.equal(l.destination_service_name, 'reviews');
  assert.equal(l.destination_service_namespace, 'default');
  assert.equal(l.destination_cluster, 'Kubernetes');
  assert.equal(l.request_protocol, 'http');
  assert.equal(l.response_flags, '-');
  assert.equal(l.connection_security_policy, 'unknown');

  const dst = find(await scrape(inbound.admin!.port), 'istio_requests_total', { reporter: 'destination', response_code: '200' });
  assert.equal(dst.length, 1);
  assert.ok(dst[0].value >= 3);
  assert.equal(dst[0].labels.source_workload, 'productpage-v1');
  assert.equal(dst[0].labels.destination_workload, 'reviews-v1');
  assert.equal(dst[0].labels.destination_version, 'v1');
  // The inbound cluster carries no service: the Host header stands in (Istio's fallback).
  assert.equal(dst[0].labels.destination_service, 'reviews');
  assert.equal(dst[0].labels.connection_security_policy, 'none');
  assert.equal(dst[0].labels.source_principal, 'unknown');
});

test("an inbound cluster's istio.services metadata names destination_service, whatever the Host header", async () => {
  const port = inbound.listenerPort('virtualInbound9090')!;
  assert.equal((await get(port, '/reviews/1', { host: '127.0.0.1:9090' })).status, 200);
  const dst = find(await scrape(inbound.admin!.port), 'istio_requests_total', { reporter: 'destination', destination_service: 'reviews.default.svc.cluster.local' });
  assert.equal(dst.length, 1, 'one series for the metadata-named service');
  assert.equal(dst[0].value, 1);
  assert.equal(dst[0].labels.destination_service_name, 'reviews');
  assert.equal(dst[0].labels.destination_service_namespace, 'default');
});

test('traffic through PassthroughCluster is counted with PassthroughCluster as the service name', async () => {
  const sock = connect(outbound.listenerPort('0.0.0.0_9002')!, '127.0.0.1');
  await once(sock, 'connect');
  sock.write('abc');
  await once(sock, 'data');
  const opened = find(await scrape(outbound.admin!.port), 'istio_tcp_connections_opened_total', { reporter: 'source', destination_service_name: 'PassthroughCluster' });
  assert.equal(opened.length, 1);
  assert.equal(opened[0].value, 1);
  assert.equal(opened[0].labels.destination_service, 'unknown');
  sock.destroy();
});

test('duration and size histograms use Istio buckets and agree with the request count', async () => {
  const samples = await scrape(outbound.admin!.port);
  const match = { reporter: 'source', response_code: '200' };
  const total = find(samples, 'istio_requests_total', match)[0].value;
  const buckets = find(samples, 'istio_request_duration_milliseconds_bucket', match);
  assert.deepEqual(buckets.map((b) => b.labels.le), ['0.5', '1', '5', '10', '25', '50', '100', '250', '500', '1000', '2500', '5000', '10000', '30000', '60000', '300000', '600000', '1800000', '3600000', '+Inf']);
  assert.equal(buckets.at(-1)!.value, total);
  for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i].value >= buckets[i - 1].value, 'cumulative');
  assert.equal(find(samples, 'istio_request_duration_milliseconds_count', match)[0].value, total);
  const respBytes = find(samples, 'istio_response_bytes_bucket', match);
  assert.equal(respBytes.length, 11);
  assert.equal(respBytes.find((b) => b.labels.le === '10')!.value, 0, 'a JSON echo with headers is more than 10 bytes');
  assert.ok(find(samples, 'istio_request_bytes_sum', match)[0].value > 0);
});

test('a failed upstream connect is counted with response_flags UF and code 503', async () => {
  const r = await get(outbound.listenerPort('0.0.0.0_9081')!, '/ratings', { host: 'ratings:9080' });
  assert.equal(r.status, 503);
  const s = find(await scrape(outbound.admin!.port), 'istio_requests_total', { reporter: 'source', destination_service_name: 'ratings' });
  assert.equal(s.length, 1);
  assert.equal(s[0].labels.response_code, '503');
  assert.equal(s[0].labels.response_flags, 'UF');
  assert.equal(s[0].labels.destination_workload, 'unknown', 'no peer answered');
});

test('label values hold no request data outside the fixed set', async () => {
  await get(outbound.listenerPort('0.0.0.0_9080')!, '/secret/path?token=abc', { host: 'reviews:9080', headers: { 'user-agent': 'agent-xyz' } });
  const text = (await get(outbound.admin!.port, '/stats/prometheus')).body;
  assert.ok(!text.includes('secret') && !text.includes('abc') && !text.includes('agent-xyz'));
});

test('TCP: connections opened and closed and bytes each way', async () => {
  const sock = connect(outbound.listenerPort('0.0.0.0_9000')!, '127.0.0.1');
  await once(sock, 'connect');
  sock.write('x'.repeat(100));
  const [reply] = (await once(sock, 'data')) as [Buffer];
  assert.equal(reply.toString(), 'got 100\n');
  // While open: the scrape shows the connection and its bytes so far.
  let samples = await scrape(outbound.admin!.port);
  const match = { reporter: 'source', request_protocol: 'tcp', destination_service: 'tcp-echo.default.svc.cluster.local' };
  assert.equal(find(samples, 'istio_tcp_connections_opened_total', match)[0].value, 1);
  assert.equal(find(samples, 'istio_tcp_connections_closed_total', match)[0].value, 0);
  assert.equal(find(samples, 'istio_tcp_received_bytes_total', match)[0].value, 100);
  sock.end();
  await once(sock, 'close');
  // The proxy sees the close on its side too; scrape until it has been counted.
  for (let i = 0; i < 50; i++) {
    samples = await scrape(outbound.admin!.port);
    if (find(samples, 'istio_tcp_connections_closed_total', match)[0].value === 1) break;
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(find(samples, 'istio_tcp_connections_closed_total', match)[0].value, 1);
  assert.equal(find(samples, 'istio_tcp_received_bytes_total', match)[0].value, 100);
  assert.equal(find(samples, 'istio_tcp_sent_bytes_total', match)[0].value, 'got 100\n'.length);
});

test('a stats listener (Istio 15090) serves Envoy and Istio metrics in one exposition', async () => {
  const r = await get(statsPort, '/stats/prometheus');
  assert.equal(r.status, 200);
  const samples = parsePrometheus(r.body);
  assert.ok(find(samples, 'istio_requests_total', { reporter: 'source' }).length > 0);
  assert.ok(samples.some((s) => s.name.startsWith('envoy_cluster_')));
  assert.equal((await get(statsPort, '/config_dump')).status, 404, 'only /stats/prometheus is routed');
});

test('istio.stats as plain @type is refused: only TypedStruct carries stats.PluginConfig', async () => {
  await assert.rejects(
    startProxy({ static_resources: { listeners: [directedListener('l', 'INBOUND', 'c', [{ name: 'istio.stats', typed_config: { '@type': 'type.googleapis.com/stats.PluginConfig' } }])] } }),
    /stats\.PluginConfig/,
  );
  void route;
});
