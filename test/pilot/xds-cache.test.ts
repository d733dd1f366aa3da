// Incremental pushes through a real Pilot (Galley's MemoryStore and snapshots,
// the ADS server on a real port, SotW and delta clients): a VirtualService
// change re-sends only the route config that uses it, an endpoint change only
// EDS, a DestinationRule change invalidates the cached route configs that
// read it, and what proxies hold after every change equals a from-scratch build.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { ConfigObject } from '../../src/api/index.ts';
import { createKindRegistry, defaultMeshConfig, keyOf } from '../../src/api/index.ts';
import { MemoryStore, SnapshotDistributor } from '../../src/galley/index.ts';
import { Pilot } from '../../src/pilot/index.ts';
import { buildPushContext, createGenerators } from '../../src/pilot/networking/index.ts';
import { TypeUrl, unpackMessage } from '../../src/xds/index.ts';
import type { DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse } from '../../src/xds/index.ts';
import { FakeClock } from './fixtures/registry-fake-clock.ts';
import type { Stream } from './xds-server-helpers.ts';
import { deltaStream, namesIn, nodeOf, sotwStream, waitFor } from './xds-server-helpers.ts';

const NS = 'default';
const hostOf = (svc: string): string => `${svc}.${NS}.svc.cluster.local`;
const PORTS: Record<string, number> = { a: 9080, b: 9090 };

function serviceEntry(svc: string): ConfigObject {
  return {
    apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: svc, namespace: NS },
    spec: { hosts: [hostOf(svc)], location: 'MESH_INTERNAL', resolution: 'STATIC', ports: [{ number: PORTS[svc], name: 'http', protocol: 'HTTP' }], workloadSelector: { labels: { app: svc } } },
  } as ConfigObject;
}

function workloadEntry(svc: string, address: string): ConfigObject {
  return { apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name: `${svc}-1`, namespace: NS }, spec: { address, labels: { app: svc, version: 'v1' } } } as ConfigObject;
}

function virtualService(svc: string, timeout: string): ConfigObject {
  return {
    apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: svc, namespace: NS },
    spec: { hosts: [hostOf(svc)], http: [{ route: [{ destination: { host: hostOf(svc) } }], timeout }] },
  } as ConfigObject;
}

function destinationRule(svc: string, header?: string): ConfigObject {
  return {
    apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: svc, namespace: NS },
    spec: { host: hostOf(svc), ...(header ? { trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: header } } } } : {}) },
  } as ConfigObject;
}

interface Mesh {
  readonly port: number;
  readonly pilot: Pilot;
  readonly distributor: SnapshotDistributor;
  /** Set by close(): the clients' loops stop. */
  closed: boolean;
  /** Applies and publishes one snapshot (Galley's debounce is on a fake clock: flushed here). */
  apply(...objects: ConfigObject[]): Promise<void>;
  remove(obj: ConfigObject): Promise<void>;
  close(): Promise<void>;
}

async function startMesh(): Promise<Mesh> {
  const store = new MemoryStore();
  for (const obj of [serviceEntry('a'), serviceEntry('b'), workloadEntry('a', '10.0.0.1'), workloadEntry('b', '10.0.0.2'), virtualService('a', '1s'), virtualService('b', '1s'), destinationRule('b')]) await store.apply(obj);
  const distributor = new SnapshotDistributor({ store, registry: createKindRegistry(), clock: new FakeClock() });
  await distributor.start();
  const pilot = new Pilot({ snapshots: distributor, meshConfig: defaultMeshConfig(), debounceMs: 20 });
  await pilot.start();
  const server = new grpc.Server();
  pilot.register(server);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const mesh: Mesh = {
    port,
    pilot,
    distributor,
    closed: false,
    async apply(...objects) {
      for (const obj of objects) await store.apply(obj);
      distributor.flush();
    },
    async remove(obj) {
      await store.delete(keyOf(obj));
      distributor.flush();
    },
    async close() {
      mesh.closed = true;
      server.forceShutdown();
      await pilot.stop();
      distributor.stop();
      await store.close();
    },
  };
  return mesh;
}

type Sotw = Stream<DiscoveryRequest, DiscoveryResponse>;
type Delta = Stream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;

/** A SotW sidecar subscribed as Envoy does (CDS, EDS, LDS, RDS), every response ACKed; responses after sync are collected. */
async function sotwSidecar(mesh: Mesh, name: string): Promise<{ stream: Sotw; received: DiscoveryResponse[] }> {
  const stream = sotwStream(mesh.port);
  const received: DiscoveryResponse[] = [];
  const names: Record<string, string[]> = {
    [TypeUrl.Cluster]: [],
    [TypeUrl.ClusterLoadAssignment]: [`outbound|9080||${hostOf('a')}`, `outbound|9090||${hostOf('b')}`],
    [TypeUrl.Listener]: [],
    [TypeUrl.RouteConfiguration]: ['9080', '9090'],
  };
  let synced = false;
  const pump = async (): Promise<void> => {
    while (!mesh.closed) {
      const res = await stream.responses.take(100).catch(() => undefined);
      if (!res) continue;
      if (synced) received.push(res);
      stream.send({ type_url: res.type_url, version_info: res.version_info, response_nonce: res.nonce, resource_names: names[res.type_url] ?? [] });
    }
  };
  let first = true;
  for (const [typeUrl, resourceNames] of Object.entries(names)) {
    stream.send({ ...(first ? { node: nodeOf(name) } : {}), type_url: typeUrl, resource_names: resourceNames });
    first = false;
  }
  void pump();
  await waitFor(() => Object.values(mesh.pilot.xds.proxyStatus().find((p) => p.id === nodeOf(name).id)?.types ?? {}).filter((t) => t.state === 'SYNCED').length === 4);
  synced = true;
  return { stream, received };
}

async function deltaSidecar(mesh: Mesh, name: string): Promise<{ stream: Delta; received: DeltaDiscoveryResponse[] }> {
  const stream = deltaStream(mesh.port);
  const received: DeltaDiscoveryResponse[] = [];
  let synced = false;
  const subs: Record<string, string[]> = {
    [TypeUrl.Cluster]: [],
    [TypeUrl.ClusterLoadAssignment]: [`outbound|9080||${hostOf('a')}`, `outbound|9090||${hostOf('b')}`],
    [TypeUrl.Listener]: [],
    [TypeUrl.RouteConfiguration]: ['9080', '9090'],
  };
  let first = true;
  for (const [typeUrl, names] of Object.entries(subs)) {
    stream.send({ ...(first ? { node: nodeOf(name) } : {}), type_url: typeUrl, resource_names_subscribe: names });
    first = false;
  }
  void (async () => {
    while (!mesh.closed) {
      const res = await stream.responses.take(100).catch(() => undefined);
      if (!res) continue;
      if (synced) received.push(res);
      stream.send({ type_url: res.type_url, response_nonce: res.nonce });
    }
  })();
  await waitFor(() => Object.values(mesh.pilot.xds.proxyStatus().find((p) => p.id === nodeOf(name).id)?.types ?? {}).filter((t) => t.state === 'SYNCED').length === 4);
  synced = true;
  return { stream, received };
}

/** Waits until every connected proxy has ACKed a response of `version` (or later) for the types it was sent. */
async function settled(mesh: Mesh): Promise<void> {
  await new Promise((r) => setTimeout(r, 100)); // longer than Pilot's 20 ms debounce, for a push that should not happen
  await waitFor(() => mesh.pilot.xds.proxyStatus().every((p) => Object.values(p.types).every((t) => t.state === 'SYNCED')));
}

/** What the server holds for a proxy equals what a push context built from scratch (no cache carried over) generates. */
function assertMatchesFreshBuild(mesh: Mesh, name: string): void {
  const current = mesh.pilot.xds.pushContext;
  const fresh = buildPushContext({ snapshot: mesh.distributor.current()!, services: mesh.pilot.registry.services(), endpoints: (h) => mesh.pilot.registry.endpoints(h), mesh: current.mesh, version: 'fresh' });
  const held = mesh.pilot.xds.proxyConfig(nodeOf(name).id)!;
  const proxy = mesh.pilot.xds.connectionsInfo().find((c) => c.proxyId === nodeOf(name).id)!.proxy!;
  for (const [typeUrl, generator] of createGenerators()) {
    const names = typeUrl === TypeUrl.RouteConfiguration ? ['9080', '9090'] : typeUrl === TypeUrl.ClusterLoadAssignment ? [`outbound|9080||${hostOf('a')}`, `outbound|9090||${hostOf('b')}`] : undefined;
    const expected = generator.generate(proxy, fresh, { full: true, ...(names ? { names } : {}) }).map((r) => JSON.stringify(r.value)).sort();
    const actual = held.types[typeUrl]!.resources.map((v) => JSON.stringify(v)).sort();
    assert.deepEqual(actual, expected, `${typeUrl} held by ${name} differs from a fresh build`);
  }
}

const routeNamed = (res: DiscoveryResponse, name: string): { virtual_hosts: { name: string; routes: { route?: { timeout?: { seconds?: string }; hash_policy?: unknown[] } }[] }[] } => {
  const any = res.resources.find((r, i) => namesIn(res)[i] === name)!;
  return unpackMessage(any);
};

test('incremental pushes: route, endpoint and rule changes send only what they affect, and equal a fresh build', async (t) => {
  const mesh = await startMesh();
  const sotw = await sotwSidecar(mesh, 'app-1.default');
  const delta = await deltaSidecar(mesh, 'app-2.default');
  t.after(async () => {
    sotw.stream.close();
    delta.stream.close();
    await mesh.close();
  });
  const drain = (): { sotw: DiscoveryResponse[]; delta: DeltaDiscoveryResponse[] } => ({ sotw: sotw.received.splice(0), delta: delta.received.splice(0) });

  await t.test('a VirtualService change re-sends its route config only', async () => {
    await mesh.apply(virtualService('a', '7s'));
    await waitFor(() => sotw.received.length > 0 && delta.received.length > 0);
    await settled(mesh);
    const got = drain();
    assert.deepEqual(got.sotw.map((r) => [r.type_url, namesIn(r)]), [[TypeUrl.RouteConfiguration, ['9080']]]);
    assert.equal(routeNamed(got.sotw[0]!, '9080').virtual_hosts[0]!.routes[0]!.route!.timeout!.seconds, '7');
    assert.deepEqual(got.delta.map((r) => [r.type_url, r.resources.map((x) => x.name), r.removed_resources]), [[TypeUrl.RouteConfiguration, ['9080'], []]]);
    // Both proxies share one scope: 9080 was built once, 9090 came from the previous push's cache.
    const cache = mesh.pilot.xds.pushContext.xdsCache;
    assert.deepEqual({ built: cache.misses, reused: cache.hits }, { built: 1, reused: 3 });
    assertMatchesFreshBuild(mesh, 'app-1.default');
    assertMatchesFreshBuild(mesh, 'app-2.default');
  });

  await t.test('an endpoint change sends only EDS, only for the changed cluster', async () => {
    await mesh.apply(workloadEntry('a', '10.0.0.9'));
    await waitFor(() => sotw.received.length > 0 && delta.received.length > 0);
    await settled(mesh);
    const got = drain();
    assert.deepEqual(got.sotw.map((r) => [r.type_url, namesIn(r)]), [[TypeUrl.ClusterLoadAssignment, [`outbound|9080||${hostOf('a')}`]]]);
    assert.deepEqual(got.delta.map((r) => [r.type_url, r.resources.map((x) => x.name)]), [[TypeUrl.ClusterLoadAssignment, [`outbound|9080||${hostOf('a')}`]]]);
    assertMatchesFreshBuild(mesh, 'app-1.default');
  });

  await t.test('a DestinationRule change invalidates the cached route config that reads it', async () => {
    await mesh.apply(destinationRule('b', 'x-user'));
    await waitFor(() => sotw.received.some((r) => r.type_url === TypeUrl.RouteConfiguration) && delta.received.some((r) => r.type_url === TypeUrl.RouteConfiguration));
    await settled(mesh);
    const got = drain();
    const rds = got.sotw.filter((r) => r.type_url === TypeUrl.RouteConfiguration);
    assert.deepEqual(rds.map(namesIn), [['9090']]);
    assert.ok(routeNamed(rds[0]!, '9090').virtual_hosts[0]!.routes[0]!.route!.hash_policy!.length > 0, 'the new hash policy is in the re-sent route config');
    assert.deepEqual(got.delta.filter((r) => r.type_url === TypeUrl.RouteConfiguration).map((r) => r.resources.map((x) => x.name)), [['9090']]);
    // Every sidecar route config reads DestinationRules: both were rebuilt (9080 to the same bytes, so not sent).
    assert.equal(mesh.pilot.xds.pushContext.xdsCache.misses, 2);
    assertMatchesFreshBuild(mesh, 'app-1.default');
    assertMatchesFreshBuild(mesh, 'app-2.default');
  });

  await t.test('deleting a VirtualService (a change of which rules a host selects) rebuilds the route config that used it', async () => {
    await mesh.remove(virtualService('a', '7s'));
    await waitFor(() => sotw.received.length > 0 && delta.received.length > 0);
    await settled(mesh);
    const got = drain();
    assert.deepEqual(got.sotw.map((r) => [r.type_url, namesIn(r)]), [[TypeUrl.RouteConfiguration, ['9080']]]);
    assert.equal(routeNamed(got.sotw[0]!, '9080').virtual_hosts[0]!.routes[0]!.route!.timeout!.seconds, '0', 'back to the default route');
    assertMatchesFreshBuild(mesh, 'app-1.default');
    assertMatchesFreshBuild(mesh, 'app-2.default');
  });
});
