// Pushes: debounced and merged on a fake clock, sent only for types whose
// bytes changed, the endpoint fast path (EDS only, changed hosts only), the
// per-proxy queue merging pushes for a busy proxy, shared serialization.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TypeUrl } from '../../src/xds/index.ts';
import type { DiscoveryRequest, DiscoveryResponse } from '../../src/xds/index.ts';
import type { XdsResource } from '../../src/pilot/model/index.ts';
import { PushQueue } from '../../src/pilot/xds-server/push-queue.ts';
import { toMerged } from '../../src/pilot/xds-server/push-request.ts';
import type { MergedPush } from '../../src/pilot/xds-server/push-request.ts';
import type { Started, Stream, TestPush } from './xds-server-helpers.ts';
import { CLUSTER_A, CLUSTER_B, HOST_A, HOST_B, basePush, cluster, endpoints, listener, namesIn, nextOf, nodeOf, route, sotwStream, startPilot, waitFor } from './xds-server-helpers.ts';

type Sotw = Stream<DiscoveryRequest, DiscoveryResponse>;

/** Subscribes to CDS, EDS (both clusters), LDS, RDS and ACKs everything. */
async function syncedProxy(pilot: Started, name = 'app-1.default'): Promise<Sotw> {
  const s = sotwStream(pilot.port);
  const ask: DiscoveryRequest[] = [
    { node: nodeOf(name), type_url: TypeUrl.Cluster },
    { type_url: TypeUrl.ClusterLoadAssignment, resource_names: [CLUSTER_A, CLUSTER_B] },
    { type_url: TypeUrl.Listener },
    { type_url: TypeUrl.RouteConfiguration, resource_names: ['80'] },
  ];
  for (const req of ask) {
    s.send(req);
    const res = await nextOf(s, req.type_url!);
    s.send({ type_url: req.type_url, resource_names: req.resource_names ?? [], version_info: res.version_info, response_nonce: res.nonce });
  }
  const conn = () => pilot.xds.proxyStatus().find((p) => p.id === nodeOf(name).id);
  await waitFor(() => Object.values(conn()?.types ?? {}).filter((t) => t.state === 'SYNCED').length === 4);
  return s;
}

async function ack(s: Sotw, res: DiscoveryResponse, names: string[] = []): Promise<void> {
  s.send({ type_url: res.type_url, version_info: res.version_info, response_nonce: res.nonce, resource_names: names });
}

test('a full push resends only the types whose resources changed', async (t) => {
  const pilot = await startPilot({ debounceMs: 100 });
  const s = await syncedProxy(pilot);
  t.after(() => {
    s.close();
    pilot.stop();
  });
  const before = pilot.xds.stats().responses;
  // Same resources under a new version: nothing to send. Then a route changes.
  pilot.xds.push({ full: true, push: basePush('v2'), reason: 'config' });
  pilot.clock.advance(100);
  pilot.xds.push({ full: true, push: basePush('v3', { [TypeUrl.RouteConfiguration]: [route('80', CLUSTER_B)] }), reason: 'config' });
  pilot.clock.advance(100);
  // Streams are ordered and each proxy's pushes run in order: RDS is the next message only if v2 sent nothing.
  const rds = await nextOf(s, TypeUrl.RouteConfiguration);
  assert.equal(rds.version_info, 'v3');
  assert.deepEqual(namesIn(rds), ['80']);
  assert.equal(pilot.xds.stats().responses, before + 1);
  await ack(s, rds, ['80']);
  await waitFor(() => pilot.xds.proxyStatus()[0].types[TypeUrl.RouteConfiguration].state === 'SYNCED');
  const types = pilot.xds.proxyStatus()[0].types;
  assert.equal(types[TypeUrl.RouteConfiguration].ackedVersion, 'v3');
  for (const unchanged of [TypeUrl.Cluster, TypeUrl.Listener, TypeUrl.ClusterLoadAssignment]) {
    assert.equal(types[unchanged].sentVersion, 'v1', unchanged);
    assert.equal(types[unchanged].state, 'SYNCED', unchanged);
  }
  assert.equal(pilot.xds.stats().pushes, 2);
  // A listener removed: LDS is state of the world, so the response holds the full (now different) set.
  pilot.xds.push({ full: true, push: basePush('v4', { [TypeUrl.Listener]: [listener('0.0.0.0_81', 81)], [TypeUrl.RouteConfiguration]: [route('80', CLUSTER_B)] }), reason: 'config' });
  pilot.clock.advance(100);
  const lds = await nextOf(s, TypeUrl.Listener);
  assert.deepEqual(namesIn(lds), ['0.0.0.0_81']);
});

test('the fast path sends only EDS, and only for the changed hosts', async (t) => {
  const pilot = await startPilot({ debounceMs: 10 });
  const s = await syncedProxy(pilot);
  t.after(() => {
    s.close();
    pilot.stop();
  });
  pilot.calls.length = 0;
  // Everything differs in v2, but the request says only host A's endpoints changed.
  const v2 = basePush('v2', {
    [TypeUrl.Cluster]: [cluster(CLUSTER_A, 7)],
    [TypeUrl.Listener]: [],
    [TypeUrl.ClusterLoadAssignment]: [endpoints(CLUSTER_A, ['10.0.0.9', 8080]), endpoints(CLUSTER_B, ['10.0.0.8', 8080])],
  });
  pilot.xds.push({ full: false, push: v2, changedHosts: new Set([HOST_A]), reason: 'endpoint' });
  pilot.clock.advance(10);
  const eds = await nextOf(s, TypeUrl.ClusterLoadAssignment);
  assert.deepEqual(namesIn(eds), [CLUSTER_A]);
  assert.equal(eds.version_info, 'v2');
  assert.deepEqual(
    pilot.calls.map((c) => [c.typeUrl, c.request.names, c.request.full, [...(c.request.changedHosts ?? [])]]),
    [[TypeUrl.ClusterLoadAssignment, [CLUSTER_A], false, [HOST_A]]],
  );
  // A full push afterwards catches up on the rest: CDS, EDS for B, LDS, in Envoy's order.
  pilot.xds.push({ full: true, push: v2, reason: 'config' });
  pilot.clock.advance(10);
  assert.deepEqual(namesIn(await nextOf(s, TypeUrl.Cluster)), [CLUSTER_A]);
  assert.deepEqual(namesIn(await nextOf(s, TypeUrl.ClusterLoadAssignment)), [CLUSTER_B]);
  assert.deepEqual(namesIn(await nextOf(s, TypeUrl.Listener)), []);
});

test('a burst of push requests is debounced into one merged push', async (t) => {
  const pilot = await startPilot({ debounceMs: 100, maxDebounceMs: 10_000 });
  const s = await syncedProxy(pilot);
  t.after(() => {
    s.close();
    pilot.stop();
  });
  const a2 = endpoints(CLUSTER_A, ['10.0.0.5', 8080]);
  const b2 = endpoints(CLUSTER_B, ['10.0.0.6', 8080]);
  pilot.xds.push({ full: false, push: basePush('v2', { [TypeUrl.ClusterLoadAssignment]: [a2, endpoints(CLUSTER_B, ['10.0.0.2', 8080])] }), changedHosts: new Set([HOST_A]), reason: 'endpoint' });
  pilot.clock.advance(60);
  pilot.xds.push({ full: false, push: basePush('v3', { [TypeUrl.ClusterLoadAssignment]: [a2, b2] }), changedHosts: new Set([HOST_B]), reason: 'endpoint' });
  pilot.clock.advance(60);
  assert.equal(pilot.xds.stats().pushes, 0, 'still inside the quiet period of the second request');
  pilot.clock.advance(39);
  assert.equal(pilot.xds.stats().pushes, 0);
  pilot.clock.advance(1);
  assert.equal(pilot.xds.stats().pushes, 1);
  const eds = await nextOf(s, TypeUrl.ClusterLoadAssignment);
  assert.equal(eds.version_info, 'v3', 'the latest push context wins');
  assert.deepEqual(namesIn(eds).sort(), [CLUSTER_A, CLUSTER_B], 'changed hosts are unioned');
  assert.equal(pilot.xds.stats().pushRequests, 2);
  assert.match(await pilot.metrics.getSingleMetricAsString('pilot_debounce_time'), /pilot_debounce_time_count 1/);
});

test('pushPendingNow skips the quiet period (upstream debounced), except while a push is still going out', async (t) => {
  const pilot = await startPilot({ debounceMs: 100, maxDebounceMs: 10_000 });
  const s = await syncedProxy(pilot);
  t.after(() => {
    s.close();
    pilot.stop();
  });
  pilot.xds.pushPendingNow(); // nothing pending: nothing happens
  pilot.clock.advance(0);
  assert.equal(pilot.xds.stats().pushes, 0);
  pilot.xds.push({ full: false, push: basePush('v2', { [TypeUrl.ClusterLoadAssignment]: [endpoints(CLUSTER_A, ['10.0.0.5', 8080]), endpoints(CLUSTER_B, ['10.0.0.2', 8080])] }), changedHosts: new Set([HOST_A]), reason: 'endpoint' });
  pilot.xds.pushPendingNow();
  // A request of the same turn still merges into the push.
  pilot.xds.push({ full: false, push: basePush('v3', { [TypeUrl.ClusterLoadAssignment]: [endpoints(CLUSTER_A, ['10.0.0.5', 8080]), endpoints(CLUSTER_B, ['10.0.0.6', 8080])] }), changedHosts: new Set([HOST_B]), reason: 'endpoint' });
  pilot.clock.advance(0);
  assert.equal(pilot.xds.stats().pushes, 1, 'pushed with no quiet period');
  // The push is going out to the proxy right now: the next request waits for its quiet period.
  pilot.xds.push({ full: false, push: basePush('v4'), changedHosts: new Set([HOST_A]), reason: 'endpoint' });
  pilot.xds.pushPendingNow();
  pilot.clock.advance(0);
  assert.equal(pilot.xds.stats().pushes, 1, 'no second push while the first is in flight');
  const eds = await nextOf(s, TypeUrl.ClusterLoadAssignment);
  assert.equal(eds.version_info, 'v3');
  assert.deepEqual(namesIn(eds).sort(), [CLUSTER_A, CLUSTER_B]);
  pilot.clock.advance(100);
  assert.equal(pilot.xds.stats().pushes, 2, 'the later request after its quiet period');
});

test('a steady stream of requests is pushed when the first is maxDebounceMs old', async (t) => {
  const pilot = await startPilot({ debounceMs: 100, maxDebounceMs: 300 });
  t.after(() => pilot.stop());
  for (let i = 0; i < 5; i++) {
    pilot.xds.push({ full: i === 2, reason: 'config' });
    pilot.clock.advance(i < 4 ? 70 : 0);
  }
  // Requests at 0, 70, 140, 210, 280: never 100 quiet, so the cap decides.
  pilot.clock.advance(19);
  assert.equal(pilot.xds.stats().pushes, 0);
  pilot.clock.advance(1);
  assert.equal(pilot.xds.stats().pushes, 1);
  assert.equal(pilot.clock.pending(), 0);
});

test('the per-proxy queue merges pushes that arrive while a proxy is busy', async () => {
  const seen: Array<[string, MergedPush<TestPush>]> = [];
  let release!: () => void;
  const queue = new PushQueue<string, TestPush>(1, async (key, push) => {
    seen.push([key, push]);
    if (seen.length === 1) await new Promise<void>((r) => (release = r));
  });
  queue.enqueue('p1', toMerged({ full: false, changedHosts: new Set(['a']), reason: 'endpoint' }, 1));
  await waitFor(() => seen.length === 1);
  // p1 is busy: these wait and merge. p2 is queued once, merged too.
  queue.enqueue('p1', toMerged({ full: false, changedHosts: new Set(['b']), reason: 'endpoint' }, 2));
  queue.enqueue('p1', toMerged({ full: true, push: basePush('v9'), reason: 'config' }, 3));
  queue.enqueue('p2', toMerged({ full: false, changedHosts: new Set(['c']), reason: 'endpoint' }, 4));
  queue.enqueue('p2', toMerged({ full: false, changedHosts: new Set(['d']), reason: 'endpoint' }, 5));
  release();
  await waitFor(() => seen.length === 3);
  const [, p2] = seen.find(([k], i) => k === 'p2' && i > 0)!;
  const [, p1] = seen.find(([k], i) => k === 'p1' && i > 0)!;
  assert.deepEqual([...p2.changedHosts!].sort(), ['c', 'd']);
  assert.equal(p1.full, true);
  assert.equal(p1.push?.version, 'v9');
  assert.equal(p1.since, 2);
  assert.deepEqual(Object.fromEntries(p1.reasons), { endpoint: 1, config: 1 });
  assert.equal(queue.size, 0);
});

test('resources with a cacheKey are serialized once for all proxies', async (t) => {
  const keyed = (r: XdsResource, key: string): XdsResource => ({ ...r, cacheKey: key });
  const push = basePush('v1', { [TypeUrl.Cluster]: [keyed(cluster(CLUSTER_A), 'cds/a'), keyed(cluster(CLUSTER_B), 'cds/b')] });
  const pilot = await startPilot({ initialPush: push });
  const a = sotwStream(pilot.port);
  const b = sotwStream(pilot.port);
  t.after(() => {
    a.close();
    b.close();
    pilot.stop();
  });
  a.send({ node: nodeOf('a.default'), type_url: TypeUrl.Cluster });
  const fromA = await nextOf(a, TypeUrl.Cluster);
  b.send({ node: nodeOf('b.default'), type_url: TypeUrl.Cluster });
  const fromB = await nextOf(b, TypeUrl.Cluster);
  assert.deepEqual(fromA.resources, fromB.resources);
  assert.deepEqual(pilot.xds.cacheStats(), { hits: 2, misses: 2 });
});

test('config a generator cannot build leaves the proxy on what it has', async (t) => {
  const errors: string[] = [];
  const log = { debug() {}, info() {}, warn() {}, error: (obj: object, msg: string) => errors.push(`${msg}: ${JSON.stringify(obj)}`) };
  const pilot = await startPilot({ debounceMs: 10, log });
  const s = await syncedProxy(pilot);
  t.after(() => {
    s.close();
    pilot.stop();
  });
  const bad: XdsResource = { name: CLUSTER_A, value: { name: CLUSTER_A, connect_timout: { seconds: 1 } } };
  pilot.xds.push({ full: true, push: basePush('v2', { [TypeUrl.Cluster]: [bad], [TypeUrl.RouteConfiguration]: [route('80', CLUSTER_B)] }), reason: 'config' });
  pilot.clock.advance(10);
  // CDS fails to build and is skipped; RDS, pushed after it, still goes out.
  const rds = await nextOf(s, TypeUrl.RouteConfiguration);
  assert.equal(rds.version_info, 'v2');
  assert.equal(errors.length, 1);
  assert.match(errors[0], /connect_timout/);
  assert.equal(pilot.xds.proxyStatus()[0].types[TypeUrl.Cluster].sentVersion, 'v1');
});
