// Which proxies a push reaches: an endpoint push for one host only reaches
// the proxies watching a cluster of that host, a full push limited to some
// types only the proxies watching one of them. The others are not queued at
// all (pilot_proxy_convergence_time counts one per proxy pushed), keep their
// config, and a later subscription still gets the current endpoints. Real
// gRPC streams, a fake clock.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TypeUrl } from '../../src/xds/index.ts';
import type { DiscoveryRequest, DiscoveryResponse } from '../../src/xds/index.ts';
import type { Started, Stream } from './xds-server-helpers.ts';
import { CLUSTER_A, CLUSTER_B, HOST_A, basePush, endpoints, namesIn, nextOf, nodeOf, sotwStream, startPilot, waitFor } from './xds-server-helpers.ts';

type Sotw = Stream<DiscoveryRequest, DiscoveryResponse>;

/** A proxy subscribed to one type by name, ACKed; with the latest nonce. */
async function watching(pilot: Started, name: string, typeUrl: string, names: string[]): Promise<{ s: Sotw; nonce: string }> {
  const s = sotwStream(pilot.port);
  s.send({ node: nodeOf(name), type_url: typeUrl, resource_names: names });
  const res = await nextOf(s, typeUrl);
  s.send({ version_info: res.version_info, response_nonce: res.nonce, type_url: typeUrl, resource_names: names });
  return { s, nonce: res.nonce };
}

/** How many proxy pushes finished (one pilot_proxy_convergence_time observation each). */
async function proxiesPushed(pilot: Started): Promise<number> {
  const metric = (await pilot.metrics.getMetricsAsJSON()).find((m) => m.name === 'pilot_proxy_convergence_time');
  return (metric?.values.find((v) => (v as { metricName?: string }).metricName === 'pilot_proxy_convergence_time_count')?.value as number | undefined) ?? 0;
}

test('an endpoint push for one host reaches only the proxies watching its cluster', async (t) => {
  const pilot = await startPilot({ debounceMs: 10 });
  const a = await watching(pilot, 'a-1.default', TypeUrl.ClusterLoadAssignment, [CLUSTER_A]);
  const ab = await watching(pilot, 'ab-1.default', TypeUrl.ClusterLoadAssignment, [CLUSTER_B, CLUSTER_A]);
  const b = await watching(pilot, 'b-1.default', TypeUrl.ClusterLoadAssignment, [CLUSTER_B]);
  t.after(() => {
    for (const p of [a, ab, b]) p.s.close();
    pilot.stop();
  });
  await waitFor(() => pilot.xds.stats().acks === 3);
  pilot.calls.length = 0;
  const pushedBefore = await proxiesPushed(pilot);

  const v2 = basePush('v2', { [TypeUrl.ClusterLoadAssignment]: [endpoints(CLUSTER_A, ['10.0.0.9', 8080]), endpoints(CLUSTER_B, ['10.0.0.2', 8080])] });
  pilot.xds.push({ full: false, push: v2, changedHosts: new Set([HOST_A]), reason: 'endpoint' });
  pilot.clock.advance(20);
  for (const p of [a, ab]) assert.deepEqual(namesIn(await nextOf(p.s, TypeUrl.ClusterLoadAssignment)), [CLUSTER_A]);
  // Two proxies pushed, generated for CLUSTER_A only; the third never queued.
  await waitFor(() => pilot.calls.length === 2);
  assert.equal((await proxiesPushed(pilot)) - pushedBefore, 2);
  assert.deepEqual(pilot.calls.map((c) => [c.proxy, c.request.names]).sort(), [
    [nodeOf('a-1.default').id, [CLUSTER_A]],
    [nodeOf('ab-1.default').id, [CLUSTER_A]],
  ]);
  assert.equal(b.s.responses.size, 0);

  // The skipped proxy is not behind: subscribing to A now gets v2's endpoints.
  b.s.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: [CLUSTER_B, CLUSTER_A], version_info: 'v1', response_nonce: b.nonce });
  const got = await nextOf(b.s, TypeUrl.ClusterLoadAssignment);
  assert.deepEqual(namesIn(got), [CLUSTER_A]);
  assert.equal(got.version_info, 'v2');
  assert.match(JSON.stringify(pilot.xds.proxyConfig(nodeOf('b-1.default').id)?.types[TypeUrl.ClusterLoadAssignment]), /10\.0\.0\.9/);
});

test('a full push limited to listeners and routes skips proxies that watch neither', async (t) => {
  const pilot = await startPilot({ debounceMs: 10 });
  const eds = await watching(pilot, 'eds-1.default', TypeUrl.ClusterLoadAssignment, [CLUSTER_A]);
  const rds = await watching(pilot, 'rds-1.default', TypeUrl.RouteConfiguration, ['80']);
  t.after(() => {
    eds.s.close();
    rds.s.close();
    pilot.stop();
  });
  await waitFor(() => pilot.xds.stats().acks === 2);
  const pushedBefore = await proxiesPushed(pilot);
  const pushesBefore = pilot.xds.stats().pushes;
  pilot.xds.push({ full: true, push: basePush('v2'), types: new Set([TypeUrl.Listener, TypeUrl.RouteConfiguration]), reason: 'config' });
  pilot.clock.advance(20);
  await waitFor(() => pilot.xds.stats().pushes === pushesBefore + 1);
  // The route proxy is pushed (its route config did not change: nothing is sent); the EDS-only one is not queued.
  const deadline = Date.now() + 2000;
  while ((await proxiesPushed(pilot)) - pushedBefore < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await proxiesPushed(pilot)) - pushedBefore, 1);
  assert.deepEqual([...new Set(pilot.calls.filter((c) => c.request.full && c.typeUrl === TypeUrl.RouteConfiguration).map((c) => c.proxy))], [nodeOf('rds-1.default').id]);
});
