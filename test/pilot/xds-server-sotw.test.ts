// Pilot's ADS server, state of the world, over real gRPC: the initial
// LDS/CDS then RDS/EDS by name, ACKs, NACKs, stale nonces, subscription
// changes, unknown type URLs and nodes Pilot cannot resolve; how a Node
// becomes a ProxyNode.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { TypeUrl } from '../../src/xds/index.ts';
import type { DiscoveryResponse } from '../../src/xds/index.ts';
import type { ProxyNode } from '../../src/pilot/model/index.ts';
import { InvalidNodeError, defaultResolveProxy } from '../../src/pilot/xds-server/index.ts';
import { CLUSTER_A, CLUSTER_B, basePush, cluster, namesIn, nextOf, nodeOf, sotwStream, startPilot, structOf, waitFor } from './xds-server-helpers.ts';

test('initial LDS and CDS are wildcard, then RDS and EDS by name; ACKs make the proxy SYNCED', async (t) => {
  const pilot = await startPilot();
  const s = sotwStream(pilot.port);
  t.after(() => {
    s.close();
    pilot.stop();
  });
  const node = nodeOf();
  s.send({ node, type_url: TypeUrl.Cluster });
  const cds = await nextOf(s, TypeUrl.Cluster);
  assert.deepEqual(namesIn(cds).sort(), [CLUSTER_A, CLUSTER_B]);
  assert.equal(cds.version_info, 'v1');
  assert.ok(cds.nonce);
  assert.equal(cds.control_plane?.identifier, 'pilot');

  // Not yet ACKed: STALE.
  let status = pilot.xds.proxyStatus();
  assert.equal(status.length, 1);
  assert.equal(status[0].id, node.id);
  assert.equal(status[0].types[TypeUrl.Cluster].state, 'STALE');
  assert.equal(status[0].types[TypeUrl.Cluster].sentVersion, 'v1');

  s.send({ type_url: TypeUrl.Cluster, version_info: cds.version_info, response_nonce: cds.nonce });
  s.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: [CLUSTER_A] });
  const eds = await nextOf(s, TypeUrl.ClusterLoadAssignment);
  assert.deepEqual(namesIn(eds), [CLUSTER_A]);

  s.send({ type_url: TypeUrl.Listener });
  const lds = await nextOf(s, TypeUrl.Listener);
  assert.deepEqual(namesIn(lds), ['0.0.0.0_80']);
  s.send({ type_url: TypeUrl.Listener, version_info: lds.version_info, response_nonce: lds.nonce });
  s.send({ type_url: TypeUrl.RouteConfiguration, resource_names: ['80'] });
  const rds = await nextOf(s, TypeUrl.RouteConfiguration);
  assert.deepEqual(namesIn(rds), ['80']);
  s.send({ type_url: TypeUrl.RouteConfiguration, version_info: rds.version_info, response_nonce: rds.nonce, resource_names: ['80'] });
  s.send({ type_url: TypeUrl.ClusterLoadAssignment, version_info: eds.version_info, response_nonce: eds.nonce, resource_names: [CLUSTER_A] });

  // The proxy resolves from the id and the Struct metadata.
  await waitFor(() => pilot.xds.proxyStatus()[0].types[TypeUrl.ClusterLoadAssignment].state === 'SYNCED');
  status = pilot.xds.proxyStatus();
  for (const type of [TypeUrl.Cluster, TypeUrl.Listener, TypeUrl.RouteConfiguration, TypeUrl.ClusterLoadAssignment]) {
    assert.equal(status[0].types[type].state, 'SYNCED', type);
    assert.equal(status[0].types[type].ackedVersion, 'v1', type);
  }
  assert.deepEqual(status[0].types[TypeUrl.ClusterLoadAssignment].names, [CLUSTER_A]);
  const info = pilot.xds.connectionsInfo()[0];
  assert.equal(info.proxy?.namespace, 'default');
  assert.deepEqual(info.proxy?.labels, { app: 'app' });
  assert.deepEqual(info.proxy?.ipAddresses, ['10.1.0.1']);
  // ACKs without a change of names got no response: exactly the four above.
  assert.equal(pilot.xds.stats().responses, 4);
  assert.equal(pilot.xds.stats().acks, 4);
});

test('a NACK keeps the last ACKed version and shows NACKED with the error text', async (t) => {
  const pilot = await startPilot({ debounceMs: 10 });
  const s = sotwStream(pilot.port);
  t.after(() => {
    s.close();
    pilot.stop();
  });
  s.send({ node: nodeOf(), type_url: TypeUrl.Cluster });
  const first = await nextOf(s, TypeUrl.Cluster);
  s.send({ type_url: TypeUrl.Cluster, version_info: first.version_info, response_nonce: first.nonce });

  await waitFor(() => pilot.xds.proxyStatus()[0].types[TypeUrl.Cluster].state === 'SYNCED');

  const next = basePush('v2', { [TypeUrl.Cluster]: [cluster(CLUSTER_A, 5)] });
  pilot.xds.push({ full: true, push: next, reason: 'config' });
  pilot.clock.advance(10);
  const second = await nextOf(s, TypeUrl.Cluster);
  assert.equal(second.version_info, 'v2');
  assert.deepEqual(namesIn(second), [CLUSTER_A]);
  s.send({ type_url: TypeUrl.Cluster, version_info: 'v1', response_nonce: second.nonce, error_detail: { code: 3, message: 'cluster outbound|80||a: bad timeout' } });

  await waitFor(() => pilot.xds.proxyStatus()[0].types[TypeUrl.Cluster].state === 'NACKED');
  const cds = pilot.xds.proxyStatus()[0].types[TypeUrl.Cluster];
  assert.equal(cds.ackedVersion, 'v1');
  assert.equal(cds.sentVersion, 'v2');
  assert.equal(cds.error, 'cluster outbound|80||a: bad timeout');
  assert.equal(pilot.xds.stats().nacks, 1);
  assert.match(await pilot.metrics.getSingleMetricAsString('pilot_total_xds_rejects'), /pilot_total_xds_rejects\{type="cds"\} 1/);
});

test('a request with a stale nonce is ignored, even when it changes resource names', async (t) => {
  const pilot = await startPilot();
  const s = sotwStream(pilot.port);
  t.after(() => {
    s.close();
    pilot.stop();
  });
  s.send({ node: nodeOf(), type_url: TypeUrl.ClusterLoadAssignment, resource_names: [CLUSTER_A] });
  const first = await nextOf(s, TypeUrl.ClusterLoadAssignment);
  // A names change answers the first response, and gets a second one.
  s.send({ type_url: TypeUrl.ClusterLoadAssignment, version_info: 'v1', response_nonce: first.nonce, resource_names: [CLUSTER_A, CLUSTER_B] });
  const second = await nextOf(s, TypeUrl.ClusterLoadAssignment);
  assert.deepEqual(namesIn(second), [CLUSTER_B], 'only the newly named resource: the client holds the other');
  assert.notEqual(second.nonce, first.nonce);

  // The first nonce is stale now: its NACK is not recorded, its names are not applied.
  s.send({ type_url: TypeUrl.ClusterLoadAssignment, version_info: '', response_nonce: first.nonce, resource_names: [CLUSTER_A], error_detail: { message: 'late' } });
  await waitFor(() => pilot.xds.stats().staleNonces === 1);
  const eds = pilot.xds.proxyStatus()[0].types[TypeUrl.ClusterLoadAssignment];
  assert.equal(eds.state, 'STALE');
  assert.deepEqual(eds.names, [CLUSTER_A, CLUSTER_B]);
  assert.equal(pilot.xds.stats().nacks, 0);

  // The current nonce is answered normally.
  s.send({ type_url: TypeUrl.ClusterLoadAssignment, version_info: 'v1', response_nonce: second.nonce, resource_names: [CLUSTER_A, CLUSTER_B] });
  await waitFor(() => pilot.xds.proxyStatus()[0].types[TypeUrl.ClusterLoadAssignment].state === 'SYNCED');
  assert.equal(pilot.xds.stats().responses, 2);
});

test('an unknown type URL gets an empty response and the stream lives on', async (t) => {
  const pilot = await startPilot();
  const s = sotwStream(pilot.port);
  t.after(() => {
    s.close();
    pilot.stop();
  });
  s.send({ node: nodeOf(), type_url: TypeUrl.Runtime });
  const empty: DiscoveryResponse = await nextOf(s, TypeUrl.Runtime);
  assert.deepEqual(empty.resources, []);
  s.send({ type_url: TypeUrl.Runtime, response_nonce: empty.nonce, version_info: empty.version_info });
  s.send({ type_url: TypeUrl.RouteConfiguration, resource_names: ['80'] });
  assert.deepEqual(namesIn(await nextOf(s, TypeUrl.RouteConfiguration)), ['80']);
  assert.equal(pilot.xds.stats().unknownTypeRequests, 1);
});

test('a node id Pilot cannot parse ends the stream with INVALID_ARGUMENT', async (t) => {
  const pilot = await startPilot();
  const s = sotwStream(pilot.port);
  t.after(() => {
    s.close();
    pilot.stop();
  });
  s.send({ node: { id: 'not-an-istio-id' }, type_url: TypeUrl.Cluster });
  const status = await s.ended;
  assert.equal(status.code, grpc.status.INVALID_ARGUMENT);
  assert.match(status.details, /not-an-istio-id/);
  assert.equal(pilot.xds.stats().connections, 0);
});

test('streams beyond maxConnections are refused with RESOURCE_EXHAUSTED', async (t) => {
  const pilot = await startPilot({ maxConnections: 1 });
  const a = sotwStream(pilot.port);
  const b = sotwStream(pilot.port);
  t.after(() => {
    a.close();
    b.close();
    pilot.stop();
  });
  a.send({ node: nodeOf('a.default'), type_url: TypeUrl.Cluster });
  await nextOf(a, TypeUrl.Cluster);
  b.send({ node: nodeOf('b.default'), type_url: TypeUrl.Cluster });
  assert.equal((await b.ended).code, grpc.status.RESOURCE_EXHAUSTED);
  assert.equal(pilot.xds.proxyStatus().length, 1);
});

const nodes: Array<[string, { id: string; metadata?: unknown }, Partial<ProxyNode> | RegExp]> = [
  ['metadata wins over the id', { id: 'sidecar~10.0.0.1~web-1.prod~prod.svc.cluster.local', metadata: structOf({ NAMESPACE: 'other', INSTANCE_IPS: '10.0.0.1, 10.0.0.2', LABELS: { app: 'web', version: 'v1' }, GENERATOR: 'grpc' }) }, { namespace: 'other', ipAddresses: ['10.0.0.1', '10.0.0.2'], labels: { app: 'web', version: 'v1' }, generator: 'grpc', workloadName: 'web-1.prod', type: 'sidecar' }],
  ['a gateway without metadata', { id: 'router~10.0.0.3~gw-1.istio-system~istio-system.svc.cluster.local' }, { type: 'router', namespace: 'istio-system', ipAddresses: ['10.0.0.3'], labels: {} }],
  ['nested metadata values', { id: 'sidecar~1.1.1.1~a.b~b.svc.cluster.local', metadata: structOf({ LIST: ['x', 1, true], NESTED: { k: { deep: 'v' } } }) }, { metadata: { LIST: ['x', 1, true], NESTED: { k: { deep: 'v' } } } }],
  ['an unknown proxy type', { id: 'waypoint~1.1.1.1~a.b~b.svc.cluster.local' }, /waypoint/],
];
for (const [name, node, want] of nodes) {
  test(`defaultResolveProxy: ${name}`, () => {
    if (want instanceof RegExp) {
      assert.throws(() => defaultResolveProxy(node), (err: unknown) => err instanceof InvalidNodeError && err.code === 'MESH_ERR_PILOT_INVALID_NODE' && want.test(err.message));
      return;
    }
    const proxy = defaultResolveProxy(node);
    for (const [key, value] of Object.entries(want)) assert.deepEqual(proxy[key as keyof ProxyNode], value, key);
  });
}
