// The watched directory source: loading, live edits through fs.watch, bad
// files skipped and reported while good config keeps serving, last good
// objects kept across syntax errors, and read-only writes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ConfigObject } from '../../src/api/index.ts';
import { istioKinds } from '../../src/api/index.ts';
import type { WatchEvent } from '../../src/galley/config-store.ts';
import { DirectorySource } from '../../src/galley/directory-source.ts';
import { GalleyError, GalleyErrorCode } from '../../src/galley/errors.ts';

const registry = istioKinds;
// A watch that never fires must fail the test, not hang it.
const WATCH_TEST = { timeout: 10_000 };

function vsYaml(name: string, host: string, namespace?: string): string {
  return [
    'apiVersion: networking.istio.io/v1',
    'kind: VirtualService',
    'metadata:',
    `  name: ${name}`,
    ...(namespace ? [`  namespace: ${namespace}`] : []),
    'spec:',
    '  hosts:',
    `  - ${host}`,
    '  http:',
    '  - route:',
    '    - destination:',
    `        host: ${host}`,
    '',
  ].join('\n');
}

function drYaml(name: string, host: string): string {
  return ['apiVersion: networking.istio.io/v1', 'kind: DestinationRule', 'metadata:', `  name: ${name}`, 'spec:', `  host: ${host}`, ''].join('\n');
}

const K8S_SERVICE = ['apiVersion: v1', 'kind: Service', 'metadata:', '  name: reviews', 'spec:', '  ports:', '  - port: 9080', ''].join('\n');

/** A temp directory with the given files, removed after the test. */
function configDir(t: { after(fn: () => void): void }, files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-dirsource-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [path, text] of Object.entries(files)) writeFile(dir, path, text);
  return dir;
}

/** Writes a file in one step (temp file + rename), as editors and ConfigMap mounts do. */
function writeFile(dir: string, path: string, text: string): void {
  const full = join(dir, path);
  mkdirSync(dirname(full), { recursive: true });
  const temp = join(dirname(full), `.${Math.random().toString(36).slice(2)}.tmp`);
  writeFileSync(temp, text);
  renameSync(temp, full);
}

/** Opens a source whose log lines can be awaited, closed after the test. */
async function openSource(t: { after(fn: () => Promise<void>): void }, dir: string) {
  const lines: string[] = [];
  const waiters: { match: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  const source = await DirectorySource.open({
    dir,
    registry,
    log: (line) => {
      lines.push(line);
      for (const w of [...waiters]) if (w.match(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    },
  });
  t.after(() => source.close());
  const logged = (match: (line: string) => boolean) => new Promise<string>((resolve) => waiters.push({ match, resolve }));
  return { source, lines, logged };
}

/** The next batch of watch events. */
function nextBatch(source: DirectorySource): Promise<readonly WatchEvent[]> {
  return new Promise((resolve) => {
    const stop = source.watch((events) => {
      stop();
      resolve(events);
    });
  });
}

function names(objects: ConfigObject[]): string[] {
  return objects.map((o) => `${o.kind} ${o.metadata.namespace}/${o.metadata.name}`).sort();
}

function hostsOf(object: ConfigObject | undefined): unknown {
  return (object?.spec as { hosts?: string[] } | undefined)?.hosts;
}

const reviewsKey = { group: 'networking.istio.io', kind: 'VirtualService', namespace: 'default', name: 'reviews' };

test('loads every config file, recursively, and passes over the rest', async (t) => {
  const dir = configDir(t, {
    'bookinfo.yaml': `${vsYaml('reviews', 'reviews')}---\n${drYaml('reviews', 'reviews')}---\n${K8S_SERVICE}`,
    'ratings/vs.yml': vsYaml('ratings', 'ratings', 'prod'),
    'details.json': JSON.stringify({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'details' }, spec: { host: 'details' } }),
    'README.md': 'not config',
    '.hidden/vs.yaml': vsYaml('hidden', 'hidden'),
  });
  const { source, lines } = await openSource(t, dir);

  assert.deepEqual(names(await source.list()), [
    'DestinationRule default/details',
    'DestinationRule default/reviews',
    'VirtualService default/reviews',
    'VirtualService prod/ratings',
  ]);
  assert.equal(source.revision(), 4);
  assert.deepEqual(source.status(), { files: 3, objects: 4, errors: [] });
  assert.deepEqual(lines, []);
  const reviews = await source.get(reviewsKey);
  assert.deepEqual(hostsOf(reviews), ['reviews']);
  assert.equal(reviews?.metadata.generation, 1);
  assert.ok(reviews?.metadata.uid);
  assert.deepEqual(names(await source.list({ namespace: 'prod' })), ['VirtualService prod/ratings']);
});

test('a bad file found at start is reported and skipped', async (t) => {
  const dir = configDir(t, {
    'a-good.yaml': vsYaml('reviews', 'reviews'),
    'b-bad.yaml': vsYaml('ratings', 'ratings').replace('kind: VirtualService', 'kind: VirtualServce'),
  });
  const { source, lines } = await openSource(t, dir);
  assert.deepEqual(names(await source.list()), ['VirtualService default/reviews']);
  const { errors } = source.status();
  assert.equal(errors.length, 1);
  assert.equal(errors[0]!.file, join(dir, 'b-bad.yaml'));
  assert.equal(errors[0]!.errors.length, 1);
  assert.ok(errors[0]!.errors[0]!.startsWith(`error: VirtualServce ratings (${join(dir, 'b-bad.yaml')}:2): kind: unknown kind "VirtualServce" in apiVersion "networking.istio.io/v1"`), errors[0]!.errors[0]);
  assert.deepEqual(lines, errors[0]!.errors);
});

test('edits, new files and removed files take effect without a restart', WATCH_TEST, async (t) => {
  const dir = configDir(t, { 'reviews.yaml': vsYaml('reviews', 'reviews') });
  const { source } = await openSource(t, dir);
  const before = (await source.get(reviewsKey))!;

  let batch = nextBatch(source);
  writeFile(dir, 'reviews.yaml', vsYaml('reviews', 'reviews-v2'));
  assert.deepEqual((await batch).map((e) => [e.type, e.object.metadata.name, e.revision]), [['MODIFIED', 'reviews', 2]]);
  const after = (await source.get(reviewsKey))!;
  assert.deepEqual(hostsOf(after), ['reviews-v2']);
  assert.equal(after.metadata.resourceVersion, '2');
  assert.equal(after.metadata.generation, 2);
  assert.equal(after.metadata.uid, before.metadata.uid);

  batch = nextBatch(source);
  writeFile(dir, 'more/ratings.yaml', `${vsYaml('ratings', 'ratings')}---\n${drYaml('ratings', 'ratings')}`);
  assert.deepEqual((await batch).map((e) => [e.type, e.object.kind, e.revision]), [['ADDED', 'VirtualService', 3], ['ADDED', 'DestinationRule', 4]]);

  // The new subdirectory is watched too.
  batch = nextBatch(source);
  writeFile(dir, 'more/ratings.yaml', vsYaml('ratings', 'ratings-v2'));
  assert.deepEqual((await batch).map((e) => [e.type, e.object.kind, e.revision]), [['DELETED', 'DestinationRule', 5], ['MODIFIED', 'VirtualService', 6]]);

  batch = nextBatch(source);
  rmSync(join(dir, 'reviews.yaml'));
  const removed = await batch;
  assert.deepEqual(removed.map((e) => [e.type, e.object.metadata.name, e.revision]), [['DELETED', 'reviews', 7]]);
  assert.deepEqual(hostsOf(removed[0]!.object), ['reviews-v2']);
  assert.deepEqual(names(await source.list()), ['VirtualService default/ratings']);
  assert.equal(source.revision(), 7);
});

test('an invalid object is skipped and reported by file and field; the rest keeps serving', WATCH_TEST, async (t) => {
  const dir = configDir(t, { 'good.yaml': vsYaml('reviews', 'reviews') });
  const { source, logged } = await openSource(t, dir);

  const bad = `${vsYaml('ratings', 'ratings')}---\n${vsYaml('details', 'details')}  bogus: 1\n`;
  const reported = logged((line) => line.includes('bad.yaml'));
  const batch = nextBatch(source);
  writeFile(dir, 'bad.yaml', bad);
  assert.deepEqual((await batch).map((e) => [e.type, e.object.metadata.name]), [['ADDED', 'ratings']]);
  const expected = `error: VirtualService default/details (${join(dir, 'bad.yaml')}:24): spec.bogus: unknown field "bogus"`;
  assert.equal(await reported, expected);
  assert.deepEqual(source.status(), { files: 2, objects: 2, errors: [{ file: join(dir, 'bad.yaml'), errors: [expected] }] });
  assert.deepEqual(names(await source.list()), ['VirtualService default/ratings', 'VirtualService default/reviews']);

  // Fixing the file serves the object and clears the error.
  const fixed = nextBatch(source);
  writeFile(dir, 'bad.yaml', `${vsYaml('ratings', 'ratings')}---\n${vsYaml('details', 'details')}`);
  assert.deepEqual((await fixed).map((e) => [e.type, e.object.metadata.name]), [['ADDED', 'details']]);
  assert.deepEqual(source.status().errors, []);
});

test('a file that stops parsing keeps serving its last good objects', WATCH_TEST, async (t) => {
  const dir = configDir(t, { 'reviews.yaml': `${vsYaml('reviews', 'reviews')}---\n${drYaml('reviews', 'reviews')}` });
  const { source, logged } = await openSource(t, dir);
  const before = await source.list();

  const reported = logged((line) => line.includes('does not parse'));
  writeFile(dir, 'reviews.yaml', `${vsYaml('reviews', 'reviews-v2')}---\napiVersion: networking.istio.io/v1\nkind: [DestinationRule\n`);
  assert.equal(await reported, `error: ${join(dir, 'reviews.yaml')}: the file does not parse; still serving its last good 2 object(s)`);
  assert.deepEqual(await source.list(), before);
  assert.equal(source.revision(), 2);
  const [status] = source.status().errors;
  assert.equal(status?.file, join(dir, 'reviews.yaml'));
  assert.match(status!.errors[0]!, /^error: Document at line \d+ \(.*reviews\.yaml:\d+\): YAML syntax error: /);

  const batch = nextBatch(source);
  writeFile(dir, 'reviews.yaml', vsYaml('reviews', 'reviews-v2'));
  assert.deepEqual((await batch).map((e) => [e.type, e.object.kind]), [['DELETED', 'DestinationRule'], ['MODIFIED', 'VirtualService']]);
  assert.deepEqual(source.status().errors, []);
});

test('an object defined in two files is served from the first by path order', WATCH_TEST, async (t) => {
  const dir = configDir(t, { 'a.yaml': vsYaml('reviews', 'from-a'), 'b.yaml': vsYaml('reviews', 'from-b') });
  const { source, lines } = await openSource(t, dir);
  assert.deepEqual(hostsOf(await source.get(reviewsKey)), ['from-a']);
  const message = `error: VirtualService default/reviews is defined in both ${join(dir, 'a.yaml')} and ${join(dir, 'b.yaml')}; serving the one in ${join(dir, 'a.yaml')}`;
  assert.deepEqual(source.status().errors, [{ file: join(dir, 'b.yaml'), errors: [message] }]);
  assert.deepEqual(lines, [message]);

  // Once the first is gone, the second takes over.
  const batch = nextBatch(source);
  rmSync(join(dir, 'a.yaml'));
  assert.deepEqual((await batch).map((e) => e.type), ['MODIFIED']);
  assert.deepEqual(hostsOf(await source.get(reviewsKey)), ['from-b']);
  assert.deepEqual(source.status().errors, []);
});

test('writes are refused: the directory is read-only', async (t) => {
  const dir = configDir(t, { 'reviews.yaml': vsYaml('reviews', 'reviews') });
  const { source } = await openSource(t, dir);
  const object = (await source.get(reviewsKey))!;
  await assert.rejects(source.apply(object), (err: unknown) => {
    assert.ok(err instanceof GalleyError);
    assert.equal(err.code, GalleyErrorCode.READ_ONLY);
    assert.equal(err.message, `cannot apply VirtualService default/reviews: config is read from the directory ${dir}, which is read-only here; edit the files in it instead`);
    return true;
  });
  await assert.rejects(source.delete(reviewsKey), (err: unknown) => {
    assert.ok(err instanceof GalleyError);
    assert.equal(err.code, 'MESH_ERR_GALLEY_READ_ONLY');
    assert.ok(err.message.startsWith(`cannot delete VirtualService default/reviews: config is read from the directory ${dir}`));
    return true;
  });
  assert.equal(source.revision(), 1);
});

test('a missing directory fails to open with a storage error', async () => {
  const dir = join(tmpdir(), `mesh-dirsource-missing-${process.pid}`);
  await assert.rejects(DirectorySource.open({ dir, registry }), (err: unknown) => {
    assert.ok(err instanceof GalleyError);
    assert.equal(err.code, GalleyErrorCode.STORAGE);
    assert.ok(err.message.startsWith(`config directory ${dir}: ENOENT`), err.message);
    return true;
  });
});
