// redisquota through real sidecars (e2e-helpers.ts) against a real
// redis-server started once for the file: 1 req/s from reviews v1 to ratings
// (Istio's sample: ROLLING_WINDOW, 500 ms buckets) gives 429 beyond the limit
// while an override lets v3 through, and v1 passes again after the window.
// With Redis stopped the quota is denied (429, fail closed as Istio's
// adapter); once it runs again requests pass.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { eventually } from '../runtime/helpers.ts';
import { RedisServer, skipWithoutRedis } from '../helpers/redis-server.ts';
import { MixerMesh, RATINGS } from './e2e-helpers.ts';
import { requestCountQuotaYaml, VERSION_AND_DESTINATION } from './mixer-config-fixtures.ts';

let redis: RedisServer | undefined;
let mesh: MixerMesh | undefined;

// A rolling window of 1 s in 500 ms buckets: an allocation counts for 1 to 1.5 s.
const WINDOW_AND_BUCKET_MS = 1_500;

const quotaYaml = (url: string): string => requestCountQuotaYaml({
  dimensions: VERSION_AND_DESTINATION,
  handlerSpec: `
compiledAdapter: redisquota
params:
  redisServerUrl: ${url}
  connectionPoolSize: 4
  quotas:
  - name: requestcountquota.instance.istio-system
    maxAmount: 1
    validDuration: 1s
    bucketDuration: 500ms
    rateLimitAlgorithm: ROLLING_WINDOW
    overrides:
    - dimensions: { source: v3, destination: ${RATINGS} }
      maxAmount: 1000
`,
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('redisquota through the sidecars', { skip: skipWithoutRedis }, () => {
  before(async () => {
    redis = await RedisServer.start();
    mesh = await MixerMesh.start();
    await mesh.apply(quotaYaml(redis.url));
  });

  after(async () => {
    await mesh?.stop();
    await redis?.stop();
  });

  test('1 req/s from reviews v1 to ratings: 429 beyond the limit, the v3 override passes, v1 passes again after the window', { timeout: 60_000 }, async () => {
    const m = mesh!;
    await eventually(async () => ((await m.call(m.v1Port)).status === 429 ? true : undefined), 'a 429 for reviews v1');
    await sleep(WINDOW_AND_BUCKET_MS + 100);
    const burst: number[] = [];
    const t0 = Date.now();
    for (let i = 0; i < 4; i++) burst.push((await m.call(m.v1Port)).status);
    const elapsed = Date.now() - t0;
    assert.equal(burst[0], 200, `within the limit: ${burst}`);
    assert.ok(burst.every((s) => s === 200 || s === 429), `${burst}`);
    assert.ok(burst.includes(429), `beyond the limit: ${burst}`);
    // No more passes than windows the burst spanned (all four within one second on an idle machine).
    assert.ok(burst.filter((s) => s === 200).length <= 1 + Math.floor(elapsed / 1000), `${burst} in ${elapsed} ms`);
    for (let i = 0; i < 6; i++) assert.equal((await m.call(m.v3Port)).status, 200, 'the v3 override (1000/s)');
    await sleep(WINDOW_AND_BUCKET_MS + 100);
    assert.equal((await m.call(m.v1Port)).status, 200, 'after the window');
  });

  test('Redis stopped: the quota is denied (429); started again: requests pass', { timeout: 60_000 }, async () => {
    const m = mesh!;
    assert.equal((await m.call(m.v3Port)).status, 200);
    await redis!.stop(false);
    try {
      // eventually: a sidecar may hold an allotment of v3's generous quota granted before the outage.
      const denied = await eventually(async () => {
        const r = await m.call(m.v3Port);
        return r.status === 429 ? r : undefined;
      }, 'a 429 for reviews v3 while Redis is down');
      assert.equal(denied.status, 429);
    } finally {
      await redis!.resume();
    }
    await eventually(async () => ((await m.call(m.v3Port)).status === 200 ? true : undefined), 'reviews v3 passing once Redis runs again');
  });
});
