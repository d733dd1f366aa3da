// Quota adapter cost: handleQuota calls per second and latency (p50/p99) of
// memquota and of redisquota (FIXED_WINDOW and ROLLING_WINDOW, pool of 1 and
// of 10 connections) against a real redis-server on 127.0.0.1 started for the
// run (test/helpers/redis-server.ts). Callers run `--concurrency` calls at a
// time over 100 distinct sources, limits high enough that every call is
// granted (the cost of counting, not of denying). Report only, no target.
//
// usage: node bench/redisquota-bench.ts [--seconds 3] [--concurrency 32]

import { parseArgs } from 'node:util';
import { Registry } from '../src/common/metrics.ts';
import type { AdapterEnv, AdapterInfo, Instance } from '../src/mixer/index.ts';
import { memquotaAdapter, redisquotaAdapter } from '../src/mixer/index.ts';
import { RedisServer } from '../test/helpers/redis-server.ts';

const { values: args } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, concurrency: { type: 'string', default: '32' } } });
const seconds = Number(args.seconds);
const concurrency = Number(args.concurrency);

const env: AdapterEnv = { now: Date.now, metrics: new Registry(), write: () => undefined, handlerName: 'bench.istio-system' };
const QUOTA = 'requestcount.istio-system';
const instances: Instance[] = Array.from({ length: 100 }, (_, i) => ({ name: QUOTA, template: 'quota', fields: { dimensions: new Map([['source', `s${i}`], ['destination', 'ratings']]) } }));

async function measure(adapter: AdapterInfo<any>, params: Record<string, unknown>): Promise<{ rate: number; p50: number; p99: number }> {
  const { params: p, errors } = adapter.validate(params);
  if (errors.length > 0) throw new Error(JSON.stringify(errors));
  const handler = adapter.build(p, env);
  const latencies: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  let n = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const t = performance.now();
      const r = await handler.handleQuota!(instances[n++ % instances.length]!, { amount: 1, bestEffort: false });
      latencies.push(performance.now() - t);
      if (r.granted !== 1) throw new Error('a call was denied: raise the limit');
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  await handler.close();
  latencies.sort((a, b) => a - b);
  return { rate: latencies.length / elapsed, p50: latencies[Math.floor(latencies.length * 0.5)]!, p99: latencies[Math.floor(latencies.length * 0.99)]! };
}

const redis = await RedisServer.start();
try {
  const quota = { name: QUOTA, maxAmount: 1_000_000_000, validDuration: '60s' };
  const rolling = { ...quota, bucketDuration: '1s', rateLimitAlgorithm: 'ROLLING_WINDOW' };
  const runs: [string, AdapterInfo<any>, Record<string, unknown>][] = [
    ['memquota', memquotaAdapter, { quotas: [quota] }],
    ['redisquota FIXED_WINDOW, pool 1', redisquotaAdapter, { redisServerUrl: redis.url, connectionPoolSize: 1, quotas: [quota] }],
    ['redisquota FIXED_WINDOW, pool 10', redisquotaAdapter, { redisServerUrl: redis.url, connectionPoolSize: 10, quotas: [quota] }],
    ['redisquota ROLLING_WINDOW, pool 1', redisquotaAdapter, { redisServerUrl: redis.url, connectionPoolSize: 1, quotas: [rolling] }],
    ['redisquota ROLLING_WINDOW, pool 10', redisquotaAdapter, { redisServerUrl: redis.url, connectionPoolSize: 10, quotas: [rolling] }],
  ];
  console.log(`${seconds} s per run, ${concurrency} concurrent callers, 100 sources`);
  console.log('| adapter | calls/s | p50 ms | p99 ms |\n| --- | --- | --- | --- |');
  for (const [label, adapter, params] of runs) {
    const r = await measure(adapter, params);
    console.log(`| ${label} | ${Math.round(r.rate)} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} |`);
  }
} finally {
  await redis.stop();
}
