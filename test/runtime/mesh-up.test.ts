// `mesh up` of Bookinfo (samples/bookinfo/mesh.yaml): the control plane, a
// sidecar per replica and the ingress gateway as real processes. Istio's
// sample rules apply unchanged; the data plane keeps serving on its last
// config when the control plane dies; `mesh down` leaves no process behind.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runMesh, SAMPLES, tempDir } from '../helpers/processes.ts';
import { alive, descendants, eventually, startMesh } from './helpers.ts';
import type { MeshProcess } from './helpers.ts';

const runDir = tempDir('mesh-up-');
let up: MeshProcess | undefined;

after(async () => {
  await runMesh(['down', '--run-dir', runDir]);
  await up?.stop('SIGKILL');
});

async function productpage(): Promise<string | undefined> {
  const res = await fetch('http://127.0.0.1:8080/productpage', { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  return res.status === 200 && text.includes('Simple Bookstore App') ? text : undefined;
}

test('Bookinfo with sidecars serves /productpage through the ingress gateway, follows Istio\'s rules, survives the control plane, and mesh down stops it all', { timeout: 58_000 }, async () => {
  const startedAt = Date.now();
  up = startMesh(['up', '-f', 'samples/bookinfo/mesh.yaml', '--run-dir', runDir, '--quiet']);
  const ready = await up.waitFor((_e, line) => line.startsWith('mesh up: ') && line.includes('ready in'), 40_000);
  void ready;
  const readyLine = up.lines.find((l) => l.startsWith('mesh up: ') && l.includes('ready in'))!;
  const server = /control plane (http:\/\/127\.0\.0\.1:\d+)/.exec(readyLine)![1]!;

  const gw = await runMesh(['apply', '--server', server, '-f', join(SAMPLES, 'bookinfo/networking/bookinfo-gateway.yaml')]);
  assert.equal(gw.code, 0, gw.stderr);
  const page = await eventually(productpage, 'productpage through the gateway');
  const servingMs = Date.now() - startedAt;
  assert.match(page, /Reviews served by:/);
  process.stdout.write(`# mesh up -> /productpage through the gateway: ${servingMs} ms\n`);

  const rules = await runMesh(['apply', '--server', server, '-f', join(SAMPLES, 'bookinfo/networking/destination-rule-all.yaml'), '-f', join(SAMPLES, 'bookinfo/networking/virtual-service-all-v1.yaml')]);
  assert.equal(rules.code, 0, rules.stderr);
  // Once the rules arrive, reviews v1 (no stars) every time.
  await eventually(async () => {
    for (let i = 0; i < 6; i++) {
      const p = await productpage();
      if (!p || p.includes('glyphicon-star') || !/reviews-v1-/.test(p)) return undefined;
    }
    return true;
  }, 'reviews v1 only');
  for (let i = 0; i < 10; i++) {
    const p = await productpage();
    assert.ok(p, 'productpage serves');
    assert.doesNotMatch(p, /glyphicon-star/);
    assert.match(p, /reviews-v1-/);
  }

  // The control plane dies: the proxies keep their last config.
  const pidFile = JSON.parse(readFileSync(join(runDir, 'mesh-up.pid'), 'utf8')) as { pid: number; children: number[] };
  const everything = [up.child.pid!, ...descendants(up.child.pid!)];
  const cpPid = pidFile.children[pidFile.children.length - 1]!;
  assert.match(execFileSync('ps', ['-o', 'args=', '-p', String(cpPid)], { encoding: 'utf8' }), /control-plane/);
  process.kill(cpPid, 'SIGKILL');
  await eventually(async () => (alive(cpPid) ? undefined : true), 'the control plane gone');
  for (let i = 0; i < 5; i++) {
    const p = await productpage();
    assert.ok(p, 'productpage still serves without the control plane');
    assert.doesNotMatch(p, /glyphicon-star/);
  }

  const down = await runMesh(['down', '--run-dir', runDir]);
  assert.equal(down.code, 0, down.stderr);
  await eventually(async () => (everything.some(alive) ? undefined : true), 'every process of mesh up gone', 5000);
  assert.deepEqual(everything.filter(alive), []);
});
