// Delta ADS over real gRPC: wildcard and named subscriptions, per-resource
// versions (hashes of the bytes), removed_resources, unsubscribe,
// initial_resource_versions after a reconnect, ACK and NACK.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TypeUrl, unpackMessage } from '../../src/xds/index.ts';
import { CLUSTER_A, CLUSTER_B, basePush, cluster, deltaStream, endpoints, nextOf, nodeOf, startPilot, waitFor } from './xds-server-helpers.ts';

test('delta: wildcard CDS, then changes and removals carry only what differs', async (t) => {
  const pilot = await startPilot({ debounceMs: 10 });
  const s = deltaStream(pilot.port);
  t.after(() => {
    s.close();
    pilot.stop();
  });
  s.send({ node: nodeOf(), type_url: TypeUrl.Cluster });
  const first = await nextOf(s, TypeUrl.Cluster);
  assert.equal(first.system_version_info, 'v1');
  assert.deepEqual(first.resources.map((r) => r.name).sort(), [CLUSTER_A, CLUSTER_B]);
  assert.deepEqual(first.removed_resources, []);
  const versions = Object.fromEntries(first.resources.map((r) => [r.name, r.version]));
  assert.equal(unpackMessage<{ name: string }>(first.resources[0].resource!).name, first.resources[0].name);
  s.send({ type_url: TypeUrl.Cluster, response_nonce: first.nonce });
  await waitFor(() => pilot.xds.proxyStatus()[0].types[TypeUrl.Cluster].state === 'SYNCED');

  // A changes, B goes away.
  pilot.xds.push({ full: true, push: basePush('v2', { [TypeUrl.Cluster]: [cluster(CLUSTER_A, 9)] }), reason: 'config' });
  pilot.clock.advance(10);
  const second = await nextOf(s, TypeUrl.Cluster);
  assert.equal(second.system_version_info, 'v2');
  assert.deepEqual(second.resources.map((r) => r.name), [CLUSTER_A]);
  assert.notEqual(second.resources[0].version, versions[CLUSTER_A]);
  assert.deepEqual(second.removed_resources, [CLUSTER_B]);

  s.send({ type_url: TypeUrl.Cluster, response_nonce: second.nonce, error_detail: { code: 3, message: 'no' } });
  await waitFor(() => pilot.xds.proxyStatus()[0].types[TypeUrl.Cluster].state === 'NACKED');
  const cds = pilot.xds.proxyStatus()[0].types[TypeUrl.Cluster];
  assert.equal(cds.ackedVersion, 'v1');
  assert.equal(cds.error, 'no');
});

test('delta: named EDS subscribe, unsubscribe and resubscribe', async (t) => {
  const pilot = await startPilot({ debounceMs: 10 });
  const s = deltaStream(pilot.port);
  t.after(() => {
    s.close();
    pilot.stop();
  });
  s.send({ node: nodeOf(), type_url: TypeUrl.ClusterLoadAssignment, resource_names_subscribe: [CLUSTER_A] });
  const first = await nextOf(s, TypeUrl.ClusterLoadAssignment);
  assert.deepEqual(first.resources.map((r) => r.name), [CLUSTER_A]);
  s.send({ type_url: TypeUrl.ClusterLoadAssignment, response_nonce: first.nonce, resource_names_subscribe: [CLUSTER_B] });
  const second = await nextOf(s, TypeUrl.ClusterLoadAssignment);
  assert.deepEqual(second.resources.map((r) => r.name), [CLUSTER_B], 'only the new subscription');

  s.send({ type_url: TypeUrl.ClusterLoadAssignment, response_nonce: second.nonce, resource_names_unsubscribe: [CLUSTER_A] });
  // Both endpoints change; the proxy watches only B now.
  pilot.xds.push({ full: false, push: basePush('v2', { [TypeUrl.ClusterLoadAssignment]: [endpoints(CLUSTER_A, ['10.9.0.1', 1]), endpoints(CLUSTER_B, ['10.9.0.2', 2])] }), reason: 'endpoint' });
  await waitFor(() => pilot.xds.proxyStatus()[0].types[TypeUrl.ClusterLoadAssignment].names?.length === 1);
  pilot.clock.advance(10);
  const third = await nextOf(s, TypeUrl.ClusterLoadAssignment);
  assert.deepEqual(third.resources.map((r) => r.name), [CLUSTER_B]);
  assert.deepEqual(third.removed_resources, [], 'an unsubscribed resource is not reported as removed');

  // Subscribing to A again sends it, though the client once held it.
  s.send({ type_url: TypeUrl.ClusterLoadAssignment, response_nonce: third.nonce, resource_names_subscribe: [CLUSTER_A] });
  const fourth = await nextOf(s, TypeUrl.ClusterLoadAssignment);
  assert.deepEqual(fourth.resources.map((r) => r.name), [CLUSTER_A]);
  assert.equal(fourth.system_version_info, 'v2');
});

test('delta: initial_resource_versions skips what a reconnecting client already holds', async (t) => {
  const pilot = await startPilot();
  const a = deltaStream(pilot.port);
  t.after(() => a.close());
  a.send({ node: nodeOf(), type_url: TypeUrl.Cluster });
  const held = await nextOf(a, TypeUrl.Cluster);
  a.close();
  const b = deltaStream(pilot.port);
  t.after(() => {
    b.close();
    pilot.stop();
  });
  const versionOfA = held.resources.find((r) => r.name === CLUSTER_A)!.version;
  b.send({ node: nodeOf(), type_url: TypeUrl.Cluster, initial_resource_versions: { [CLUSTER_A]: versionOfA, 'outbound|1||gone.default.svc.cluster.local': 'x' } });
  const res = await nextOf(b, TypeUrl.Cluster);
  assert.deepEqual(res.resources.map((r) => r.name), [CLUSTER_B]);
  assert.deepEqual(res.removed_resources, ['outbound|1||gone.default.svc.cluster.local']);
});

test('delta: an empty first response is still sent, so the client knows it is up to date', async (t) => {
  const pilot = await startPilot();
  const s = deltaStream(pilot.port);
  t.after(() => {
    s.close();
    pilot.stop();
  });
  s.send({ node: nodeOf(), type_url: TypeUrl.RouteConfiguration, resource_names_subscribe: ['no-such-route'] });
  const res = await nextOf(s, TypeUrl.RouteConfiguration);
  assert.deepEqual(res.resources, []);
  assert.equal(pilot.xds.proxyStatus()[0].protocol, 'delta');
});
