// Regression: two `mesh up` started at the same moment both picked the
// config API port 15080 (each checked that it was free, then its control
// plane bound it seconds later; the second control plane died with
// EADDRINUSE, or worse, the second mesh's sidecars and `mesh apply` talked to
// the first mesh's control plane). mesh up now binds the port itself and
// hands the socket to its control plane, so the bind is the check.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort, listenPreferred } from '../../src/runtime/sidecar/local-addresses.ts';
import { REPO_ROOT, runMesh, tempDir } from '../helpers/processes.ts';
import { startMesh } from './helpers.ts';
import type { MeshProcess } from './helpers.ts';

const ECHO = fileURLToPath(new URL('./fixtures/echo-app.mjs', import.meta.url));
const runDirs: string[] = [];
const meshes: MeshProcess[] = [];

after(async () => {
  for (const dir of runDirs) await runMesh(['down', '--run-dir', dir]);
  for (const m of meshes) await m.stop('SIGKILL');
});

test('listenPreferred: of two binds of the same preferred port at once, one gets it and the other a free port', async () => {
  const preferred = await freePort();
  const [a, b] = await Promise.all([listenPreferred(preferred), listenPreferred(preferred)]);
  try {
    const ports = [(a.address() as AddressInfo).port, (b.address() as AddressInfo).port];
    assert.ok(ports.includes(preferred), `one of them has ${preferred}: ${ports.join(', ')}`);
    assert.notEqual(ports[0], ports[1]);
  } finally {
    a.close();
    b.close();
  }
});

test('two mesh up started at once get two control planes on two API ports, each serving its own mesh', { timeout: 60_000 }, async () => {
  const names = ['race-a', 'race-b'];
  for (const name of names) {
    const dir = tempDir(`mesh-up-${name}-`);
    runDirs.push(dir);
    writeFileSync(join(dir, 'mesh.yaml'), JSON.stringify({
      namespace: 'default',
      workingDir: REPO_ROOT,
      services: [{ name, port: 9080, command: ['node', ECHO] }],
    }));
  }
  meshes.push(...runDirs.map((dir) => startMesh(['up', '-f', join(dir, 'mesh.yaml'), '--run-dir', dir, '--quiet'])));
  const servers = await Promise.all(meshes.map(async (m) => {
    await m.waitFor((_e, line) => line.startsWith('mesh up: ') && line.includes('ready in'), 50_000);
    const line = m.lines.find((l) => l.startsWith('mesh up: ') && l.includes('ready in'))!;
    return /control plane (http:\/\/127\.0\.0\.1:\d+)/.exec(line)![1]!;
  }));
  assert.notEqual(servers[0], servers[1], `two API ports: ${servers.join(', ')}`);
  // Each control plane holds its own mesh's ServiceEntry and not the other's.
  for (const [i, server] of servers.entries()) {
    const own = await fetch(`${server}/apis/networking.istio.io/v1/namespaces/default/serviceentries/${names[i]}`);
    assert.equal(own.status, 200, `${server} has ${names[i]}`);
    await own.body?.cancel();
    const other = await fetch(`${server}/apis/networking.istio.io/v1/namespaces/default/serviceentries/${names[1 - i]}`);
    assert.equal(other.status, 404, `${server} does not have ${names[1 - i]}`);
    await other.body?.cancel();
  }
});
