// Per-proxy state shared between proxies of one view (SharedState): interned
// name sets, held maps interned by the packed resources they hold, memoized
// diffs and derived (fast path) maps, and the allocation-free ACK check.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TypeUrl } from '../../src/xds/index.ts';
import { ResourceCache } from '../../src/pilot/xds-server/resource-cache.ts';
import { SharedState } from '../../src/pilot/xds-server/shared-state.ts';

const cache = new ResourceCache();
const cla = (name: string, port: number) => cache.pack('v1', TypeUrl.ClusterLoadAssignment, { name, value: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: port } } } }] }] } });

test('equal name lists share one set; sameNames compares in order, then as sets', () => {
  const shared = new SharedState();
  const a = shared.names(['x', 'y', 'z']);
  assert.equal(shared.names(['x', 'y', 'z']), a);
  assert.notEqual(shared.names(['y', 'x', 'z']), a);
  assert.equal(shared.sameNames(a, ['x', 'y', 'z']), true);
  assert.equal(shared.sameNames(a, ['z', 'x', 'y']), true, 'another order is the same subscription');
  assert.equal(shared.sameNames(a, ['x', '*', 'y', 'z']), true, '`*` is not a name');
  assert.equal(shared.sameNames(a, ['x', 'y']), false);
  assert.equal(shared.sameNames(a, ['x', 'y', 'z', 'w']), false);
  assert.equal(shared.sameNames(a, ['x', 'y', 'y', 'z']), true, 'duplicates count once');
});

test('held maps are interned by the packed resources, and diffs between them memoized', () => {
  const shared = new SharedState();
  const p1 = cla('outbound|80||a.default.svc.cluster.local', 80);
  const p2 = cla('outbound|80||b.default.svc.cluster.local', 80);
  const p2b = cla('outbound|80||b.default.svc.cluster.local', 81);
  const h1 = shared.held(TypeUrl.ClusterLoadAssignment, [p1, p2]);
  assert.equal(shared.held(TypeUrl.ClusterLoadAssignment, [p1, p2]), h1);
  assert.deepEqual([...h1.keys()], [p1.name, p2.name]);
  const h2 = shared.held(TypeUrl.ClusterLoadAssignment, [p2b]);
  const d = shared.diff(h1, h2);
  assert.deepEqual(d.changed.map((p) => p.version), [p2b.version]);
  assert.deepEqual(d.removed, [p1.name]);
  assert.equal(shared.diff(h1, h2), d);
});

test('a derived map is shared by the watches that make the same change, and leaves its base alone', () => {
  const shared = new SharedState();
  const p1 = cla('outbound|80||a.default.svc.cluster.local', 80);
  const p2 = cla('outbound|80||b.default.svc.cluster.local', 80);
  const p1b = cla('outbound|80||a.default.svc.cluster.local', 82);
  const base = shared.held(TypeUrl.ClusterLoadAssignment, [p1, p2]);
  const next = shared.derive(base, [p1b], []);
  assert.equal(shared.derive(base, [p1b], []), next);
  assert.equal(next.get(p1.name)?.version, p1b.version);
  assert.equal(base.get(p1.name)?.version, p1.version);
  assert.deepEqual([...shared.derive(base, [], [p2.name]).keys()], [p1.name]);
});
