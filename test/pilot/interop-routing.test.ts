// Interop with a real proxyless gRPC client (@grpc/grpc-js-xds) through a
// real `mesh control-plane`: plain resolution, `mesh proxy-status`, a
// VirtualService weight split and a header match. Config goes in only through
// `mesh apply`; the client's bootstrap comes from `mesh bootstrap grpc`.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { clientStatus, HOST, measureUntil, startInteropMesh, xdsRejects, virtualServiceYaml, weightsYaml } from './fixtures/interop-mesh.ts';
import type { InteropMesh } from './fixtures/interop-mesh.ts';

let mesh: InteropMesh;
before(async () => {
  mesh = await startInteropMesh(['v1', 'v2']);
});
after(async () => {
  await mesh?.stop();
});

test('without a VirtualService the client reaches both versions of reviews', async () => {
  const r = await mesh.client.call({ n: 40, concurrency: 4, deadlineMs: 10_000 });
  assert.deepEqual(r.codes, {}, r.errors.join('; '));
  assert.ok((r.versions.v1 ?? 0) > 0 && (r.versions.v2 ?? 0) > 0, JSON.stringify(r.versions));
});

test('mesh proxy-status shows the gRPC client SYNCED for LDS, RDS, CDS and EDS', async () => {
  assert.deepEqual(await clientStatus(mesh.controlPlane), { LDS: 'SYNCED', RDS: 'SYNCED', CDS: 'SYNCED', EDS: 'SYNCED' });
});

test('the client dials the short names Istio accepts: `reviews:9080` and `reviews.default:9080`', async () => {
  for (const target of ['reviews:9080', 'reviews.default:9080']) {
    const r = await mesh.client.call({ n: 10, concurrency: 2, target, deadlineMs: 10_000 });
    assert.deepEqual(r.codes, {}, `${target}: ${r.errors.join('; ')}`);
    assert.equal((r.versions.v1 ?? 0) + (r.versions.v2 ?? 0), 10);
  }
});

test('a call to a target Pilot does not know yet waits, and goes through once a ServiceEntry adds it', async () => {
  // grpc-js-xds treats a never-seen listener as pending for 15 s (its resource
  // timer), so the call waits for name resolution instead of failing.
  const target = 'ratings.default.svc.cluster.local:9080';
  const pending = mesh.client.call({ n: 1, target, deadlineMs: 8000 });
  await new Promise((resolve) => setTimeout(resolve, 300)); // the client subscribes to the new listener
  const applied = performance.now();
  await mesh.apply(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings.default.svc.cluster.local]
  ports: [{number: 9080, name: grpc, protocol: GRPC}]
  resolution: STATIC
  location: MESH_INTERNAL
  endpoints: [{address: 127.0.0.1, ports: {grpc: ${mesh.backends.get('v2')!.port}}}]
`);
  const r = await pending;
  assert.deepEqual(r.versions, { v2: 1 }, r.errors.join('; '));
  console.log(`pending call to a new service answered ${Math.round(performance.now() - applied)} ms after mesh apply started`);
});

/** Calls in batches until a batch satisfies `ok`; a config change is in effect once the client's traffic shows it. */
async function untilTraffic(ok: (versions: Record<string, number>) => boolean, options: { metadata?: Record<string, string> } = {}): Promise<void> {
  await measureUntil(async () => {
    const r = await mesh.client.call({ n: 20, concurrency: 5, ...options });
    return r.errors.length === 0 && ok(r.versions);
  }, 10_000, 'config change');
}

test('a VirtualService 80/20 weight split sends 80/20 of 2000 calls (binomial tolerance)', async () => {
  // Start from all-v1 so the moment v2 shows up marks the split as live.
  await mesh.apply(weightsYaml({ v1: 100 }));
  await untilTraffic((v) => v.v1 === 20);
  await mesh.apply(weightsYaml({ v1: 80, v2: 20 }));
  await untilTraffic((v) => (v.v2 ?? 0) > 0);

  const n = 2000;
  const r = await mesh.client.call({ n, concurrency: 50 });
  assert.deepEqual(r.codes, {}, r.errors.join('; '));
  const v1 = r.versions.v1 ?? 0;
  const tolerance = 4 * Math.sqrt(n * 0.8 * 0.2); // about 72 calls
  console.log(`80/20 split over ${n} calls: v1=${v1} v2=${r.versions.v2 ?? 0} (expected ${0.8 * n} +- ${tolerance.toFixed(1)})`);
  assert.equal(v1 + (r.versions.v2 ?? 0), n);
  assert.ok(Math.abs(v1 - 0.8 * n) <= tolerance, `v1=${v1} of ${n}, expected ${0.8 * n} +- ${tolerance}`);
});

test('a header match sends `end-user: jason` to v2 and everyone else to v1', async () => {
  await mesh.apply(virtualServiceYaml(`  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: ${HOST}, subset: v2}}]
  - route: [{destination: {host: ${HOST}, subset: v1}}]
`));
  await untilTraffic((v) => v.v2 === 20, { metadata: { 'end-user': 'jason' } });
  await untilTraffic((v) => v.v1 === 20);

  const jason = await mesh.client.call({ n: 200, concurrency: 20, metadata: { 'end-user': 'jason' } });
  assert.deepEqual(jason.versions, { v2: 200 }, jason.errors.join('; '));
  assert.equal(jason.lastMetadata?.['end-user'], 'jason', 'the backend saw the metadata the route matched on');
  const others = await mesh.client.call({ n: 200, concurrency: 20, metadata: { 'end-user': 'mallory' } });
  assert.deepEqual(others.versions, { v1: 200 }, others.errors.join('; '));
  const anonymous = await mesh.client.call({ n: 200, concurrency: 20 });
  assert.deepEqual(anonymous.versions, { v1: 200 }, anonymous.errors.join('; '));
});

test('a DestinationRule consistentHash on a header keeps each user on one backend (ring hash)', async () => {
  await mesh.remove('VirtualService', 'reviews');
  await mesh.apply(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: ${HOST}
  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user}}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`);
  // Round robin alternates between the two endpoints; one version for 20 calls means the hash is live.
  await measureUntil(async () => Object.keys((await mesh.client.call({ n: 20, concurrency: 1, metadata: { 'x-user': 'user-0' } })).versions).length === 1, 10_000, 'ring hash');
  const seen = new Set<string>();
  for (let u = 0; u < 16; u++) {
    const r = await mesh.client.call({ n: 20, concurrency: 5, metadata: { 'x-user': `user-${u}` } });
    assert.deepEqual(r.codes, {}, r.errors.join('; '));
    const versions = Object.keys(r.versions);
    assert.equal(versions.length, 1, `user-${u} was spread over ${JSON.stringify(r.versions)}`);
    seen.add(versions[0]!);
  }
  // 16 users all hashing to one of two equal endpoints has probability 2^-15.
  assert.deepEqual([...seen].sort(), ['v1', 'v2']);
});

test('after every change the client is SYNCED everywhere and never rejected a response', async () => {
  assert.deepEqual(await clientStatus(mesh.controlPlane), { LDS: 'SYNCED', RDS: 'SYNCED', CDS: 'SYNCED', EDS: 'SYNCED' });
  assert.equal(await xdsRejects(mesh.controlPlane), 0);
});
