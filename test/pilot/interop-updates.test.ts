// Interop with a real proxyless gRPC client (@grpc/grpc-js-xds): config
// changes reach a running client without a restart. Each test applies a
// change with `mesh apply` / `mesh delete` and measures how long until the
// client's own traffic shows it; the figures are printed (Istio aims at well
// under a second) and bounded generously, since CI machines vary.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { clientStatus, measureUntil, startInteropMesh, weightsYaml, workloadEntryYaml, xdsRejects } from './fixtures/interop-mesh.ts';
import type { CallSummary, InteropMesh } from './fixtures/interop-mesh.ts';

const BOUND_MS = 5000;

let mesh: InteropMesh;
before(async () => {
  mesh = await startInteropMesh(['v1', 'v2']);
});
after(async () => {
  await mesh?.stop();
});

/**
 * Runs `change`, then calls in small batches until one satisfies `ok`.
 * Returns the delay after `change` returned and after it started (the CLI's
 * own start-up included), and every failed call seen meanwhile.
 */
async function timeChange(what: string, change: () => Promise<void>, ok: (r: CallSummary) => boolean): Promise<{ afterApply: number; total: number; failures: string[] }> {
  const started = performance.now();
  await change();
  const applied = performance.now();
  const failures: string[] = [];
  await measureUntil(async () => {
    const r = await mesh.client.call({ n: 10, concurrency: 2 });
    failures.push(...r.errors);
    return ok(r);
  }, BOUND_MS, what);
  const done = performance.now();
  const result = { afterApply: Math.round(done - applied), total: Math.round(done - started), failures };
  console.log(`${what}: seen by the client ${result.afterApply} ms after the CLI returned (${result.total} ms after it started)`);
  return result;
}

test('a weight change reaches the running client', async () => {
  await mesh.apply(weightsYaml({ v1: 100, v2: 0 }));
  await measureUntil(async () => (await mesh.client.call({ n: 10, concurrency: 2 })).versions.v1 === 10, BOUND_MS, 'all v1');

  const t = await timeChange('weights 100/0 -> 0/100', () => mesh.apply(weightsYaml({ v1: 0, v2: 100 })), (r) => r.versions.v2 === 10);
  assert.ok(t.afterApply <= BOUND_MS);
  assert.deepEqual(t.failures, [], 'no call failed while the route changed');

  // And a split in between lands as the new weights say.
  await timeChange('weights 0/100 -> 30/70', () => mesh.apply(weightsYaml({ v1: 30, v2: 70 })), (r) => (r.versions.v1 ?? 0) > 0);
  const n = 1000;
  const r = await mesh.client.call({ n, concurrency: 50 });
  const v1 = r.versions.v1 ?? 0;
  assert.deepEqual(r.codes, {});
  assert.ok(Math.abs(v1 - 0.3 * n) <= 4 * Math.sqrt(n * 0.3 * 0.7), `v1=${v1} of ${n}, expected about 300`);
});

test('a WorkloadEntry added to a subset starts taking traffic, and stops once deleted', async () => {
  await mesh.apply(weightsYaml({ v1: 100 }));
  await measureUntil(async () => (await mesh.client.call({ n: 10, concurrency: 2 })).versions.v1 === 10, BOUND_MS, 'all v1');

  // A second v1 workload; its backend answers as `v1-b` so the test can tell them apart.
  const extra = await mesh.addBackend('v1-b');
  const added = await timeChange('WorkloadEntry added', () => mesh.apply(workloadEntryYaml('reviews-v1-b', 'v1', extra.port)), (r) => (r.versions['v1-b'] ?? 0) > 0);
  assert.ok(added.afterApply <= BOUND_MS);
  assert.deepEqual(added.failures, []);
  // Round robin over both v1 endpoints.
  const both = await mesh.client.call({ n: 100, concurrency: 10 });
  assert.ok((both.versions.v1 ?? 0) >= 30 && (both.versions['v1-b'] ?? 0) >= 30, JSON.stringify(both.versions));

  const removed = await timeChange('WorkloadEntry deleted', () => mesh.remove('WorkloadEntry', 'reviews-v1-b'), (r) => r.versions.v1 === 10);
  assert.ok(removed.afterApply <= BOUND_MS);
  assert.deepEqual(removed.failures, [], 'the removed endpoint was still up: no call failed');
  const after = await mesh.client.call({ n: 100, concurrency: 10 });
  assert.deepEqual(after.versions, { v1: 100 });
  const callsBefore = extra.calls;
  await mesh.client.call({ n: 20, concurrency: 5 });
  assert.equal(extra.calls, callsBefore, 'the deleted workload gets no more calls');
});

test('after every change the client is SYNCED everywhere and never rejected a response', async () => {
  assert.deepEqual(await clientStatus(mesh.controlPlane), { LDS: 'SYNCED', RDS: 'SYNCED', CDS: 'SYNCED', EDS: 'SYNCED' });
  assert.equal(await xdsRejects(mesh.controlPlane), 0);
});
