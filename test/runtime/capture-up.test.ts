// `mesh up` with capture: Bookinfo's productpage, details, reviews v2 and
// ratings (unchanged: they call each other by plain name) plus a tester that
// fetches http://productpage:9080/productpage, every replica in its own
// network namespace on a private bridge (random free 10.x /24). The page is
// complete (details, reviews with ratings stars: three hops through the
// sidecars). With `egressGateway: true`, istio-egressgateway runs in a
// namespace of its own on the bridge (no capture rules; the router as 1337)
// and Istio's istio-egressgateway Service (80, 443) is in the control
// plane's registry. `mesh down` leaves no namespace (the gateway's
// included), bridge or process. One mesh for the three tests, which run in
// order. No host port is used but the control plane's. Everything this file
// created is removed in `after`, also on failure. Skips when capture is
// unavailable.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { deleteBridge, deleteWorkloadNamespace, hostVethName, inSubnet, listNamespaces, runCommand } from '../../src/agent/capture/index.ts';
import { captureAvailable } from '../../src/runtime/capture/mode.ts';
import { freeSubnet } from '../helpers/free-subnet.ts';
import { REPO_ROOT, runMesh, tempDir } from '../helpers/processes.ts';
import { alive, descendants, eventually, startMesh } from './helpers.ts';
import type { MeshProcess } from './helpers.ts';

const support = captureAvailable();
const skip = support.ok ? false : `traffic capture unavailable: ${support.reason}`;
const CLIENT = fileURLToPath(new URL('./fixtures/capture-client.mjs', import.meta.url));
const tag = randomBytes(3).toString('hex');
const BRIDGE = `mesh-br${tag}`;
const runDir = tempDir('mesh-capture-up-');
let up: MeshProcess | undefined;
let subnet = '';
/** Every namespace of the mesh, once it is up. */
let namespaces: string[] = [];
/** The egress gateway's namespace, once the second test found it. */
let gatewayNs = '';

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

/** The JSON of a `mesh up` console line `<process padded> | {...}` from `process`. */
function consoleEntry(line: string, process: string): Record<string, unknown> | undefined {
  const i = line.indexOf('| {');
  if (i < 0 || line.slice(0, i).trim() !== process) return undefined;
  try {
    return JSON.parse(line.slice(i + 2)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

async function namespacePids(ns: string): Promise<number[]> {
  const r = await runCommand('ip', ['netns', 'pids', ns]);
  return r.stdout.split(/\s+/).filter(Boolean).map(Number);
}

test('Bookinfo under mesh up with capture: productpage by name, complete, through the sidecars', { skip, timeout: 100_000 }, async () => {
  subnet = await freeSubnet();
  const node = (script: string): string[] => ['node', '--disable-warning=ExperimentalWarning', script];
  const file = join(runDir, 'mesh.yaml');
  writeFileSync(file, JSON.stringify({
    namespace: 'default',
    workingDir: REPO_ROOT,
    capture: { mode: 'on', bridge: tag, subnet },
    egressGateway: true,
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
  await up.waitFor((_e, line) => line.includes('services ready in'), 80_000);
  namespaces = await ourNamespaces();
  assert.equal(namespaces.length, 6, `one namespace per replica and one for the egress gateway: ${namespaces.join(', ')}`);
  const complete = await up.waitFor((_e, line) => line.includes('"client":"call"') && line.includes('"status":200') && line.includes('glyphicon-star') && line.includes('Book Details'), 30_000).then(() => true);
  assert.ok(complete, 'the tester got a complete product page: details, reviews and ratings through the sidecars');
});

test('mesh up egressGateway under capture: istio-egressgateway in its own namespace on the bridge, its Service (80, 443) in the registry', { skip, timeout: 30_000 }, async () => {
  assert.ok(up, 'mesh up runs (the first test started it)');
  const lines = (): Record<string, unknown>[] => up!.lines.map((l) => consoleEntry(l, 'istio-egressgateway')).filter((e) => e !== undefined);
  const nsReady = lines().find((e) => e.msg === 'gateway namespace ready (no capture rules; every port bindable; DNS proxy on 127.0.0.1:53)');
  assert.ok(nsReady, `the egress gateway got a namespace:\n${up!.lines.filter((l) => l.startsWith('istio-egressgateway')).join('\n')}`);
  const gwNs = String(nsReady.netns);
  gatewayNs = gwNs;
  assert.match(gwNs, /^mesh-istio-egressgateway-/);
  assert.ok(namespaces.includes(gwNs), `${gwNs} is on the mesh bridge ${BRIDGE}`);
  assert.equal(namespaces.filter((n) => n.startsWith('mesh-istio-egressgateway-')).length, 1, 'one egress gateway namespace');
  assert.ok(inSubnet(String(nsReady.address), subnet), `its address ${String(nsReady.address)} is on ${subnet}`);
  // Its namespace has no capture rules: the gateway's traffic is all proxy traffic.
  const rules = (await runCommand('ip', ['netns', 'exec', gwNs, 'iptables-save', '-t', 'nat'])).stdout;
  assert.doesNotMatch(rules, /ISTIO_|mesh-capture/, rules);
  // The router runs inside as 1337 (no app), and serves its stats on the namespace address over the bridge.
  const ready = lines().find((e) => e.msg === 'sidecar ready: config and certificate in place');
  assert.ok(ready, 'the egress gateway is ready');
  assert.equal(ready.ip, nsReady.address, 'registered at its namespace address');
  const ps = (await runCommand('ps', ['-o', 'uid=,args=', '-p', (await namespacePids(gwNs)).join(',')])).stdout;
  assert.match(ps, /^\s*1337 .*sidecar-main\.ts/m, ps);
  // Its :15090, reached over the bridge, shows the Service's endpoint (the gateway itself, registered) in its own EDS.
  await eventually(async () => {
    const res = await fetch(`http://${String(ready.stats)}/stats/prometheus`);
    const page = await res.text();
    return res.status === 200 && /^envoy_cluster_membership_healthy\{envoy_cluster_name="outbound\|80\|\|istio-egressgateway\.istio-system\.svc\.cluster\.local"\} 1$/m.test(page) ? true : undefined;
  }, 'one healthy endpoint of istio-egressgateway:80 on the gateway\'s stats');

  // Istio's istio-egressgateway Service, with a VIP, in the control plane's registry (the runtime API lists Pilot's services).
  const controlPlane = (JSON.parse(readFileSync(join(runDir, 'mesh-up.pid'), 'utf8')) as { controlPlane: string }).controlPlane;
  const { services } = (await (await fetch(`${controlPlane}/runtime/v1/services`)).json()) as { services: { hostname: string; namespace: string; addresses: string[]; ports: { name: string; port: number; protocol: string }[] }[] };
  const svc = services.find((s) => s.hostname === 'istio-egressgateway.istio-system.svc.cluster.local');
  assert.ok(svc, `istio-egressgateway in the registry: ${services.map((s) => s.hostname).join(', ')}`);
  assert.equal(svc.namespace, 'istio-system');
  assert.deepEqual(svc.ports.map((p) => [p.name, p.port]).sort(), [['http2', 80], ['https', 443]]);
  assert.equal(svc.addresses.length, 1);
  assert.ok(inSubnet(svc.addresses[0]!, '240.240.0.0/16'), `a VIP: ${svc.addresses[0]}`);
  // Selected by the gateway's labels, as Istio's Service selects its pods.
  const got = await runMesh(['get', 'serviceentry', '-A', '-o', 'json', '--server', controlPlane]);
  assert.equal(got.code, 0, got.stderr);
  const { items } = JSON.parse(got.stdout) as { items: { metadata: { name: string; namespace: string }; spec: { workloadSelector?: { labels: Record<string, string> } } }[] };
  const entry = items.find((i) => i.metadata.name === 'istio-egressgateway' && i.metadata.namespace === 'istio-system');
  assert.ok(entry, got.stdout);
  assert.equal(entry.spec.workloadSelector?.labels.istio, 'egressgateway');
});

test('mesh down leaves no process, namespace (the egress gateway\'s included) or bridge', { skip, timeout: 40_000 }, async () => {
  assert.ok(up && namespaces.length > 0, 'mesh up runs (the first test started it)');
  const pids = [up.child.pid!, ...descendants(up.child.pid!)];
  assert.ok(pids.length >= 13, `mesh up, the control plane, 5 runtimes and their sidecars and apps, the egress gateway's runtime and router: ${pids.length}`);

  const down = await runMesh(['down', '--run-dir', runDir]);
  assert.equal(down.code, 0, down.stderr);
  await up.exited;
  const left = pids.filter(alive);
  assert.deepEqual(left, [], `no process left: ${left.length ? (await runCommand('ps', ['-o', 'pid,ppid,stat,args', '-p', left.join(',')])).stdout : ''}`);
  assert.deepEqual((await listNamespaces()).filter((n) => namespaces.includes(n)), [], 'no namespace left');
  if (gatewayNs) assert.equal(existsSync(`/etc/netns/${gatewayNs}`), false, 'the egress gateway\'s resolv.conf is gone with its namespace');
  assert.notEqual((await runCommand('ip', ['link', 'show', 'dev', BRIDGE])).code, 0, 'the bridge is gone');
});
