// `mesh run --capture`: two unchanged apps, each in its own network namespace
// with Istio's iptables rules, its sidecar as uid 1337 inside. The client
// calls http://server:8080/ by plain name (DNS proxy -> VIP -> 15001 ->
// mTLS -> 15006 -> app); the server sees the client's SPIFFE id in
// x-forwarded-client-cert. After both stop, no namespace, host rule or
// process of theirs is left. A batch job under capture: it starts only after
// its sidecar's certificate and config, calls a service by name, and when it
// exits `mesh run` exits with its code, its sidecar and namespace gone. A
// private bridge on a random free 10.x /24;
// everything is removed in `after`, also on failure. Skips (with the reason)
// when not root or when ip/iptables/setpriv are missing.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { inSubnet, listNamespaces, runCommand, teardownByPrefix } from '../../src/agent/capture/index.ts';
import { captureAvailable } from '../../src/runtime/capture/mode.ts';
import { freeSubnet } from '../helpers/free-subnet.ts';
import { NODE, startControlPlane, tempDir } from '../helpers/processes.ts';
import type { RunningControlPlane } from '../helpers/processes.ts';
import { alive, startMesh } from './helpers.ts';
import type { MeshProcess } from './helpers.ts';

const support = captureAvailable();
const skip = support.ok ? false : `traffic capture unavailable: ${support.reason}`;
const SERVER = fileURLToPath(new URL('./fixtures/capture-server.mjs', import.meta.url));
const CLIENT = fileURLToPath(new URL('./fixtures/capture-client.mjs', import.meta.url));
const JOB = fileURLToPath(new URL('./fixtures/capture-job.mjs', import.meta.url));
const dir = tempDir('mesh-capture-run-');
const tag = randomBytes(3).toString('hex');
const NS_PREFIX = `mesh-tcap${tag}`;
const BRIDGE = `mesh-br${tag}`;
let cp: RunningControlPlane | undefined;
let subnet = '';
const started: MeshProcess[] = [];

before(async () => {
  if (skip) return;
  subnet = await freeSubnet();
  cp = await startControlPlane();
});

after(async () => {
  for (const p of started) await p.stop('SIGKILL').catch(() => undefined);
  await cp?.stop();
  if (!skip) await teardownByPrefix({ namespacePrefix: NS_PREFIX, bridgePrefix: BRIDGE });
  rmSync(dir, { recursive: true, force: true });
});

function run(name: string, args: string[]): MeshProcess {
  const p = startMesh(['run', '--capture', '--capture-bridge', tag, '--capture-subnet', subnet, '--control-plane', cp!.server, '--name', `tcap${tag}-${name}`, ...args]);
  started.push(p);
  return p;
}

/** The app's JSON lines come prefixed with `[<pod>] `. */
function appLine(line: string): Record<string, unknown> {
  const i = line.indexOf('] {');
  if (!line.startsWith('[') || i < 0) return {};
  try {
    return JSON.parse(line.slice(i + 2)) as Record<string, unknown>;
  } catch {
    return {};
  }
}

async function namespacePids(ns: string): Promise<number[]> {
  const r = await runCommand('ip', ['netns', 'pids', ns]);
  return r.stdout.split(/\s+/).filter(Boolean).map(Number);
}

test('a client calls http://server:8080/ by name through the captured sidecars, mTLS between them; nothing is left after', { skip, timeout: 80_000 }, async () => {
  // A short certificate lifetime reaches the sidecar inside the namespace: it renews while the test runs.
  const server = run('server', ['--service', 'server', '--port', '8080', '--cert-ttl', '4s', '--', NODE, SERVER]);
  const ns = await server.waitFor((e) => e.msg === 'workload namespace ready (iptables: inbound -> 15006, outbound -> 15001, DNS -> 15053)', 30_000);
  assert.equal(ns.netns, `${NS_PREFIX}-server`);
  assert.ok(inSubnet(String(ns.address), subnet), `the workload address ${String(ns.address)} is on the bridge subnet ${subnet}`);
  const sready = await server.waitFor((e) => e.msg === 'sidecar ready: config and certificate in place', 30_000);
  assert.equal(sready.mode, 'capture');
  assert.equal(sready.ip, ns.address, 'the workload address is the namespace address');
  await server.waitFor((e) => e.msg === 'workload registered', 30_000);

  const client = run('client', ['--service', 'client', '--sa', 'client-sa', '--wait-for-service', 'server.default.svc.cluster.local', '--env', 'TARGET=http://server:8080/', '--', NODE, CLIENT]);
  await client.waitFor((_e, l) => appLine(l).client === 'started', 30_000);
  const startedLine = appLine(client.lines.find((l) => appLine(l).client === 'started')!);
  assert.deepEqual(startedLine.serviceHostVars, [], 'no <SVC>_SERVICE_HOST variables: the app knows nothing of the mesh');
  assert.notEqual(startedLine.uid, 1337, 'the app does not run as the proxy user');
  await client.waitFor((_e, l) => appLine(l).status === 200, 30_000);
  const call = appLine(client.lines.find((l) => appLine(l).status === 200)!);
  const body = JSON.parse(String(call.body)) as { server: string; host: string; xfcc: string | null; remote: string };
  assert.equal(body.server, `tcap${tag}-server`);
  assert.equal(body.host, 'server:8080');
  assert.ok(body.xfcc, 'the server sees x-forwarded-client-cert: mTLS between the sidecars');
  assert.match(body.xfcc, /URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/client-sa/);
  const issued = await server.waitFor((e) => e.msg === 'workload certificate issued' && Number(e.version) >= 2, 30_000);
  const first = server.lines.map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return {}; } }).find((e) => e.msg === 'workload certificate issued');
  assert.ok(first, 'the first certificate was logged');
  // Renewed at about 80% of 4 s: consecutive certificates expire a few seconds apart (with 24 h there would be no second one).
  const apartMs = Date.parse(String(issued.notAfter)) - Date.parse(String(first.notAfter));
  assert.ok(apartMs > 0 && apartMs < 10_000, `--cert-ttl 4s: consecutive certificates expire ${apartMs} ms apart`);
  // The sidecars run as 1337 inside the namespaces.
  const ps = (await runCommand('ps', ['-o', 'uid=,args=', '-p', (await namespacePids(`${NS_PREFIX}-client`)).join(',')])).stdout;
  assert.match(ps, /^\s*1337 .*sidecar-main\.ts/m, ps);

  const pids = [...(await namespacePids(`${NS_PREFIX}-client`)), ...(await namespacePids(`${NS_PREFIX}-server`)), client.child.pid!, server.child.pid!];
  assert.equal(await client.stop('SIGTERM'), 0, client.lines.slice(-20).join('\n'));
  assert.equal(await server.stop('SIGTERM'), 143, server.lines.slice(-20).join('\n'));
  assert.deepEqual((await listNamespaces()).filter((n) => n.startsWith(NS_PREFIX)), [], 'no namespace left');
  assert.deepEqual(pids.filter(alive), [], 'no process left');
  const hostRules = (await runCommand('iptables-save', [])).stdout.split('\n').filter((l) => l.includes(BRIDGE));
  assert.deepEqual(hostRules, [], 'no host rule left');
});

test('a batch job under capture starts after its certificate and config, calls a service by name, and takes its sidecar and namespace down with its exit code', { skip, timeout: 80_000 }, async () => {
  const store = run('store', ['--service', 'store', '--port', '8080', '--', NODE, SERVER]);
  await store.waitFor((e) => e.msg === 'workload registered', 40_000);
  // The job holds before exiting until the test has listed its processes (HOLD_FILE).
  const hold = join(dir, 'job-may-exit');
  const job = run('job', ['--service', 'job', '--sa', 'batch-sa', '--wait-for-service', 'store.default.svc.cluster.local', '--env', 'TARGET=http://store:8080/', '--env', 'CALLS=3', '--env', 'EXIT_CODE=3', '--env', `HOLD_FILE=${hold}`, '--', NODE, JOB]);
  await job.waitFor((_e, l) => appLine(l).job === 'done', 40_000);
  const jobNs = `${NS_PREFIX}-job`;

  // Order: certificate, then the sidecar's complete config, then the job.
  const index = (match: (l: string) => boolean): number => job.lines.findIndex(match);
  const cert = index((l) => l.includes('"msg":"workload certificate issued"'));
  const ready = index((l) => l.includes('"msg":"sidecar ready: config and certificate in place"'));
  const started = index((l) => appLine(l).job === 'started');
  assert.ok(cert >= 0 && ready > cert, `the certificate comes before the sidecar is ready:\n${job.lines.join('\n')}`);
  assert.ok(started > ready, `the job starts after its sidecar is ready:\n${job.lines.join('\n')}`);
  assert.deepEqual(appLine(job.lines[started]!).serviceHostVars, [], 'no <SVC>_SERVICE_HOST variables: the job calls by name');
  // Every call, the first one included, went through the sidecars at once (the job never retries), with mTLS.
  const calls = job.lines.map(appLine).filter((l) => l.job === 'call');
  assert.deepEqual(calls.map((c) => c.status), [200, 200, 200], job.lines.slice(-20).join('\n'));
  for (const c of calls) {
    const body = JSON.parse(String(c.body)) as { server: string; host: string; xfcc: string | null };
    assert.equal(body.server, `tcap${tag}-store`);
    assert.equal(body.host, 'store:8080');
    assert.match(String(body.xfcc), /URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/batch-sa/);
  }

  // While it holds: its sidecar runs as 1337 in its namespace.
  const pids = [...(await namespacePids(jobNs)), job.child.pid!];
  const ps = (await runCommand('ps', ['-o', 'uid=,args=', '-p', pids.join(',')])).stdout;
  assert.match(ps, /^\s*1337 .*sidecar-main\.ts/m, ps);
  assert.match(ps, /capture-job\.mjs/, ps);
  writeFileSync(hold, '');
  assert.equal(await job.exited, 3, `mesh run exits with the job's code:\n${job.lines.slice(-20).join('\n')}`);
  assert.ok(job.lines.some((l) => l.includes('"msg":"app exited; draining the sidecar"') && l.includes('"code":3')), job.lines.slice(-20).join('\n'));
  assert.deepEqual(pids.filter(alive), [], 'no process of the job left: its sidecar exited with it');
  assert.ok(!(await listNamespaces()).includes(jobNs), 'the job\'s namespace is gone');
  assert.equal(existsSync(`/etc/netns/${jobNs}`), false, 'its resolv.conf is gone');

  const storePids = [...(await namespacePids(`${NS_PREFIX}-store`)), store.child.pid!];
  assert.equal(await store.stop('SIGTERM'), 143, store.lines.slice(-20).join('\n'));
  assert.deepEqual(storePids.filter(alive), [], 'no process of the service left');
  assert.deepEqual((await listNamespaces()).filter((n) => n.startsWith(NS_PREFIX)), [], 'no namespace left');
  const hostRules = (await runCommand('iptables-save', [])).stdout.split('\n').filter((l) => l.includes(BRIDGE));
  assert.deepEqual(hostRules, [], 'no host rule left');
});
