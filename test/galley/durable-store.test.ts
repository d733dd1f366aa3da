// The durable store: ConfigStore behaviour, persistence across reopen, file
// modes, and damaged files. Crash safety is in durable-kill.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfigObject } from '../../src/api/index.ts';
import { keyOf } from '../../src/api/index.ts';
import type { WatchEvent } from '../../src/galley/config-store.ts';
import { DurableStore } from '../../src/galley/durable-store.ts';
import { GalleyError, GalleyErrorCode } from '../../src/galley/errors.ts';

function tempDir(t: { after(fn: () => void): void }): string {
  const base = mkdtempSync(join(tmpdir(), 'mesh-durable-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  return base;
}

function virtualService(name: string, host: string, extra: Partial<ConfigObject['metadata']> = {}): ConfigObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name, namespace: 'default', ...extra },
    spec: { hosts: [host], http: [{ route: [{ destination: { host } }] }] },
  };
}

function destinationRule(name: string, host: string): ConfigObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name, namespace: 'default' },
    spec: { host, subsets: [{ name: 'v1', labels: { version: 'v1' } }] },
  };
}

function isGalleyError(code: string, messageIncludes?: string) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof GalleyError, `expected a GalleyError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (messageIncludes !== undefined) assert.ok(err.message.includes(messageIncludes), `message "${err.message}" lacks "${messageIncludes}"`);
    return true;
  };
}

test('create, get, list, update and delete', async (t) => {
  const store = await DurableStore.open(join(tempDir(t), 'data'));
  t.after(() => store.close());
  assert.equal(store.revision(), 0);

  const created = await store.apply(virtualService('reviews', 'reviews'));
  assert.equal(created.action, 'created');
  assert.equal(created.object.metadata.resourceVersion, '1');
  assert.equal(created.object.metadata.generation, 1);
  await store.apply(destinationRule('reviews', 'reviews'));
  assert.equal(store.revision(), 2);

  const got = await store.get(keyOf(created.object));
  assert.deepEqual(got, created.object);
  assert.equal((await store.list()).length, 2);
  assert.deepEqual((await store.list({ kind: 'DestinationRule' })).map((o) => o.metadata.name), ['reviews']);
  assert.deepEqual(await store.list({ namespace: 'other' }), []);

  const updated = await store.apply(virtualService('reviews', 'reviews-v2'));
  assert.equal(updated.action, 'configured');
  assert.equal(updated.object.metadata.resourceVersion, '3');
  assert.equal(updated.object.metadata.generation, 2);
  assert.equal(updated.object.metadata.uid, created.object.metadata.uid);

  const deleted = await store.delete(keyOf(created.object));
  assert.deepEqual((deleted?.spec as { hosts: string[] }).hosts, ['reviews-v2']);
  assert.equal(await store.get(keyOf(created.object)), undefined);
  assert.equal(await store.delete(keyOf(created.object)), undefined);
  assert.equal(store.revision(), 4);
});

test('a stale resourceVersion is a conflict and changes nothing', async (t) => {
  const dir = tempDir(t);
  const store = await DurableStore.open(dir);
  t.after(() => store.close());
  const first = await store.apply(virtualService('reviews', 'reviews'));
  await store.apply(virtualService('reviews', 'reviews-v2'));

  await assert.rejects(
    store.apply(virtualService('reviews', 'reviews-v3', { resourceVersion: first.object.metadata.resourceVersion })),
    isGalleyError(GalleyErrorCode.CONFLICT, 'VirtualService default/reviews: resourceVersion 1 does not match the stored 2'),
  );
  await assert.rejects(store.delete(keyOf(first.object), { resourceVersion: '1' }), isGalleyError('MESH_ERR_GALLEY_CONFLICT'));
  await assert.rejects(store.apply(virtualService('ratings', 'ratings', { resourceVersion: '7' })), isGalleyError('MESH_ERR_GALLEY_CONFLICT', 'the object does not exist'));
  assert.equal(store.revision(), 2);

  // The failed writes left nothing behind on disk either.
  await store.close();
  const reopened = await DurableStore.open(dir);
  t.after(() => reopened.close());
  assert.equal(reopened.revision(), 2);
  assert.deepEqual((await reopened.list()).map((o) => (o.spec as { hosts: string[] }).hosts[0]), ['reviews-v2']);

  const current = await reopened.apply(virtualService('reviews', 'reviews-v3', { resourceVersion: '2' }));
  assert.equal(current.action, 'configured');
});

test('applying the same content again is unchanged and does not bump the revision', async (t) => {
  const store = await DurableStore.open(tempDir(t));
  t.after(() => store.close());
  const first = await store.apply(virtualService('reviews', 'reviews'));
  const events: WatchEvent[] = [];
  store.watch((batch) => events.push(...batch));
  const again = await store.apply(virtualService('reviews', 'reviews'));
  assert.equal(again.action, 'unchanged');
  assert.deepEqual(again.object, first.object);
  assert.equal(store.revision(), 1);
  assert.deepEqual(events, []);
});

test('dry runs change nothing, in memory or on disk', async (t) => {
  const dir = tempDir(t);
  const store = await DurableStore.open(dir);
  const real = await store.apply(virtualService('reviews', 'reviews'));
  const events: WatchEvent[] = [];
  store.watch((batch) => events.push(...batch));

  const dryCreate = await store.apply(virtualService('ratings', 'ratings'), { dryRun: true });
  assert.equal(dryCreate.action, 'created');
  assert.equal(dryCreate.object.metadata.resourceVersion, '2');
  const dryUpdate = await store.apply(virtualService('reviews', 'reviews-v2'), { dryRun: true });
  assert.equal(dryUpdate.action, 'configured');
  const dryDelete = await store.delete(keyOf(real.object), { dryRun: true });
  assert.deepEqual(dryDelete, real.object);

  assert.equal(store.revision(), 1);
  assert.deepEqual(events, []);
  assert.deepEqual(await store.list(), [real.object]);
  await store.close();

  const reopened = await DurableStore.open(dir);
  t.after(() => reopened.close());
  assert.equal(reopened.revision(), 1);
  assert.deepEqual(await reopened.list(), [real.object]);
});

test('watchers get every change in revision order', async (t) => {
  const store = await DurableStore.open(tempDir(t));
  t.after(() => store.close());
  const events: WatchEvent[] = [];
  const stop = store.watch((batch) => events.push(...batch));
  await store.apply(virtualService('reviews', 'reviews'));
  await store.apply(virtualService('reviews', 'reviews-v2'));
  await store.delete(keyOf(virtualService('reviews', 'reviews')));
  stop();
  await store.apply(virtualService('ratings', 'ratings'));

  assert.deepEqual(events.map((e) => [e.type, e.object.metadata.name, e.revision]), [
    ['ADDED', 'reviews', 1],
    ['MODIFIED', 'reviews', 2],
    ['DELETED', 'reviews', 3],
  ]);
  assert.equal(events[2]!.object.metadata.resourceVersion, '2');
});

test('reopening restores every object and the revision, and writes continue from it', async (t) => {
  const dir = tempDir(t);
  const store = await DurableStore.open(dir);
  const applied: ConfigObject[] = [];
  for (const name of ['a', 'b', 'c']) applied.push((await store.apply(virtualService(name, `${name}.example.com`))).object);
  applied.push((await store.apply(destinationRule('a', 'a.example.com'))).object);
  await store.delete(keyOf(applied[1]!));
  await store.close();
  await assert.rejects(store.apply(virtualService('d', 'd')), isGalleyError(GalleyErrorCode.CLOSED));

  const reopened = await DurableStore.open(dir);
  t.after(() => reopened.close());
  assert.equal(reopened.revision(), 5);
  const byKey = (objs: ConfigObject[]) => new Map(objs.map((o) => [`${o.kind}/${o.metadata.name}`, o]));
  assert.deepEqual(byKey(await reopened.list()), byKey([applied[0]!, applied[2]!, applied[3]!]));

  const next = await reopened.apply(virtualService('c', 'c2.example.com'));
  assert.equal(next.object.metadata.resourceVersion, '6');
  assert.equal(next.object.metadata.generation, 2);
  assert.equal(next.object.metadata.uid, applied[2]!.metadata.uid);
});

test('the data directory is 0700 and the database file 0600', async (t) => {
  const dir = join(tempDir(t), 'nested', 'data');
  const store = await DurableStore.open(dir);
  t.after(() => store.close());
  await store.apply(virtualService('reviews', 'reviews'));
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.equal(statSync(store.path).mode & 0o777, 0o600);
  assert.equal(statSync(`${store.path}-wal`).mode & 0o777, 0o600);
});

test('a damaged database fails to open with a storage error naming the file', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'config.db');
  writeFileSync(path, 'this is not a database, but it is long enough to have a header of sorts '.repeat(100));
  await assert.rejects(DurableStore.open(dir), isGalleyError(GalleyErrorCode.STORAGE, `${path}: cannot open the config store: file is not a database`));
});

test('an unreadable database fails to open with a storage error naming the file', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'config.db');
  mkdirSync(path); // a directory where the file should be: unreadable even for root
  await assert.rejects(DurableStore.open(dir), isGalleyError(GalleyErrorCode.STORAGE, `${path}: cannot open the config store`));
});

test('a damaged object row fails to open with a storage error naming the object', async (t) => {
  const dir = tempDir(t);
  const store = await DurableStore.open(dir);
  await store.apply(virtualService('reviews', 'reviews'));
  await store.close();
  const { DatabaseSync } = await import('node:sqlite');
  const db = new DatabaseSync(join(dir, 'config.db'));
  db.exec(`UPDATE objects SET json = '{"apiVersion": "networking.istio.io/v1", "kind": "Virtual'`);
  db.close();
  await assert.rejects(
    DurableStore.open(dir),
    isGalleyError(GalleyErrorCode.STORAGE, `${join(dir, 'config.db')}: object networking.istio.io/VirtualService/default/reviews is not valid JSON`),
  );
});

test('a write made behind the store by another process fails instead of diverging', async (t) => {
  const dir = tempDir(t);
  const first = await DurableStore.open(dir);
  t.after(() => first.close());
  const second = await DurableStore.open(dir);
  t.after(() => second.close());
  await first.apply(virtualService('reviews', 'reviews'));
  await assert.rejects(second.apply(virtualService('ratings', 'ratings')), isGalleyError(GalleyErrorCode.STORAGE, 'another process wrote to it'));
  assert.equal(second.revision(), 0);
  assert.deepEqual(await second.list(), []);
});
