// Snapshots and the distributor: immutability, identity of unchanged types,
// debounce and maxDelay under a fake clock, and the start-up race with watch.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../../src/galley/memory-store.ts';
import { ConfigSnapshot, SnapshotDistributor, noopLog } from '../../src/galley/snapshot.ts';
import { GADGET, WIDGET, gadget, testRegistry, widget } from './fixtures/distribution-kinds.ts';
import { FakeClock } from '../helpers/fake-clock.ts';


async function setup(options: { debounceMs?: number; maxDelayMs?: number } = {}) {
  const store = new MemoryStore();
  const clock = new FakeClock();
  const errors: string[] = [];
  const log = { ...noopLog, error: (_obj: object, msg: string) => errors.push(msg) };
  const distributor = new SnapshotDistributor({ store, registry: testRegistry(), clock, log, ...options });
  const seen: ConfigSnapshot[] = [];
  await store.apply(widget('default', 'a', { size: 1 }));
  await distributor.start();
  distributor.subscribe((s) => seen.push(s));
  return { store, clock, distributor, seen, errors };
}

test('start publishes the whole store as version 1, covering every registered kind', async () => {
  const { distributor, seen, store } = await setup();
  assert.equal(seen.length, 1);
  const s = distributor.current()!;
  assert.equal(s.version, 1);
  assert.equal(s.revision, store.revision());
  assert.deepEqual(s.typeUrls().sort(), [GADGET, WIDGET].sort());
  assert.equal(s.objects(WIDGET).length, 1);
  assert.deepEqual(s.objects(GADGET), []);
  assert.deepEqual(s.get(WIDGET, 'default', 'a')?.spec, { size: 1 });
  assert.equal(s.get(WIDGET, 'default', 'missing'), undefined);
  assert.deepEqual(s.objects('unknown.io/v1/Thing'), []);
  distributor.stop();
});

test('snapshots are deep-frozen', async () => {
  const { distributor } = await setup();
  const s = distributor.current()!;
  const obj = s.get(WIDGET, 'default', 'a')!;
  assert.throws(() => {
    (obj.spec as Record<string, number>).size = 2;
  }, TypeError);
  assert.throws(() => {
    obj.metadata.name = 'b';
  }, TypeError);
  assert.throws(() => {
    (s.objects(WIDGET) as unknown as unknown[]).push({});
  }, TypeError);
  assert.throws(() => {
    (s as unknown as { version: number }).version = 9;
  }, TypeError);
  // A list frozen only at the top is frozen through when a snapshot takes it.
  const loose = widget('ns', 'loose', { nested: { n: 1 } });
  const built = new ConfigSnapshot(1, 1, new Map([[WIDGET, Object.freeze([loose])]]));
  assert.ok(Object.isFrozen(built.get(WIDGET, 'ns', 'loose')!.spec));
  assert.ok(Object.isFrozen((loose.spec as { nested: object }).nested));
  distributor.stop();
});

test('a burst of changes becomes one snapshot after the quiet time', async () => {
  const { store, clock, distributor, seen } = await setup({ debounceMs: 100, maxDelayMs: 1000 });
  await store.apply(widget('default', 'b'));
  clock.advance(60);
  await store.apply(widget('default', 'c'));
  clock.advance(60);
  await store.apply(widget('default', 'd'));
  clock.advance(99);
  assert.equal(seen.length, 1, 'no snapshot while changes keep coming within the quiet time');
  clock.advance(1);
  assert.equal(seen.length, 2);
  const s = seen[1];
  assert.equal(s.version, 2);
  assert.equal(s.revision, store.revision());
  assert.deepEqual(s.objects(WIDGET).map((o) => o.metadata.name), ['a', 'b', 'c', 'd']);
  assert.equal(clock.pending(), 0);
  distributor.stop();
});

test('maxDelay bounds the wait under a constant stream of changes', async () => {
  const { store, clock, distributor, seen } = await setup({ debounceMs: 100, maxDelayMs: 300 });
  for (let i = 0; i < 5; i++) {
    await store.apply(widget('default', `w${i}`));
    clock.advance(80);
  }
  // First change at t=0, changes every 80 ms: the quiet time never passes, maxDelay fires at t=300.
  assert.equal(seen.length, 2);
  assert.equal(clock.now(), 400);
  assert.deepEqual(seen[1].objects(WIDGET).map((o) => o.metadata.name), ['a', 'w0', 'w1', 'w2', 'w3']);
  clock.advance(100);
  assert.equal(seen.length, 3, 'the change after the forced flush is published after its own quiet time');
  assert.equal(seen[2].objects(WIDGET).length, 6);
  distributor.stop();
});

test('unchanged types keep their array identity; changed ones do not', async () => {
  const { store, clock, distributor, seen } = await setup();
  const first = seen[0];
  await store.apply(gadget('ns', 'g'));
  clock.advance(100);
  const second = seen[1];
  assert.equal(second.objects(WIDGET), first.objects(WIDGET));
  assert.notEqual(second.objects(GADGET), first.objects(GADGET));
  assert.deepEqual(second.changedTypes(first), [GADGET]);
  assert.equal(second.get(WIDGET, 'default', 'a'), first.get(WIDGET, 'default', 'a'));
  distributor.stop();
});

test('a change that cancels itself out publishes nothing', async () => {
  const { store, clock, distributor, seen } = await setup();
  await store.apply(gadget('ns', 'tmp'));
  await store.delete({ group: 'test.mesh.io', kind: 'Gadget', namespace: 'ns', name: 'tmp' });
  clock.advance(1000);
  assert.equal(seen.length, 1);
  distributor.stop();
});

test('deletes remove objects; objects of unknown kinds are skipped', async () => {
  const { store, clock, distributor, seen } = await setup();
  await store.apply({ apiVersion: 'other.io/v1', kind: 'Thing', metadata: { name: 'x', namespace: 'default' }, spec: {} });
  await store.delete({ group: 'test.mesh.io', kind: 'Widget', namespace: 'default', name: 'a' });
  clock.advance(100);
  assert.equal(seen.length, 2);
  assert.deepEqual(seen[1].objects(WIDGET), []);
  assert.deepEqual(seen[1].typeUrls().sort(), [GADGET, WIDGET].sort());
  distributor.stop();
});

test('objects stored under an older accepted version are grouped under the kind type URL', async () => {
  const { store, clock, distributor, seen } = await setup();
  await store.apply({ ...widget('default', 'old'), apiVersion: 'test.mesh.io/v1alpha1' });
  clock.advance(100);
  assert.equal(seen[1].get(WIDGET, 'default', 'old')?.apiVersion, 'test.mesh.io/v1alpha1');
  distributor.stop();
});

test('a change made while start() is listing is not lost', async () => {
  const store = new MemoryStore();
  const clock = new FakeClock();
  const distributor = new SnapshotDistributor({ store, registry: testRegistry(), clock });
  const started = distributor.start();
  const applied = store.apply(widget('default', 'racer'));
  await Promise.all([started, applied]);
  clock.advance(100);
  assert.ok(distributor.current()!.get(WIDGET, 'default', 'racer'));
  assert.equal(distributor.current()!.revision, store.revision());
  distributor.stop();
});

test('a throwing subscriber does not stop the others; unsubscribe and stop end delivery', async () => {
  const { store, clock, distributor, seen, errors } = await setup();
  const d2 = distributor;
  const unsubscribeBad = d2.subscribe(() => {
    throw new Error('bad subscriber');
  });
  const other: number[] = [];
  const unsubscribe = d2.subscribe((s) => other.push(s.version));
  await store.apply(widget('default', 'b'));
  clock.advance(100);
  assert.deepEqual(other, [1, 2]);
  assert.equal(seen.length, 2);
  unsubscribe();
  unsubscribeBad();
  await store.apply(widget('default', 'c'));
  clock.advance(100);
  assert.deepEqual(other, [1, 2]);
  distributor.stop();
  await store.apply(widget('default', 'd'));
  clock.advance(1000);
  assert.equal(seen.length, 3);
  assert.equal(clock.pending(), 0);
  assert.deepEqual(errors, ['a snapshot subscriber threw', 'a snapshot subscriber threw']);
});
