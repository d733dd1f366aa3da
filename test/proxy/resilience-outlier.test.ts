// Outlier detection through the proxy on a ManualClock: a host is ejected
// after consecutive 5xx, skipped by the LB and returned at the first sweep
// after its ejection time, which grows with each ejection;
// max_ejection_percent keeps the rest in.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Proxy, parseBootstrap } from '../../src/proxy/index.ts';
import { ManualClock } from '../../src/proxy/clock.ts';
import type { Upstream } from './helpers.ts';
import { clientAgent, get, hcmListener, startUpstream, staticCluster } from './helpers.ts';

let proxy: Proxy;
let port: number;
const clock = new ManualClock(1_000_000);
const ups: Upstream[] = [];
const failing = new Set<string>();

function app(name: string) {
  return (_req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(failing.has(name) ? 500 : 200, { 'x-upstream': name });
    res.end(name);
  };
}

before(async () => {
  for (const n of ['a', 'b']) ups.push(await startUpstream(n, app(n)));
  const [a, b] = ups;
  const routes = { name: 'local', virtual_hosts: [{ name: 'svc', domains: ['*'], routes: [{ match: { prefix: '/od' }, route: { cluster: 'od' } }] }] };
  const bootstrap = {
    static_resources: {
      clusters: [staticCluster('od', [a.port, b.port], { outlier_detection: { consecutive_5xx: 3, interval: '1s', base_ejection_time: '10s', max_ejection_percent: 50 } })],
      listeners: [hcmListener('http', routes)],
    },
  };
  proxy = await Proxy.start({ bootstrap: parseBootstrap(JSON.stringify(bootstrap), 'test'), clock });
  port = proxy.listenerPort('http')!;
});

after(async () => {
  clientAgent.destroy();
  await proxy.stop();
  await Promise.all(ups.map((u) => u.close()));
});

const stat = (name: string): number => proxy.stats.get(name);

async function hits(path: string, n: number): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const r = await get(port, path);
    const k = `${r.headers['x-upstream']}:${r.status}`;
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

/** Steps the clock a second (one sweep) at a time until no host is ejected; returns the seconds taken. */
function stepUntilReturned(maxSeconds: number): number {
  for (let s = 1; s <= maxSeconds; s++) {
    clock.advance(1000);
    if (stat('cluster.od.outlier_detection.ejections_active') === 0) return s;
  }
  return Infinity;
}

test('outlier detection: 3 consecutive 5xx eject a host, the LB skips it, it returns after base_ejection_time', async () => {
  failing.add('a');
  // Round robin alternates: six requests give a its three failures.
  await hits('/od', 6);
  assert.equal(stat('cluster.od.outlier_detection.ejections_active'), 1);
  assert.equal(stat('cluster.od.outlier_detection.ejections_enforced_consecutive_5xx'), 1);
  failing.delete('a');
  assert.deepEqual([...(await hits('/od', 10)).entries()], [['b:200', 10]]);
  const took = stepUntilReturned(30);
  assert.ok(took >= 10 && took <= 11, `back after base_ejection_time 10s at the next sweep (took ${took}s)`);
  const back = await hits('/od', 10);
  assert.equal(back.get('a:200'), 5);
  assert.equal(back.get('b:200'), 5);
});

test('outlier detection: a second ejection lasts base_ejection_time x 2', async () => {
  failing.add('a');
  await hits('/od', 6);
  failing.delete('a');
  assert.equal(stat('cluster.od.outlier_detection.ejections_active'), 1);
  assert.deepEqual([...(await hits('/od', 4)).keys()], ['b:200']);
  const took = stepUntilReturned(40);
  assert.ok(took >= 20 && took <= 21, `second ejection lasts 2 x 10s (took ${took}s)`);
});

test('max_ejection_percent: with 50% of two hosts, the second failing host stays in', async () => {
  failing.add('a');
  failing.add('b');
  await hits('/od', 12);
  assert.equal(stat('cluster.od.outlier_detection.ejections_active'), 1);
  assert.ok(stat('cluster.od.outlier_detection.ejections_overflow') >= 1);
  failing.clear();
  clock.advance(60_000);
  assert.equal(stat('cluster.od.outlier_detection.ejections_active'), 0);
});
