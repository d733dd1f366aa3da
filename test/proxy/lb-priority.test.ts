// The priority/locality layer and the hashing LBs on their own: Envoy's
// priority load with the overprovisioning factor, failover, panic mode,
// locality weights, and ring hash / Maglev consistency.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Host } from '../../src/proxy/upstream/host.ts';
import { DEFAULT_PRIORITY_LB_OPTIONS, PriorityLoadBalancer } from '../../src/proxy/upstream/priority-lb.ts';
import { createHashLoadBalancer, hashString } from '../../src/proxy/upstream/hash-lb.ts';
import type { LbPolicy } from '../../src/proxy/config/cluster-config.ts';

interface Spec {
  priority?: number;
  healthy?: boolean;
  locality?: string;
  localityWeight?: number;
  weight?: number;
}

function hosts(specs: Spec[]): Host[] {
  return specs.map((s, i) => {
    const h = new Host(`10.0.0.${i + 1}`, 80);
    h.priority = s.priority ?? 0;
    h.activeHcFailed = s.healthy === false;
    h.locality = s.locality ?? '';
    h.localityWeight = s.localityWeight ?? 0;
    h.weight = s.weight ?? 1;
    return h;
  });
}

function lb(hs: Host[], policy: LbPolicy = 'ROUND_ROBIN', extra: Partial<typeof DEFAULT_PRIORITY_LB_OPTIONS> = {}): PriorityLoadBalancer {
  return new PriorityLoadBalancer(hs, { ...DEFAULT_PRIORITY_LB_OPTIONS, ...extra, policy });
}

function tally(pick: () => Host | undefined, n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const k = pick()?.address ?? 'none';
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

const cases: Array<{ name: string; specs: Spec[]; load: number[]; panic: boolean; factor?: number }> = [
  { name: 'all healthy: everything to P0', specs: [{}, {}, { priority: 1 }], load: [100, 0], panic: false },
  { name: 'P0 fully down: fail over to P1', specs: [{ healthy: false }, { healthy: false }, { priority: 1 }], load: [0, 100], panic: false },
  { name: 'P0 half healthy: 1.4 x 50% = 70% stays, 30% spills', specs: [{}, { healthy: false }, { priority: 1 }], load: [70, 30], panic: false },
  { name: 'P0 3 of 4 healthy: 1.4 x 75% > 100%, no spill', specs: [{}, {}, {}, { healthy: false }, { priority: 1 }], load: [100, 0], panic: false },
  { name: 'overprovisioning factor 100: 50% spills', specs: [{}, { healthy: false }, { priority: 1 }], load: [50, 50], panic: false, factor: 100 },
  { name: 'one priority, 1 of 3 healthy: below the 50% panic threshold', specs: [{}, { healthy: false }, { healthy: false }], load: [100], panic: true },
];

for (const c of cases) {
  test(`priority load: ${c.name}`, () => {
    const p = lb(hosts(c.specs), 'ROUND_ROBIN', c.factor ? { overprovisioningFactor: c.factor } : {});
    assert.deepEqual(p.priorityLoad.map((x) => Math.round(x)), c.load);
    assert.equal(p.inPanic, c.panic);
  });
}

test('failover picks only P1 hosts while P0 is down, and P0 again once healthy', () => {
  const hs = hosts([{ healthy: false }, { healthy: false }, { priority: 1 }]);
  assert.deepEqual([...tally(() => lb(hs).pick(), 50).keys()], ['10.0.0.3']);
  hs[0].activeHcFailed = false;
  hs[1].activeHcFailed = false;
  assert.deepEqual([...tally(() => lb(hs).pick(), 50).keys()].sort(), ['10.0.0.1', '10.0.0.2']);
});

test('panic mode routes to all hosts, healthy or not; panic threshold 0 disables it', () => {
  const hs = hosts([{}, { healthy: false }, { healthy: false }]);
  const p = lb(hs);
  assert.equal(tally(() => p.pick(), 300).size, 3);
  const strict = lb(hs, 'ROUND_ROBIN', { panicThresholdPercent: 0 });
  assert.deepEqual([...tally(() => strict.pick(), 30).keys()], ['10.0.0.1']);
  // No healthy host at all and no panic: nothing to pick.
  const dead = lb(hosts([{ healthy: false }]), 'ROUND_ROBIN', { panicThresholdPercent: 0 });
  assert.equal(dead.pick(), undefined);
});

test('locality-weighted LB splits by load_balancing_weight, scaled by locality health', () => {
  const hs = hosts([
    { locality: 'r/z1', localityWeight: 1 },
    { locality: 'r/z2', localityWeight: 3 },
  ]);
  const p = lb(hs, 'ROUND_ROBIN', { localityWeighted: true });
  const t = tally(() => p.pick(), 400);
  assert.equal(t.get('10.0.0.1'), 100);
  assert.equal(t.get('10.0.0.2'), 300);
  // z2 half healthy: weight 3 x min(1, 1.4 x 0.5) = 2.1 against 1.
  const hs2 = hosts([
    { locality: 'r/z1', localityWeight: 1 },
    { locality: 'r/z2', localityWeight: 3 },
    { locality: 'r/z2', localityWeight: 3, healthy: false },
  ]);
  const t2 = tally(() => lb(hs2, 'ROUND_ROBIN', { localityWeighted: true }).pick(), 1);
  assert.equal(t2.size, 1);
  const p2 = lb(hs2, 'ROUND_ROBIN', { localityWeighted: true });
  const t3 = tally(() => p2.pick(), 310);
  assert.equal(t3.get('10.0.0.1'), 100);
  assert.equal(t3.get('10.0.0.2'), 210);
  assert.equal(t3.get('10.0.0.3'), undefined);
});

for (const policy of ['RING_HASH', 'MAGLEV'] as const) {
  test(`${policy}: the same hash always lands on the same host, keys spread, removal moves few keys`, () => {
    const hs = hosts([{}, {}, {}, {}]);
    const opts = { ringMinSize: 1024, ringMaxSize: 8 * 1024 * 1024, maglevTableSize: 65537 };
    const lbA = createHashLoadBalancer(policy, hs, opts);
    const owners = new Map<number, string>();
    const spread = new Map<string, number>();
    for (let k = 0; k < 2000; k++) {
      const h = hashString(`user-${k}`);
      const owner = lbA.pick(h, 0)!.address;
      assert.equal(lbA.pick(h, 0)!.address, owner);
      owners.set(h, owner);
      spread.set(owner, (spread.get(owner) ?? 0) + 1);
    }
    for (const n of spread.values()) assert.ok(n > 300 && n < 700, `uneven spread ${[...spread.values()]}`);
    // Drop the last host: keys it did not own mostly stay put.
    const lbB = createHashLoadBalancer(policy, hs.slice(0, 3), opts);
    let moved = 0;
    let kept = 0;
    for (const [h, owner] of owners) {
      if (owner === '10.0.0.4') continue;
      kept++;
      if (lbB.pick(h, 0)!.address !== owner) moved++;
    }
    // Envoy resizes each host's share of the ring, so a few keys move; most stay.
    assert.ok(moved / kept < 0.25, `${moved} of ${kept} keys moved`);
    // A host-selection retry walks to a different host.
    const h = hashString('retry-me');
    assert.notEqual(lbA.pick(h, 1)!.address, lbA.pick(h, 0)!.address);
  });
}
