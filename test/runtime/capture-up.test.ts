// `mesh up` with capture: Bookinfo's productpage, details, reviews v2 and
// ratings (unchanged: they call each other by plain name) plus a tester that
// fetches http://productpage:9080/productpage, every replica in its own
// network namespace on a private bridge (random free 10.x /24). The page is
// complete (details, reviews with ratings stars: three hops through the
// sidecars). `mesh down` leaves no namespace, bridge or process. No host
// port is used but the control plane's. Everything this test created is
// removed in `after`, also on failure. Skips when capture is unavailable.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { deleteBridge, deleteWorkloadNamespace, hostVethName, inSubnet, listNamespaces, runCommand } from '../../src/agent/capture/index.ts';
import { captureAvailable } from '../../src/runtime/capture/mode.ts';
import { REPO_ROOT, runMesh, tempDir } from '../helpers/processes.ts';
import { alive, startMesh } from './helpers.ts';
import type { MeshProcess } from './helpers.ts';

const support = captureAvailable();
const skip = support.ok ? false : `traffic capture unavailable: ${support.reason}`;
const CLIENT = fileURLToPath(new URL('./fixtures/capture-client.mjs', import.meta.url));
const tag = randomBytes(3).toString('hex');
const BRIDGE = `mesh-br${tag}`;
const runDir = tempDir('mesh-capture-up-');
let up: MeshProcess | undefined;

/** The namespaces whose veth is on this test's bridge. */
async function ourNamespaces(): Promise<string[]> {
  const ports = (await runCommand('ip', ['-o', 'link', 'show', 'master', BRIDGE])).stdout;
  return (await listNamespaces()).filter((ns) => ports.includes(`: ${hostVethName(ns)}@`));
}

after(async () => {
  if (skip) return;
  await runMesh(['down', '--run-dir', runDir]).catch(() => undefined);
  await up?.stop('SIGKILL');
  for (const ns of await ourNamespaces()) await deleteWorkloadNamespace(ns);
  await deleteBridge(BRIDGE);
});

async function freeSubnet(): Promise<string> {
  const routes = (await runCommand('ip', ['-4', 'route', 'show', 'table', 'all'])).stdout;
  const prefixes = [...routes.matchAll(/^(?:\S+\s+)?(\d+\.\d+\.\d+\.\d+)(?:\/(\d+))?/gm)].map((m) => `${m[1]}/${m[2] ?? '32'}`);
  for (let i = 0; i < 50; i++) {
    const s = `10.${200 + (randomBytes(1)[0]! % 50)}.${randomBytes(1)[0]}.0/24`;
    const clash = prefixes.some((p) => inSubnet(p.split('/')[0]!, s) || (Number(p.split('/')[1]) <= 24 && inSubnet(s.split('/')[0]!, p)));
    if (!clash) return s;
  }
  throw new Error('no free 10.x subnet');
}

function descendants(pid: number): number[] {
  const rows = execFileSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' }).trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number) as [number, number]);
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const [child, parent] of rows) if (parent === p) {
      out.push(child);
      walk(child);
    }
  };
  walk(pid);
  return out;
}

test('Bookinfo under mesh up with capture: productpage by name, complete, through the sidecars; mesh down leaves nothing', { skip, timeout: 85_000 }, async () => {
  const subnet = await freeSubnet();
  const node = (script: string): string[] => ['node', '--disable-warning=ExperimentalWarning', script];
  const file = join(runDir, 'mesh.yaml');
  writeFileSync(file, JSON.stringify({
    namespace: 'default',
    workingDir: REPO_ROOT,
    capture: { mode: 'on', bridge: tag, subnet },
    services: [
      { name: 'productpage', port: 9080, serviceAccount: 'bookinfo-productpage', command: node('samples/bookinfo/productpage.ts') },
      { name: 'details', port: 9080, serviceAccount: 'bookinfo-details', command: node('samples/bookinfo/details.ts') },
      { name: 'reviews', port: 9080, serviceAccount: 'bookinfo-reviews', command: node('samples/bookinfo/reviews.ts'), versions: [{ version: 'v2' }] },
      { name: 'ratings', port: 9080, serviceAccount: 'bookinfo-ratings', command: node('samples/bookinfo/ratings.ts') },
      { name: 'tester', port: 9080, command: ['node', CLIENT], env: { TARGET: 'http://productpage:9080/productpage', EXPECT: 'Book Details,Book Reviews,glyphicon-star' } },
    ],
  }));
  up = startMesh(['up', '-f', file, '--run-dir', runDir]);
  await up.waitFor((_e, line) => line.includes('capture on (asked for)'), 10_000);
  await up.waitFor((_e, line) => line.includes('services ready in'), 60_000);
  const namespaces = await ourNamespaces();
  assert.equal(namespaces.length, 5, `one namespace per replica: ${namespaces.join(', ')}`);
  const complete = await up.waitFor((_e, line) => line.includes('"client":"call"') && line.includes('"status":200') && line.includes('glyphicon-star') && line.includes('Book Details'), 30_000).then(() => true);
  assert.ok(complete, 'the tester got a complete product page: details, reviews and ratings through the sidecars');
  const pids = [up.child.pid!, ...descendants(up.child.pid!)];
  assert.ok(pids.length >= 11, `mesh up, the control plane, 5 runtimes and their sidecars and apps: ${pids.length}`);

  const down = await runMesh(['down', '--run-dir', runDir]);
  assert.equal(down.code, 0, down.stderr);
  await up.exited;
  const left = pids.filter(alive);
  assert.deepEqual(left, [], `no process left: ${left.length ? (await runCommand('ps', ['-o', 'pid,ppid,stat,args', '-p', left.join(',')])).stdout : ''}`);
  assert.deepEqual((await listNamespaces()).filter((n) => namespaces.includes(n)), [], 'no namespace left');
  assert.notEqual((await runCommand('ip', ['link', 'show', 'dev', BRIDGE])).code, 0, 'the bridge is gone');
});
