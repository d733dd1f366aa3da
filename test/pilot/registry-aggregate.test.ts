// The aggregate over hand-driven registries: how services of one hostname
// merge, endpoint concatenation, caching by the children's arrays, event
// forwarding, run/stop of all, adding and removing registries while running.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RegistryEvent } from '../../src/pilot/model/index.ts';
import { AggregateRegistry } from '../../src/pilot/registry/index.ts';
import { StaticRegistry, endpoint, service, workload } from './fixtures/registry-static.ts';

function pair() {
  const a = new StaticRegistry('a');
  const b = new StaticRegistry('b');
  return { a, b, agg: new AggregateRegistry({ registries: [a, b] }) };
}

describe('merging', () => {
  test('one hostname in one namespace: the first registry defines it, the others add addresses and identities', () => {
    const { a, b, agg } = pair();
    a.set({ services: [service('reviews.default.svc.cluster.local', 'a', { addresses: ['10.96.0.1'], serviceAccounts: ['spiffe://td/ns/default/sa/reviews'] })] });
    b.set({
      services: [service('reviews.default.svc.cluster.local', 'b', {
        ports: [{ name: 'grpc', port: 9090, protocol: 'GRPC' }], addresses: ['10.200.0.1', '10.96.0.1'], serviceAccounts: ['spiffe://td/ns/default/sa/reviews-b'], meshExternal: true,
      })],
    });
    const [merged, ...rest] = agg.services();
    assert.deepEqual(rest, []);
    assert.equal(merged!.registry, 'a');
    assert.deepEqual(merged!.ports, [{ name: 'http', port: 80, protocol: 'HTTP' }]);
    assert.equal(merged!.meshExternal, false);
    assert.deepEqual(merged!.addresses, ['10.96.0.1', '10.200.0.1']);
    assert.deepEqual(merged!.serviceAccounts, ['spiffe://td/ns/default/sa/reviews', 'spiffe://td/ns/default/sa/reviews-b']);
    assert.ok(Object.isFrozen(merged) && Object.isFrozen(merged!.addresses));
  });

  test('other hosts and other namespaces pass through as the children\'s own objects, in registry order', () => {
    const { a, b, agg } = pair();
    a.set({ services: [service('x.example.com', 'a'), service('shared.example.com', 'a', { namespace: 'one' })] });
    b.set({ services: [service('y.example.com', 'b'), service('shared.example.com', 'b', { namespace: 'two' })] });
    const out = agg.services();
    assert.deepEqual(out.map((s) => `${s.hostname}/${s.namespace}@${s.registry}`), ['x.example.com/default@a', 'shared.example.com/one@a', 'y.example.com/default@b', 'shared.example.com/two@b']);
    assert.equal(out[0], a.services()[0]);
    assert.equal(out[2], b.services()[0]);
  });

  test('a single non-empty registry is passed through as is', () => {
    const { a, agg } = pair();
    a.set({ services: [service('x.example.com', 'a')] });
    assert.equal(agg.services(), a.services());
  });

  test('endpoints of all registries are concatenated, first registry first', () => {
    const { a, b, agg } = pair();
    const host = 'reviews.default.svc.cluster.local';
    a.set({ endpoints: [endpoint(host, workload('r1', '10.0.0.1', 'a'))] });
    b.set({ endpoints: [endpoint(host, workload('r2', '10.1.0.1', 'b')), endpoint(host, workload('r3', '10.1.0.2', 'b'))] });
    const eps = agg.endpoints(host);
    assert.deepEqual(eps.map((e) => e.workload.address), ['10.0.0.1', '10.1.0.1', '10.1.0.2']);
    assert.ok(Object.isFrozen(eps));
    assert.equal(agg.endpoints(host), eps, 'cached while the children are unchanged');
    b.set({ endpoints: [] });
    assert.equal(agg.endpoints(host), a.endpoints(host), 'one source: its own array');
    assert.deepEqual(agg.endpoints('unknown.host'), []);
  });

  test('workloads are concatenated', () => {
    const { a, b, agg } = pair();
    a.set({ workloads: [workload('w1', '10.0.0.1', 'a')] });
    b.set({ workloads: [workload('w2', '10.0.0.2', 'b')] });
    assert.deepEqual(agg.workloads().map((w) => w.name), ['w1', 'w2']);
    assert.ok(Object.isFrozen(agg.workloads()));
  });

  test('services() is cached until a child hands out a new array', () => {
    const { a, b, agg } = pair();
    a.set({ services: [service('x.example.com', 'a')] });
    b.set({ services: [service('y.example.com', 'b')] });
    const first = agg.services();
    assert.equal(agg.services(), first);
    b.set({ services: [service('z.example.com', 'b')] });
    const second = agg.services();
    assert.notEqual(second, first);
    assert.deepEqual(first.map((s) => s.hostname), ['x.example.com', 'y.example.com'], 'the old array is untouched');
    assert.deepEqual(second.map((s) => s.hostname), ['x.example.com', 'z.example.com']);
  });
});

describe('lifecycle and events', () => {
  test('events are forwarded unchanged once run() resolved, and not after stop()', async () => {
    const { a, b, agg } = pair();
    const events: RegistryEvent[] = [];
    agg.onChange((e) => events.push(e));
    a.fire({ kind: 'services', hostnames: ['early'] });
    await agg.run();
    assert.ok(a.ran && b.ran);
    a.fire({ kind: 'services', hostnames: ['x'] });
    b.fire({ kind: 'endpoints', hostnames: ['y'] });
    await agg.stop();
    assert.ok(a.stopped && b.stopped);
    a.fire({ kind: 'services', hostnames: ['late'] });
    assert.deepEqual(events, [{ kind: 'services', hostnames: ['x'] }, { kind: 'endpoints', hostnames: ['y'] }]);
  });

  test('run() rejects when a child fails; stop() stops every child even when one throws', async () => {
    const { a, b, agg } = pair();
    a.failRun = new Error('etcd unreachable');
    await assert.rejects(agg.run(), /etcd unreachable/);
    b.failStop = new Error('stuck');
    await agg.stop();
    assert.ok(a.stopped && b.stopped);
  });

  test('a registry added while running is run and announced; a removed one is stopped and announced', async () => {
    const { agg } = pair();
    await agg.run();
    const events: RegistryEvent[] = [];
    agg.onChange((e) => events.push(e));
    const c = new StaticRegistry('c');
    c.set({ services: [service('c2.example.com', 'c'), service('c1.example.com', 'c')] });
    await agg.addRegistry(c);
    assert.ok(c.ran);
    assert.deepEqual(agg.registries().map((r) => r.name), ['a', 'b', 'c']);
    assert.deepEqual(agg.services().map((s) => s.hostname), ['c2.example.com', 'c1.example.com']);
    c.fire({ kind: 'endpoints', hostnames: ['c1.example.com'] });
    assert.equal(await agg.removeRegistry('c'), true);
    assert.ok(c.stopped);
    assert.deepEqual(agg.services(), []);
    assert.equal(await agg.removeRegistry('c'), false);
    assert.deepEqual(events, [
      { kind: 'services', hostnames: ['c1.example.com', 'c2.example.com'] },
      { kind: 'endpoints', hostnames: ['c1.example.com'] },
      { kind: 'services', hostnames: ['c1.example.com', 'c2.example.com'] },
    ]);
    await agg.stop();
  });

  test('two registries with one name are refused', async () => {
    assert.throws(() => new AggregateRegistry({ registries: [new StaticRegistry('a'), new StaticRegistry('a')] }), { code: 'MESH_ERR_REGISTRY_DUPLICATE' });
    const { agg } = pair();
    await assert.rejects(agg.addRegistry(new StaticRegistry('b')), { code: 'MESH_ERR_REGISTRY_DUPLICATE' });
  });
});
