// Interop with a real proxyless gRPC client (@grpc/grpc-js-xds): a
// VirtualService's fault injection (gRFC A33: abort by HTTP or gRPC status,
// fixed delay) and retry policy (gRFC A44) take effect in the client.
// Config goes in only through `mesh apply` to a real `mesh control-plane`.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { clientStatus, HOST, measureUntil, startInteropMesh, virtualServiceYaml, xdsRejects } from './fixtures/interop-mesh.ts';
import type { CallSummary, InteropMesh } from './fixtures/interop-mesh.ts';

const UNAVAILABLE = '14';
const NOT_FOUND = '5';
const DEADLINE_EXCEEDED = '4';

let mesh: InteropMesh;
before(async () => {
  mesh = await startInteropMesh(['v1', 'v2']);
});
after(async () => {
  await mesh?.stop();
});

/** One `http` rule to a subset with extra fields (YAML lines at the rule's indent). */
function ruleTo(subset: string, extra = ''): string {
  return virtualServiceYaml(`  - route: [{destination: {host: ${HOST}, subset: ${subset}}}]
${extra.split('\n').filter(Boolean).map((l) => `    ${l}`).join('\n')}
`);
}

/** Calls until one batch satisfies `ok`: the client's traffic, not the control plane, says the config is live. */
async function untilTraffic(ok: (r: CallSummary) => boolean, n = 10): Promise<void> {
  await measureUntil(async () => ok(await mesh.client.call({ n, concurrency: n })), 10_000, 'config change');
}

test('fault abort with httpStatus 503 fails calls with UNAVAILABLE before they reach a backend', async () => {
  await mesh.apply(ruleTo('v1', 'fault: {abort: {httpStatus: 503, percentage: {value: 100}}}'));
  await untilTraffic((r) => r.codes[UNAVAILABLE] === 10);
  const before = mesh.backends.get('v1')!.calls + mesh.backends.get('v2')!.calls;
  const r = await mesh.client.call({ n: 50, concurrency: 10 });
  assert.deepEqual(r.codes, { [UNAVAILABLE]: 50 }, JSON.stringify(r));
  assert.deepEqual(r.versions, {});
  assert.equal(mesh.backends.get('v1')!.calls + mesh.backends.get('v2')!.calls, before, 'aborted calls never reach a backend');
});

test('fault abort with grpcStatus NOT_FOUND fails calls with that status', async () => {
  await mesh.apply(ruleTo('v1', 'fault: {abort: {grpcStatus: NOT_FOUND, percentage: {value: 100}}}'));
  await untilTraffic((r) => r.codes[NOT_FOUND] === 10);
  const r = await mesh.client.call({ n: 50, concurrency: 10 });
  assert.deepEqual(r.codes, { [NOT_FOUND]: 50 }, JSON.stringify(r));
});

test('fault abort at 50% fails about half of the calls', async () => {
  await mesh.apply(ruleTo('v2', 'fault: {abort: {grpcStatus: NOT_FOUND, percentage: {value: 50}}}'));
  await untilTraffic((r) => (r.versions.v2 ?? 0) > 0);
  const n = 400;
  const r = await mesh.client.call({ n, concurrency: 20 });
  const failed = r.codes[NOT_FOUND] ?? 0;
  assert.equal(failed + (r.versions.v2 ?? 0), n, JSON.stringify(r.codes));
  // 4 standard deviations of Binomial(400, 0.5) = 40 calls.
  assert.ok(Math.abs(failed - n / 2) <= 4 * Math.sqrt(n * 0.25), `${failed} of ${n} aborted`);
});

test('fault delay holds every call for at least fixedDelay, then it succeeds', async () => {
  const delayMs = 600;
  await mesh.apply(ruleTo('v1', `fault: {delay: {fixedDelay: ${delayMs}ms, percentage: {value: 100}}}`));
  await untilTraffic((r) => r.versions.v1 === 4 && Math.min(...r.durations) >= delayMs, 4);
  const r = await mesh.client.call({ n: 20, concurrency: 20 });
  assert.deepEqual(r.versions, { v1: 20 }, r.errors.join('; '));
  const fastest = Math.min(...r.durations);
  console.log(`fixedDelay ${delayMs} ms: call durations ${fastest}..${Math.max(...r.durations)} ms`);
  assert.ok(fastest >= delayMs, `a call took ${fastest} ms, less than the ${delayMs} ms delay`);
});

test('a retry policy retries UNAVAILABLE until a call succeeds, within its attempts', async () => {
  await mesh.apply(ruleTo('v2', 'retries: {attempts: 3, retryOn: unavailable}'));
  await untilTraffic((r) => r.versions.v2 === 10 && Math.max(...r.durations) < 600);
  const v2 = mesh.backends.get('v2')!;

  // Fails twice, then answers: the third attempt succeeds.
  v2.failNext = 2;
  let calls = v2.calls;
  const ok = await mesh.client.call({ n: 1 });
  assert.deepEqual(ok.versions, { v2: 1 }, ok.errors.join('; '));
  assert.equal(v2.calls - calls, 3, 'the backend saw the first attempt and two retries');
  assert.equal(v2.failNext, 0);

  // More failures than attempts: 1 call + 3 retries, then the client gives up with the backend's status.
  v2.failNext = 10;
  calls = v2.calls;
  const failed = await mesh.client.call({ n: 1 });
  v2.failNext = 0;
  assert.deepEqual(failed.codes, { [UNAVAILABLE]: 1 });
  assert.match(failed.errors[0] ?? '', /fails on purpose/);
  assert.equal(v2.calls - calls, 4, 'the first attempt and 3 retries');
});

test('retries with attempts 0 are off: one failure fails the call', async () => {
  await mesh.apply(ruleTo('v1', 'retries: {attempts: 0}'));
  await untilTraffic((r) => r.versions.v1 === 10);
  const v1 = mesh.backends.get('v1')!;
  v1.failNext = 1;
  const calls = v1.calls;
  const r = await mesh.client.call({ n: 1 });
  v1.failNext = 0;
  assert.deepEqual(r.codes, { [UNAVAILABLE]: 1 });
  assert.equal(v1.calls - calls, 1);
});

test("without retries in the VirtualService, Istio's default policy (2 retries on unavailable) applies", async () => {
  await mesh.apply(ruleTo('v2'));
  await untilTraffic((r) => r.versions.v2 === 10);
  const v2 = mesh.backends.get('v2')!;
  v2.failNext = 2;
  const calls = v2.calls;
  const r = await mesh.client.call({ n: 1 });
  v2.failNext = 0;
  assert.deepEqual(r.versions, { v2: 1 }, r.errors.join('; '));
  assert.equal(v2.calls - calls, 3);
});

test('a VirtualService timeout ends calls that a delay fault holds longer, with DEADLINE_EXCEEDED', async () => {
  await mesh.apply(ruleTo('v1', 'timeout: 300ms\nfault: {delay: {fixedDelay: 2s, percentage: {value: 100}}}'));
  await untilTraffic((r) => r.codes[DEADLINE_EXCEEDED] === 4, 4);
  const r = await mesh.client.call({ n: 10, concurrency: 10, deadlineMs: 5000 });
  assert.deepEqual(r.codes, { [DEADLINE_EXCEEDED]: 10 }, JSON.stringify(r));
  const slowest = Math.max(...r.durations);
  console.log(`route timeout 300 ms: calls ended after ${Math.min(...r.durations)}..${slowest} ms`);
  assert.ok(Math.min(...r.durations) >= 300 && slowest < 1500, `durations ${r.durations.join(',')}`);
});

test('a DestinationRule connection pool limit (http2MaxRequests) sheds calls above it; outlier detection is accepted', async () => {
  await mesh.apply(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: ${HOST}
  trafficPolicy:
    connectionPool: {http: {http2MaxRequests: 2}}
    outlierDetection: {consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`);
  await mesh.apply(ruleTo('v2'));
  const v2 = mesh.backends.get('v2')!;
  v2.delayMs = 1000;
  try {
    // Two calls hold the limit for a second; calls made meanwhile are dropped by the client with UNAVAILABLE.
    // (grpc-js counts a call once it has started on a subchannel, so the held calls go first.)
    const overLimit = async (): Promise<{ held: CallSummary; extra: CallSummary }> => {
      const held = mesh.client.call({ n: 2, concurrency: 2 });
      await new Promise((resolve) => setTimeout(resolve, 300));
      const extra = await mesh.client.call({ n: 5, concurrency: 5 });
      return { held: await held, extra };
    };
    await measureUntil(async () => ((await overLimit()).extra.codes[UNAVAILABLE] ?? 0) === 5, 10_000, 'circuit breaker');
    v2.maxInFlight = 0;
    const { held, extra } = await overLimit();
    console.log(`http2MaxRequests 2: held ${JSON.stringify(held.versions)}, extra ${JSON.stringify(extra.codes)} (${extra.errors[0] ?? ''}); backend saw at most ${v2.maxInFlight} at once`);
    assert.deepEqual(held.versions, { v2: 2 }, held.errors.join('; '));
    assert.deepEqual(extra.codes, { [UNAVAILABLE]: 5 }, JSON.stringify(extra));
    assert.match(extra.errors[0] ?? '', /dropped/);
    assert.equal(v2.maxInFlight, 2);
  } finally {
    v2.delayMs = 0;
  }
});

test('after every change the client is SYNCED everywhere and never rejected a response', async () => {
  assert.deepEqual(await clientStatus(mesh.controlPlane), { LDS: 'SYNCED', RDS: 'SYNCED', CDS: 'SYNCED', EDS: 'SYNCED' });
  assert.equal(await xdsRejects(mesh.controlPlane), 0);
});
