// Load balancers on their own: weighted round robin is exact over a cycle,
// least request prefers idle hosts, random spreads; health and priority
// decide which hosts are eligible at all.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLoadBalancer } from '../../src/proxy/upstream/load-balancer.ts';
import { Host } from '../../src/proxy/upstream/host.ts';
import { Cluster } from '../../src/proxy/upstream/cluster.ts';
import { StatsStore, decodeCluster, decodeJson } from '../../src/proxy/index.ts';
import { TypeUrl } from '../../src/xds/index.ts';

function hosts(weights: number[]): Host[] {
  return weights.map((w, i) => {
    const h = new Host('10.0.0.' + (i + 1), 80);
    h.weight = w;
    return h;
  });
}

function count(pick: () => Host | undefined, n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const k = pick()!.address;
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

test('ROUND_ROBIN with equal weights cycles through every host', () => {
  const lb = createLoadBalancer('ROUND_ROBIN', hosts([1, 1, 1]));
  assert.deepEqual([...count(() => lb.pick(), 300).values()], [100, 100, 100]);
});

test('ROUND_ROBIN with weights 1:3 picks exactly in proportion, interleaved', () => {
  const lb = createLoadBalancer('ROUND_ROBIN', hosts([1, 3]));
  const seq = Array.from({ length: 8 }, () => lb.pick()!.address);
  assert.equal(seq.filter((a) => a === '10.0.0.1').length, 2);
  // Smooth: the light host never waits behind more than three picks of the heavy one.
  assert.ok(!seq.join(',').includes(Array(4).fill('10.0.0.2').join(',')), seq.join(','));
  const c = count(() => lb.pick(), 400);
  assert.equal(c.get('10.0.0.1'), 100);
  assert.equal(c.get('10.0.0.2'), 300);
});

test('LEAST_REQUEST (P2C) avoids the busy host', () => {
  const hs = hosts([1, 1]);
  hs[0].activeRequests = 50;
  const lb = createLoadBalancer('LEAST_REQUEST', hs);
  const c = count(() => lb.pick(), 1000);
  // The busy host wins only when both draws land on it: about 1/4.
  assert.ok((c.get('10.0.0.1') ?? 0) < 330, `busy host got ${c.get('10.0.0.1')}`);
});

test('RANDOM uses the given source of randomness', () => {
  const lb = createLoadBalancer('RANDOM', hosts([1, 1, 1, 1]), () => 0.6);
  assert.equal(lb.pick()!.address, '10.0.0.3');
  assert.equal(createLoadBalancer('RANDOM', []).pick(), undefined);
});

test('a cluster routes only to healthy hosts of the best priority', () => {
  const config = decodeCluster(decodeJson(TypeUrl.Cluster, { name: 'c', type: 'EDS', eds_cluster_config: {} }, 'Cluster'));
  const cluster = new Cluster(config, new StatsStore());
  cluster.applyLoadAssignment({
    clusterName: 'c',
    endpoints: [
      { address: '127.0.0.1', port: 1, weight: 1, health: 'UNHEALTHY', priority: 0, locality: '' },
      { address: '127.0.0.1', port: 2, weight: 1, health: 'HEALTHY', priority: 1, locality: '' },
      { address: '127.0.0.1', port: 3, weight: 1, health: 'DRAINING', priority: 0, locality: '' },
    ],
  });
  assert.equal(cluster.pickHost()!.port, 2);
  assert.equal(cluster.stats.membership_healthy.value, 1);
  assert.equal(cluster.stats.membership_total.value, 3);
  cluster.close();
});
