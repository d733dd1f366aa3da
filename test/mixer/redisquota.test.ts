// redisquota against a real redis-server (test/helpers/redis-server.ts): the
// adapter conformance suite, fixed and rolling windows on Mixer's (fake)
// clock, overrides, bestEffort, one count shared by two handlers in two
// processes, and a Redis outage (stopped, then stuck) answered quickly with a
// denial and followed by recovery. Windows are long (a minute) and driven by
// the fake clock, so Redis's own real-time key expiry never interferes.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Registry } from '../../src/common/metrics.ts';
import type { AdapterEnv, Handler, Instance } from '../../src/mixer/index.ts';
import { redisquotaAdapter } from '../../src/mixer/index.ts';
import { redisQuotaKey } from '../../src/mixer/adapters/redisquota.ts';
import { NODE } from '../helpers/processes.ts';
import { RedisServer, skipWithoutRedis } from '../helpers/redis-server.ts';
import { adapterConformance } from './adapter-conformance.ts';
import { FakeClock } from './helpers.ts';

let redis: RedisServer | undefined;
// Filled in once the server is up (the conformance suite reads it when its tests run).
const validParams: Record<string, unknown>[] = [];
let testRun = 0;

before(async () => {
  if (skipWithoutRedis) return;
  redis = await RedisServer.start();
  validParams.push(
    { redisServerUrl: redis.url, quotas: [{ name: 'requestcount.quota.istio-system', maxAmount: 1, validDuration: '1s' }] },
    { redisServerUrl: redis.url, connectionPoolSize: 2, quotas: [{ name: 'requestcount.istio-system', maxAmount: 5, validDuration: '10s', bucketDuration: '1s', rateLimitAlgorithm: 'ROLLING_WINDOW', overrides: [{ dimensions: { source: 'a' }, maxAmount: 2 }] }] },
  );
});

after(async () => {
  await redis?.stop();
});

const quota: Instance = { name: 'requestcount.istio-system', template: 'quota', fields: { dimensions: new Map([['source', 'a']]) } };

adapterConformance({
  adapter: redisquotaAdapter,
  valid: validParams,
  invalid: [
    { params: { redisServerUrl: '' }, path: 'redisServerUrl' },
    { params: { redisServerUrl: 'redis.example' }, path: 'redisServerUrl' },
    { params: { redisServerUrl: 'redis.example:70000' }, path: 'redisServerUrl' },
    { params: { connectionPoolSize: -1 }, path: 'connectionPoolSize' },
    { params: { connectionPoolSize: 100_000 }, path: 'connectionPoolSize' },
    { params: { quotas: [{ name: 'q', maxAmount: 1 }] }, path: 'quotas[0].validDuration' },
    { params: { quotas: [{ name: 'q', maxAmount: 1, validDuration: '0s' }] }, path: 'quotas[0].validDuration' },
    { params: { quotas: [{ name: 'q', maxAmount: -1, validDuration: '1s' }] }, path: 'quotas[0].maxAmount' },
    { params: { quotas: [{ name: 'q', maxAmount: 1, validDuration: '1s', rateLimitAlgorithm: 'LEAKY_BUCKET' }] }, path: 'quotas[0].rateLimitAlgorithm' },
    { params: { quotas: [{ name: 'q', maxAmount: 1, validDuration: '1s', rateLimitAlgorithm: 'ROLLING_WINDOW' }] }, path: 'quotas[0].bucketDuration' },
    { params: { quotas: [{ name: 'q', maxAmount: 1, validDuration: '1s', bucketDuration: '1s', rateLimitAlgorithm: 'ROLLING_WINDOW' }] }, path: 'quotas[0].bucketDuration' },
    { params: { quotas: [{ name: 'q', maxAmount: 1, validDuration: '1h', bucketDuration: '10ms', rateLimitAlgorithm: 'ROLLING_WINDOW' }] }, path: 'quotas[0].bucketDuration' },
    { params: { quotas: [{ name: 'q', maxAmount: 1, validDuration: '1s', overrides: [{ dimensions: { source: 'a' }, maxAmount: 0 }] }] }, path: 'quotas[0].overrides[0].maxAmount' },
    { params: { quotas: [{ name: 'q', maxAmount: 1, validDuration: '1s', overrides: [{ maxAmount: 2 }] }] }, path: 'quotas[0].overrides[0].dimensions' },
    { params: { quotas: [{ name: 'q', maxAmount: 1, validDuration: '1s', overrides: [{ dimensions: { source: 'a' }, maxAmount: 2, validDuration: '2s' }] }] }, path: 'quotas[0].overrides[0].validDuration' },
    { params: { quotas: [{ name: 'q.istio-system', maxAmount: 1, validDuration: '1s' }, { name: 'q.quota.istio-system', maxAmount: 1, validDuration: '1s' }] }, path: 'quotas[1].name' },
  ],
  instances: [quota],
});

function envWith(clock: FakeClock, lines: string[] = []): AdapterEnv {
  return { now: clock.now, metrics: new Registry(), write: (_s, line) => void lines.push(line), handlerName: 'redisquota.istio-system' };
}

/** A handler on the test server; each test uses its own quota name so that counts never leak between tests. */
function handlerFor(quotaParams: Record<string, unknown>, clock: FakeClock, extra: Record<string, unknown> = {}, lines: string[] = []): { handler: Handler; ask: (dims: Record<string, string>, amount?: number, bestEffort?: boolean) => Promise<{ granted: number; validDurationMs: number }> } {
  const name = `t${++testRun}-${process.pid}.istio-system`;
  const { params, errors } = redisquotaAdapter.validate({ redisServerUrl: redis!.url, ...extra, quotas: [{ name, ...quotaParams }] });
  assert.deepEqual(errors, []);
  const handler = redisquotaAdapter.build(params!, envWith(clock, lines));
  const ask = async (dims: Record<string, string>, amount = 1, bestEffort = false) =>
    handler.handleQuota!({ name, template: 'quota', fields: { dimensions: new Map(Object.entries(dims)) } }, { amount, bestEffort });
  return { handler, ask };
}

async function grants(ask: () => Promise<{ granted: number }>, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await ask()).granted);
  return out;
}

describe('redisquota windows', { skip: skipWithoutRedis }, () => {
  test('FIXED_WINDOW: maxAmount per window from the first allocation; a new window starts when it ends', async () => {
    const clock = new FakeClock();
    const { handler, ask } = handlerFor({ maxAmount: 3, validDuration: '60s' }, clock);
    try {
      assert.deepEqual(await grants(() => ask({ source: 'a' }), 4), [1, 1, 1, 0]);
      clock.advance(20_000);
      const denied = await ask({ source: 'a' });
      assert.deepEqual(denied, { granted: 0, validDurationMs: 40_000 }, 'denied until the window ends');
      clock.advance(39_999);
      assert.equal((await ask({ source: 'a' })).granted, 0);
      clock.advance(1);
      assert.deepEqual(await ask({ source: 'a' }), { granted: 1, validDurationMs: 60_000 });
    } finally {
      await handler.close();
    }
  });

  test('FIXED_WINDOW allows a burst of twice the limit across a window boundary; ROLLING_WINDOW does not', async () => {
    const clock = new FakeClock();
    const fixed = handlerFor({ maxAmount: 2, validDuration: '60s' }, clock);
    const rolling = handlerFor({ maxAmount: 2, validDuration: '60s', bucketDuration: '1s', rateLimitAlgorithm: 'ROLLING_WINDOW' }, clock);
    try {
      const start = clock.ms;
      // One allocation at the start of a bucket, one near the end of the window.
      clock.ms = start - (start % 1000);
      for (const h of [fixed, rolling]) assert.equal((await h.ask({ source: 'a' })).granted, 1);
      clock.advance(59_000);
      for (const h of [fixed, rolling]) assert.equal((await h.ask({ source: 'a' })).granted, 1);
      clock.advance(1_000);
      assert.deepEqual(await grants(() => fixed.ask({ source: 'a' }), 3), [1, 1, 0], 'a fresh fixed window');
      const denied = await rolling.ask({ source: 'a' });
      // The first bucket leaves once all of it is a window old: 1 s from now.
      assert.deepEqual(denied, { granted: 0, validDurationMs: 1_000 });
      clock.advance(999);
      assert.equal((await rolling.ask({ source: 'a' })).granted, 0);
      clock.advance(1);
      assert.deepEqual(await grants(() => rolling.ask({ source: 'a' }), 2), [1, 0], 'only the first allocation left the window');
    } finally {
      await fixed.handler.close();
      await rolling.handler.close();
    }
  });

  test('ROLLING_WINDOW: buckets leave one by one', async () => {
    const clock = new FakeClock();
    const { handler, ask } = handlerFor({ maxAmount: 3, validDuration: '60s', bucketDuration: '10s', rateLimitAlgorithm: 'ROLLING_WINDOW' }, clock);
    try {
      clock.ms -= clock.ms % 10_000;
      assert.equal((await ask({ source: 'a' }, 2)).granted, 2); // bucket 0
      clock.advance(25_000);
      assert.equal((await ask({ source: 'a' })).granted, 1); // bucket 20 s
      assert.equal((await ask({ source: 'a' })).granted, 0);
      clock.advance(45_000); // 70 s: bucket 0 is out, bucket 20 s is not
      assert.deepEqual(await grants(() => ask({ source: 'a' }), 3), [1, 1, 0]);
      clock.advance(20_000); // 90 s: bucket 20 s is out too
      assert.deepEqual(await grants(() => ask({ source: 'a' }), 2), [1, 0]);
    } finally {
      await handler.close();
    }
  });

  test('overrides by dimension values; each set of dimension values has its own count', async () => {
    for (const algorithm of [{}, { bucketDuration: '1s', rateLimitAlgorithm: 'ROLLING_WINDOW' }]) {
      const clock = new FakeClock();
      const { handler, ask } = handlerFor({ maxAmount: 1, validDuration: '60s', ...algorithm, overrides: [{ dimensions: { source: 'vip', destination: 'ratings' }, maxAmount: 3 }] }, clock);
      try {
        assert.deepEqual(await grants(() => ask({ source: 'vip', destination: 'ratings' }), 4), [1, 1, 1, 0], JSON.stringify(algorithm));
        assert.deepEqual(await grants(() => ask({ source: 'vip', destination: 'reviews' }), 2), [1, 0], 'an override applies only when all its dimensions match');
        assert.deepEqual(await grants(() => ask({ source: 'a', destination: 'ratings' }), 2), [1, 0]);
        assert.deepEqual(await grants(() => ask({ source: 'b', destination: 'ratings' }), 2), [1, 0]);
      } finally {
        await handler.close();
      }
    }
  });

  test('amount and bestEffort: all or nothing, or what is left', async () => {
    for (const algorithm of [{}, { bucketDuration: '1s', rateLimitAlgorithm: 'ROLLING_WINDOW' }]) {
      const { handler, ask } = handlerFor({ maxAmount: 5, validDuration: '60s', ...algorithm }, new FakeClock());
      try {
        const what = JSON.stringify(algorithm);
        assert.equal((await ask({}, 3)).granted, 3, what);
        assert.equal((await ask({}, 3)).granted, 0, what);
        assert.equal((await ask({}, 3, true)).granted, 2, what);
        assert.equal((await ask({}, 1, true)).granted, 0, what);
      } finally {
        await handler.close();
      }
    }
  });

  test('a quota the handler does not configure is granted without asking Redis', async () => {
    const { handler } = handlerFor({ maxAmount: 0, validDuration: '1s' }, new FakeClock());
    try {
      assert.deepEqual(await handler.handleQuota!({ ...quota, name: 'other.istio-system' }, { amount: 7, bestEffort: false }), { granted: 7, validDurationMs: 0 });
    } finally {
      await handler.close();
    }
  });

  test('concurrent calls through two handlers never grant more than maxAmount (the script is atomic)', async () => {
    const clock = new FakeClock();
    const a = handlerFor({ maxAmount: 10, validDuration: '60s' }, clock, { connectionPoolSize: 4 });
    const name = `t${testRun}-${process.pid}.istio-system`;
    const b = redisquotaAdapter.build(redisquotaAdapter.validate({ redisServerUrl: redis!.url, connectionPoolSize: 4, quotas: [{ name, maxAmount: 10, validDuration: '60s' }] }).params!, envWith(clock));
    try {
      const inst: Instance = { name, template: 'quota', fields: { dimensions: new Map([['source', 'a']]) } };
      const results = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? a.ask({ source: 'a' }) : b.handleQuota!(inst, { amount: 1, bestEffort: false }))));
      assert.equal(results.reduce((n, r) => n + r.granted, 0), 10);
    } finally {
      await a.handler.close();
      await b.close();
    }
  });

  test('two Mixer processes sharing a Redis share one count', { timeout: 30_000 }, async () => {
    const clock = new FakeClock();
    const { handler, ask } = handlerFor({ maxAmount: 5, validDuration: '60s' }, clock);
    const name = `t${testRun}-${process.pid}.istio-system`;
    try {
      assert.equal((await ask({ source: 'a' }, 2)).granted, 2);
      // Another process builds its own handler from the same params and asks for everything, best effort.
      const adapterUrl = new URL('../../src/mixer/adapters/redisquota.ts', import.meta.url).href;
      const script = `
        import { redisquotaAdapter } from ${JSON.stringify(adapterUrl)};
        const { params } = redisquotaAdapter.validate({ redisServerUrl: ${JSON.stringify(redis!.url)}, quotas: [{ name: ${JSON.stringify(name)}, maxAmount: 5, validDuration: '60s' }] });
        const h = redisquotaAdapter.build(params, { now: () => ${clock.ms}, metrics: undefined, write: () => {}, handlerName: 'other.istio-system' });
        const r = await h.handleQuota({ name: ${JSON.stringify(name)}, template: 'quota', fields: { dimensions: new Map([['source', 'a']]) } }, { amount: 5, bestEffort: true });
        await h.close();
        console.log(JSON.stringify(r));`;
      const { stdout } = await promisify(execFile)(NODE, ['--disable-warning=ExperimentalWarning', '--input-type=module', '-e', script]);
      assert.equal(JSON.parse(stdout).granted, 3, 'the other process got what this one left');
      assert.equal((await ask({ source: 'a' })).granted, 0, 'and this one sees the other process\'s allocation');
    } finally {
      await handler.close();
    }
  });

  test('long dimension values are keyed by their hash: short, stable and distinct', () => {
    const long = (c: string) => new Map([['path', c.repeat(10_000)]]);
    const k1 = redisQuotaKey('q.istio-system', long('a'));
    assert.ok(k1.length < 150, k1);
    assert.equal(k1, redisQuotaKey('q.istio-system', long('a')));
    assert.notEqual(k1, redisQuotaKey('q.istio-system', long('b')));
    assert.equal(redisQuotaKey('q.istio-system', new Map<string, string | number>([['b', '2'], ['a', 1]])), 'mesh:redisquota:q.istio-system:[["a","1"],["b","2"]]', 'readable and sorted when short');
  });

  test('close() disconnects: the server sees the pooled connections go', async () => {
    const before = await redis!.connectedClients();
    const { handler, ask } = handlerFor({ maxAmount: 100, validDuration: '60s' }, new FakeClock(), { connectionPoolSize: 3 });
    await Promise.all([ask({}), ask({}), ask({}), ask({})]);
    assert.equal(await redis!.connectedClients(), before + 3, 'three pooled connections, opened on demand');
    await handler.close();
    let now = before + 3;
    for (let i = 0; i < 50 && now > before; i++) {
      await new Promise((r) => setTimeout(r, 20));
      now = await redis!.connectedClients();
    }
    assert.equal(now, before);
  });
});

describe('redisquota when Redis does not answer', { skip: skipWithoutRedis }, () => {
  test('stopped: quotas are denied at once (granted 0, one warning); after a restart they are counted again', { timeout: 30_000 }, async () => {
    const lines: string[] = [];
    const { handler, ask } = handlerFor({ maxAmount: 2, validDuration: '60s' }, new FakeClock(), { connectionPoolSize: 2 }, lines);
    try {
      assert.equal((await ask({ source: 'a' })).granted, 1);
      await redis!.stop(false);
      for (let i = 0; i < 4; i++) assert.deepEqual(await ask({ source: 'a' }), { granted: 0, validDurationMs: 0 });
      assert.equal(lines.length, 1, lines.join('\n'));
      const warning = JSON.parse(lines[0]!);
      assert.equal(warning.code, 'MESH_ERR_MIXER_REDIS_UNAVAILABLE');
      assert.equal(warning.handler, 'redisquota.istio-system');
      assert.equal(warning.redis, redis!.url);
      await redis!.resume();
      // A fresh server (no persistence): the count starts again, on new connections with the scripts loaded again.
      assert.deepEqual(await grants(() => ask({ source: 'a' }), 3), [1, 1, 0]);
      assert.equal(lines.length, 2);
      assert.equal(JSON.parse(lines[1]!).msg, 'Redis answers again; quotas are counted again');
    } finally {
      await handler.close();
      await redis!.resume().catch(() => undefined);
    }
  });

  test('stuck (SIGSTOP): a call is bounded by the timeout and denied; it recovers once Redis runs again', { timeout: 30_000 }, async () => {
    const lines: string[] = [];
    const { handler, ask } = handlerFor({ maxAmount: 2, validDuration: '60s', bucketDuration: '1s', rateLimitAlgorithm: 'ROLLING_WINDOW' }, new FakeClock(), { connectionPoolSize: 1 }, lines);
    try {
      assert.equal((await ask({ source: 'a' })).granted, 1);
      redis!.pause();
      const t0 = Date.now();
      // Bounded, not timed: the adapter's bound is 0.5 s per step; the assertion only rules out a hang.
      assert.deepEqual(await ask({ source: 'a' }), { granted: 0, validDurationMs: 0 });
      assert.deepEqual(await ask({ source: 'a' }), { granted: 0, validDurationMs: 0 });
      assert.ok(Date.now() - t0 < 10_000, `answered in ${Date.now() - t0} ms`);
      assert.match(JSON.parse(lines[0]!).err, /timed out|ETIMEDOUT/);
      redis!.unpause();
      // A call that timed out may still have been counted once Redis ran it (the safe direction), so count another source.
      assert.deepEqual(await grants(() => ask({ source: 'b' }), 3), [1, 1, 0]);
      assert.equal(lines.length, 2);
    } finally {
      redis!.unpause();
      await handler.close();
    }
  });
});
