// `mesh run`: one workload with its sidecar, as real processes against a real
// control plane: the app starts only after the certificate and the first
// complete config, a batch job takes its sidecar down with its exit code,
// and two services call each other over mTLS through the addresses the
// runtime hands them.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NODE, startControlPlane } from '../helpers/processes.ts';
import type { RunningControlPlane } from '../helpers/processes.ts';
import { alive, eventually, startMesh } from './helpers.ts';
import type { MeshProcess } from './helpers.ts';

const APP = fileURLToPath(new URL('./fixtures/echo-app.mjs', import.meta.url));
let cp: RunningControlPlane;
const started: MeshProcess[] = [];

before(async () => {
  cp = await startControlPlane();
});

after(async () => {
  for (const p of started) await p.stop();
  await cp?.stop();
});

function run(args: string[], env: Record<string, string> = {}): MeshProcess {
  const p = startMesh(['run', '--control-plane', cp.server, ...args], env);
  started.push(p);
  return p;
}

test('a batch job starts after its certificate and config, and its sidecar exits with its exit code', { timeout: 30_000 }, async () => {
  const job = run(['--service', 'job', '--', NODE, APP], { EXIT_AFTER_MS: '300', EXIT_CODE: '3' });
  const code = await job.exited;
  assert.equal(code, 3, job.lines.join('\n'));
  const index = (msg: string): number => job.lines.findIndex((l) => l.includes(`"msg":"${msg}"`));
  const cert = index('workload certificate issued');
  const ready = index('sidecar ready: config and certificate in place');
  const app = job.lines.findIndex((l) => l.includes('batch job started'));
  assert.ok(cert >= 0 && ready > cert, 'the certificate comes before the sidecar is ready');
  assert.ok(app > ready, `the app starts after the sidecar is ready:\n${job.lines.join('\n')}`);
  assert.ok(job.lines.some((l) => l.includes('app exited; draining the sidecar')));
});

test('two services call each other through their sidecars with mTLS, by the addresses in their environment', { timeout: 40_000 }, async () => {
  const server = run(['--service', 'server', '--port', '9080', '--', NODE, APP]);
  await server.waitFor((e) => e.msg === 'workload registered');
  const client = run(['--service', 'client', '--port', '9080', '--sa', 'client-sa', '--', NODE, APP]);
  const ready = await client.waitFor((e) => e.msg === 'sidecar ready: config and certificate in place');
  await client.waitFor((e) => e.msg === 'workload registered');
  const appPort = Number(ready.appPort);
  // Through the client's sidecar (its outbound listener for server:9080) to the server's sidecar and app.
  const body = await eventually(async () => {
    const res = await fetch(`http://127.0.0.1:${appPort}/call?svc=server`);
    if (res.status !== 200) throw new Error(`${res.status} ${await res.text()}`);
    return res.status === 200 ? ((await res.json()) as { name: string; xfcc: string | null }) : undefined;
  }, 'a call from client to server through the sidecars');
  assert.match(body.name, /^server-v1-/);
  assert.ok(body.xfcc, 'the server side sees x-forwarded-client-cert (mTLS between the sidecars)');
  assert.match(body.xfcc, /URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/client-sa/);
  // And back: the server's app reaches the client through its own sidecar.
  const serverReady = await server.waitFor((e) => e.msg === 'sidecar ready: config and certificate in place');
  const back = await eventually(async () => {
    const res = await fetch(`http://127.0.0.1:${Number(serverReady.appPort)}/call?svc=client`);
    return res.status === 200 ? ((await res.json()) as { name: string; xfcc: string | null }) : undefined;
  }, 'a call from server to client', 1_000).catch(() => undefined);
  // The server started before the client existed: like Kubernetes env variables, it has no address for it.
  assert.equal(back, undefined);

  const clientPid = client.child.pid!;
  assert.equal(await client.stop('SIGTERM'), 0);
  assert.equal(alive(clientPid), false);
});
