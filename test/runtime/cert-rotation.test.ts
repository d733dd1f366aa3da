// Certificate rotation under load: two `mesh run` workloads whose sidecars
// ask Citadel for 6 s certificates (`--cert-ttl 6s`, renewed at 80 %, so
// about every 5 s) while the test drives traffic from the client app through
// both sidecars (mTLS between them) for ~20 s, mixing keep-alive and new
// downstream connections and bursts that open new upstream connections.
// Every request must succeed, both sides must rotate at least 3 times, the
// server must see new client certificates (XFCC Hash=) on new connections,
// and the identities on both sides must stay the same SPIFFE IDs.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NODE, startControlPlane } from '../helpers/processes.ts';
import type { RunningControlPlane } from '../helpers/processes.ts';
import { eventually, startMesh } from './helpers.ts';
import type { MeshProcess } from './helpers.ts';

const APP = fileURLToPath(new URL('./fixtures/echo-app.mjs', import.meta.url));
const TTL_SECONDS = 6;
const LOAD_MS = 20_000;
const CLIENT_ID = 'spiffe://cluster.local/ns/default/sa/rotcli-sa';
const SERVER_ID = 'spiffe://cluster.local/ns/default/sa/rotsrv';

let cp: RunningControlPlane;
const started: MeshProcess[] = [];

before(async () => {
  cp = await startControlPlane();
});

after(async () => {
  for (const p of started) await p.stop();
  await cp?.stop();
});

function run(args: string[]): MeshProcess {
  const p = startMesh(['run', '--control-plane', cp.server, '--cert-ttl', `${TTL_SECONDS}s`, ...args]);
  started.push(p);
  return p;
}

interface Issued {
  readonly version: number;
  readonly spiffeId: string;
  readonly notAfter: string;
  readonly rotateAt: string;
}

/** The agent's "workload certificate issued" log entries. */
function issued(p: MeshProcess): Issued[] {
  const out: Issued[] = [];
  for (const line of p.lines) {
    if (!line.includes('"msg":"workload certificate issued"')) continue;
    const e = JSON.parse(line) as Issued;
    out.push(e);
  }
  return out;
}

interface CertView {
  readonly serial: string;
  readonly uris: string[];
  readonly notAfter: number;
}

/** The `default` certificate the proxy serves now, from its admin /certs. */
async function servedCert(admin: string): Promise<CertView> {
  const res = await fetch(`http://${admin}/certs`);
  const body = (await res.json()) as { certificates: Array<{ cert_chain: Array<{ serial_number: string; subject_alt_names: Array<{ uri?: string }>; expiration_time: string }> }> };
  const leaf = body.certificates.flatMap((c) => c.cert_chain)[0];
  assert.ok(leaf, `no workload certificate in /certs: ${JSON.stringify(body)}`);
  return { serial: leaf.serial_number, uris: leaf.subject_alt_names.flatMap((s) => (s.uri ? [s.uri] : [])), notAfter: Date.parse(leaf.expiration_time) };
}

/** GET through the client app (its /call goes client sidecar -> mTLS -> server sidecar -> server app). */
function call(port: number, agent: http.Agent | false): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/call?svc=rotsrv', agent, timeout: 5_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('request timed out after 5 s')));
    req.on('error', reject);
  });
}


test('workload certificates with a 6 s TTL rotate repeatedly under load with zero failed requests', { timeout: 60_000 }, async (t) => {
  const server = run(['--service', 'rotsrv', '--port', '9080', '--', NODE, APP]);
  const serverReady = await server.waitFor((e) => e.msg === 'sidecar ready: config and certificate in place');
  await server.waitFor((e) => e.msg === 'workload registered');
  const client = run(['--service', 'rotcli', '--port', '9080', '--sa', 'rotcli-sa', '--', NODE, APP]);
  const clientReady = await client.waitFor((e) => e.msg === 'sidecar ready: config and certificate in place');
  await client.waitFor((e) => e.msg === 'workload registered');
  const appPort = Number(clientReady.appPort);

  // The requested TTL reached Citadel: the first certificate expires within the TTL (plus slack), not in 24 h.
  for (const p of [server, client]) {
    const first = issued(p)[0]!;
    assert.ok(Date.parse(first.notAfter) - Date.now() <= TTL_SECONDS * 1000 + 2_000, `a ${TTL_SECONDS} s certificate: ${JSON.stringify(first)}`);
  }

  await eventually(async () => ((await call(appPort, false)).status === 200 ? true : undefined), 'the first call from client to server');

  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const failures: string[] = [];
  const hashes = new Set<string>();
  const servedSerials = { server: new Set<string>(), client: new Set<string>() };
  let ok = 0;
  let requests = 0;
  const once = async (agent: http.Agent | false): Promise<void> => {
    requests++;
    try {
      const r = await call(appPort, agent);
      if (r.status !== 200) {
        failures.push(`${new Date().toISOString()} ${r.status} ${r.body.slice(0, 200)}`);
        return;
      }
      const body = JSON.parse(r.body) as { name: string; xfcc: string | null };
      if (!/^rotsrv-v1-/.test(body.name)) failures.push(`answered by ${body.name}`);
      const xfcc = body.xfcc ?? '';
      // The server's sidecar saw the client's identity over mTLS, and its own identity is the server's.
      if (!xfcc.includes(`URI=${CLIENT_ID}`) || !xfcc.includes(`By=${SERVER_ID}`)) failures.push(`xfcc ${xfcc}`);
      const hash = /Hash=([0-9a-f]+)/.exec(xfcc)?.[1];
      if (hash) hashes.add(hash);
      ok++;
    } catch (err) {
      failures.push(`${new Date().toISOString()} ${(err as Error).message}`);
    }
  };

  const admins = { server: String(serverReady.admin), client: String(clientReady.admin) };
  const deadline = Date.now() + LOAD_MS;
  const workers: Promise<void>[] = [];
  // Two keep-alive loops, one new-connection loop, and every 700 ms a burst one request larger than the last:
  // the client sidecar's pool keeps its idle mTLS connections, so each burst makes it open one more, with the
  // certificates of the moment on both ends.
  for (let w = 0; w < 2; w++) workers.push((async () => { while (Date.now() < deadline) await once(keepAlive); })());
  workers.push((async () => { while (Date.now() < deadline) await once(false); })());
  workers.push((async () => {
    for (let size = 4; Date.now() < deadline; size++) {
      await Promise.all(Array.from({ length: size }, (_, i) => once(i % 2 === 0 ? false : keepAlive)));
      await new Promise((r) => setTimeout(r, 700));
    }
  })());
  // Watch the certificates the proxies serve (admin /certs).
  workers.push((async () => {
    while (Date.now() < deadline) {
      for (const side of ['server', 'client'] as const) {
        const c = await servedCert(admins[side]).catch(() => undefined);
        if (!c) continue;
        servedSerials[side].add(c.serial);
        const want = side === 'server' ? SERVER_ID : CLIENT_ID;
        if (c.uris.length !== 1 || c.uris[0] !== want) failures.push(`${side} proxy serves ${c.uris.join(',')}`);
        if (c.notAfter < Date.now()) failures.push(`${side} proxy serves an expired certificate (serial ${c.serial})`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  })());
  await Promise.all(workers);
  keepAlive.destroy();

  const serverIssued = issued(server);
  const clientIssued = issued(client);
  const stats = await (await fetch(`http://${admins.client}/stats`)).text();
  const handshakes = Number(/outbound\|9080\|\|rotsrv\.default\.svc\.cluster\.local\.ssl\.handshake: (\d+)/.exec(stats)?.[1] ?? 0);
  const summary = `requests ${requests}, ok ${ok}, client mTLS handshakes ${handshakes}, client cert hashes seen by the server ${hashes.size}, served serials server ${servedSerials.server.size} client ${servedSerials.client.size}, issued server ${serverIssued.length} client ${clientIssued.length}`;
  t.diagnostic(summary);
  assert.deepEqual(failures.slice(0, 20), [], `${failures.length} failed: ${summary}`);
  assert.ok(ok > 200, summary);
  // At least 3 rotations on each side (4 certificates), with increasing versions and the same identity.
  for (const [side, list, id] of [['server', serverIssued, SERVER_ID], ['client', clientIssued, CLIENT_ID]] as const) {
    assert.ok(list.length >= 4, `${side}: ${list.length} certificates issued; ${summary}`);
    assert.deepEqual(list.map((e) => e.version), list.map((_, i) => i + 1), `${side} versions`);
    assert.ok(list.every((e) => e.spiffeId === id), `${side} identity`);
    // Rotation is not a storm: each certificate is replaced at ~80 % of its life, not at once.
    assert.ok(list.length <= Math.ceil((LOAD_MS + 15_000) / (TTL_SECONDS * 1000 * 0.5)), `${side}: ${list.length} certificates is a rotation storm; ${summary}`);
    assert.ok(servedSerials[side].size >= 4, `${side} proxy served ${servedSerials[side].size} distinct certificates; ${summary}`);
  }
  // The client sidecar opened new mTLS connections along the way, and they carried the rotated client certificates.
  assert.ok(handshakes >= 6, summary);
  assert.ok(hashes.size >= 3, summary);
  // No renewal failed along the way.
  for (const p of [server, client]) assert.equal(p.lines.filter((l) => l.includes('certificate renewal failed')).length, 0, p.lines.filter((l) => l.includes('renewal failed')).join('\n'));
});
