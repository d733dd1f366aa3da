// Egress under traffic capture, following Istio's tasks "Accessing External
// Services" and "Egress Gateways". The external world is a network namespace
// on the test's bridge with no sidecar: an HTTP server (:80) and an HTTPS
// server (:443, its own CA) answering as httpbin.example.test, and a DNS
// server (:53) that the workloads' DNS proxy forwards names outside the mesh
// to (`mesh run --capture-dns`, the cluster DNS of Kubernetes). A meshed
// "sleep" workload (`mesh run --capture`) calls out; the test execs the
// calls inside its namespace as `kubectl exec sleep -- curl` does.
//
//   ALLOW_ANY (the default): by name and by IP with no ServiceEntry, through
//     PassthroughCluster (stats and access log say so);
//   REGISTRY_ONLY (a root-namespace Sidecar, applied to the running mesh):
//     blocked (502, BlackHoleCluster) until a ServiceEntry declares the host;
//     a VirtualService timeout applies; a second ServiceEntry for the host
//     adds port 443 (merged) and HTTPS passes by SNI;
//   Egress Gateways: `mesh gateway --capture` runs istio-egressgateway in its
//     own namespace on the bridge; Istio's Gateway, DestinationRule and
//     VirtualService send the call mesh -> egress gateway -> external (the
//     external server sees the gateway's address), and without the
//     VirtualService it goes direct again.
//
// Everything created (namespaces, bridge, host rules, processes, temp dir)
// is removed in `after`, also on failure, and the last test asserts it.
// Skips with the reason when capture is unavailable (not root, no ip/iptables).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createWorkloadNamespace, ensureBridge, execInNamespace, inSubnet, listNamespaces, netnsArgv, runCommand, teardownByPrefix } from '../../src/agent/capture/index.ts';
import { captureAvailable } from '../../src/runtime/capture/mode.ts';
import { loadTopology } from '../../src/runtime/topology.ts';
import { freeSubnet } from '../helpers/free-subnet.ts';
import { virtualServiceYaml } from '../helpers/virtual-service-yaml.ts';
import { NODE, runMesh, startControlPlane, tempDir } from '../helpers/processes.ts';
import type { RunningControlPlane } from '../helpers/processes.ts';
import { alive, eventually, startMesh } from './helpers.ts';
import type { MeshProcess } from './helpers.ts';

const support = captureAvailable();
const skip = support.ok ? false : `traffic capture unavailable: ${support.reason}`;
const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
const NS_PEER = fileURLToPath(new URL('../capture/fixtures/ns-peer.ts', import.meta.url));
const EXTERNAL_HOST = 'httpbin.example.test';
const tag = randomBytes(3).toString('hex');
const NS_PREFIX = `mesh-tegr${tag}`;
const BRIDGE = `mesh-br${tag}`;
const EXTERNAL_NS = `${NS_PREFIX}-ext`;
const SLEEP_NS = `${NS_PREFIX}-sleep`;
const dir = tempDir('mesh-egress-');
const CA = join(dir, 'ca.pem');

let cp: RunningControlPlane | undefined;
let externalIp = '';
let subnet = '';
const processes: ChildProcess[] = [];
const meshes: MeshProcess[] = [];
let sleep: MeshProcess | undefined;
let sleepIp = '';
let sleepStats = '';

/** The external server's CA and its certificate for httpbin.example.test (openssl, in the temp dir). */
async function makeCertificates(): Promise<void> {
  const ssl = async (args: string[]): Promise<void> => {
    const r = await runCommand('openssl', args);
    if (r.code !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  };
  await ssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=Example Test Root CA', '-keyout', join(dir, 'ca.key'), '-out', CA]);
  await ssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${EXTERNAL_HOST}`, '-keyout', join(dir, 'server.key'), '-out', join(dir, 'server.csr')]);
  const ext = join(dir, 'ext.cnf');
  await import('node:fs/promises').then((fs) => fs.writeFile(ext, `subjectAltName=DNS:${EXTERNAL_HOST}\n`));
  await ssl(['x509', '-req', '-in', join(dir, 'server.csr'), '-CA', CA, '-CAkey', join(dir, 'ca.key'), '-CAcreateserial', '-days', '1', '-extfile', ext, '-out', join(dir, 'server.pem')]);
}

/** Starts a process inside a namespace; resolves once it prints a line for which `ready` holds. */
async function startInNamespace(ns: string, args: string[], env: Record<string, string>, ready: (line: string) => boolean): Promise<ChildProcess> {
  const argv = netnsArgv(ns, NODE, ['--disable-warning=ExperimentalWarning', ...args]);
  const child = spawn(argv.command, argv.args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  processes.push(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      if (ready(l)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}: ${err}`)));
  });
  return child;
}

before(async () => {
  if (skip) return;
  subnet = await freeSubnet();
  await makeCertificates();
  // The external world: on the bridge, outside the mesh (no sidecar, no rules).
  const bridge = await ensureBridge({ bridge: BRIDGE, subnet });
  const ext = await createWorkloadNamespace({ name: EXTERNAL_NS, bridge, resolv: { nameservers: ['127.0.0.1'], search: [] } });
  externalIp = ext.address;
  await startInNamespace(EXTERNAL_NS, [join(FIXTURES, 'egress-external.mjs')], { CERT: join(dir, 'server.pem'), KEY: join(dir, 'server.key') }, (l) => l.includes('"external":"ready"'));
  await startInNamespace(EXTERNAL_NS, [NS_PEER, 'fake-upstream', '53', externalIp], {}, (l) => l.includes('ready'));
  cp = await startControlPlane();
  sleep = startMesh(['run', '--capture', '--capture-bridge', tag, '--capture-subnet', subnet, '--capture-dns', externalIp, '--control-plane', cp.server, '--name', `tegr${tag}-sleep`, '--service', 'sleep', '--port', '8080', '--', NODE, join(FIXTURES, 'capture-server.mjs')]);
  meshes.push(sleep);
  const ready = await sleep.waitFor((e) => e.msg === 'sidecar ready: config and certificate in place', 40_000);
  sleepIp = String(ready.ip);
  sleepStats = String(ready.stats);
  await sleep.waitFor((e) => e.msg === 'workload registered', 30_000);
});

after(async () => {
  for (const m of meshes) await m.stop('SIGKILL').catch(() => undefined);
  for (const p of processes) {
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGKILL');
      await once(p, 'exit');
    }
  }
  await cp?.stop();
  if (!skip) await teardownByPrefix({ namespacePrefix: NS_PREFIX, bridgePrefix: BRIDGE });
  await import('node:fs/promises').then((fs) => fs.rm(dir, { recursive: true, force: true }));
});

interface Fetched {
  status?: number;
  body?: string;
  headers?: Record<string, string>;
  error?: string;
}

/** `kubectl exec sleep -- curl URL`: the call runs inside the sleep namespace as root, so it is captured. */
async function curl(url: string, ns = SLEEP_NS): Promise<Fetched> {
  const r = await execInNamespace(ns, NODE, [join(FIXTURES, 'egress-fetch.mjs'), url, CA], { timeoutMs: 15_000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as Fetched;
  } catch {
    throw new Error(`egress-fetch printed no result (code ${r.code}): ${r.stdout}${r.stderr}`);
  }
}

function external(f: Fetched): { host: string; remote: string; sni: string | null; scheme: string } {
  assert.equal(f.status, 200, JSON.stringify(f));
  return JSON.parse(f.body!) as { host: string; remote: string; sni: string | null; scheme: string };
}

async function apply(yaml: string): Promise<void> {
  const r = await runMesh(['apply', '--server', cp!.server, '-f', '-'], { input: yaml });
  assert.equal(r.code, 0, r.stderr + r.stdout);
}

/** Polls `url` from sleep until the external server answers 200 and saw the call come from `remote`; what it saw. */
async function answeredFrom(url: string, remote: string, what: string): Promise<ReturnType<typeof external>> {
  return external(await eventually(async () => {
    const r = await curl(url);
    if (r.status !== 200 || (JSON.parse(r.body!) as { remote: string }).remote !== remote) throw new Error(JSON.stringify(r));
    return r;
  }, what, 30_000));
}

/** Deletes the task's VirtualService that sends the host through the egress gateway. */
async function deleteThroughEgressGateway(): Promise<void> {
  const gone = await runMesh(['delete', 'virtualservice', 'direct-httpbin-through-egress-gateway', '--server', cp!.server]);
  assert.equal(gone.code, 0, gone.stderr + gone.stdout);
}

/** One counter of a Prometheus page by name and cluster label (0 when absent). */
function counter(page: string, name: string, cluster: string, label = 'envoy_cluster_name'): number {
  const line = page.split('\n').find((l) => l.startsWith(`${name}{${label}="${cluster}"}`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

/** The sleep sidecar's Prometheus page (15090 inside its namespace, reachable over the bridge). */
async function stats(): Promise<string> {
  return (await fetch(`http://${sleepStats}/stats/prometheus`)).text();
}

test('ALLOW_ANY: the external host is reached by name and by IP with no ServiceEntry, through PassthroughCluster', { skip, timeout: 60_000 }, async () => {
  const byName = external(await curl(`http://${EXTERNAL_HOST}/get`));
  assert.equal(byName.host, EXTERNAL_HOST);
  assert.equal(byName.remote, sleepIp, 'passthrough: the external server sees the workload address');
  const byIp = external(await curl(`http://${externalIp}/get`));
  assert.equal(byIp.host, externalIp);
  const tls = external(await curl(`https://${EXTERNAL_HOST}/get`));
  assert.equal(tls.sni, EXTERNAL_HOST, 'TLS from the app passes through untouched');
  // Three connections left through virtualOutbound's PassthroughCluster (no port-80/443 listener exists yet).
  assert.ok(counter(await stats(), 'envoy_cluster_upstream_cx_total', 'PassthroughCluster') >= 3);
});

const REGISTRY_ONLY = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: istio-system
spec:
  outboundTrafficPolicy:
    mode: REGISTRY_ONLY
`;

const HTTP_PORT = { number: 80, name: 'http', protocol: 'HTTP' };
const TLS_PORT = { number: 443, name: 'tls', protocol: 'TLS' };

/** Istio's httpbin-ext ServiceEntry (Accessing External Services), for the test's host. */
function serviceEntry(ports: readonly { number: number; name: string; protocol: string }[], name = 'httpbin-ext'): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: ${name}
spec:
  hosts:
  - ${EXTERNAL_HOST}
  ports:
${ports.map((p) => `  - number: ${p.number}\n    name: ${p.name}\n    protocol: ${p.protocol}\n`).join('')}  resolution: DNS
  location: MESH_EXTERNAL
`;
}

test('REGISTRY_ONLY on the running mesh: undeclared hosts are blocked until a ServiceEntry declares them; a VirtualService timeout applies; TLS passes by SNI', { skip, timeout: 90_000 }, async () => {
  await apply(REGISTRY_ONLY);
  // No listener on port 80 yet: virtualOutbound's BlackHoleCluster resets the connection.
  const blocked = await eventually(async () => {
    const r = await curl(`http://${EXTERNAL_HOST}/get`);
    return r.error ? r : undefined;
  }, 'the undeclared host to be blocked', 20_000);
  assert.match(String(blocked.error), /ECONNRESET|socket hang up/);
  assert.ok((await curl(`https://${EXTERNAL_HOST}/get`)).error, 'HTTPS to an undeclared host is blocked too');

  await apply(serviceEntry([HTTP_PORT]));
  const declared = await eventually(async () => {
    const r = await curl(`http://${EXTERNAL_HOST}/get`);
    if (r.status !== 200) throw new Error(JSON.stringify(r));
    return r;
  }, 'the declared host to answer', 20_000);
  const seen = external(declared);
  assert.equal(seen.host, EXTERNAL_HOST);
  assert.equal(seen.remote, sleepIp);
  // Port 80 now has an HTTP listener: a host it does not know gets Istio's 502 (block_all -> BlackHoleCluster).
  const byIp = await curl(`http://${externalIp}/get`);
  assert.equal(byIp.status, 502, JSON.stringify(byIp));

  // Istio's "Manage traffic to external services": a timeout on the external host.
  await apply(virtualServiceYaml({ name: 'httpbin-ext', host: EXTERNAL_HOST, weight: 100, before: 'timeout: 1s' }));
  const timedOut = await eventually(async () => {
    const r = await curl(`http://${EXTERNAL_HOST}/delay/3`);
    if (r.status !== 504) throw new Error(JSON.stringify({ status: r.status, error: r.error }));
    return r;
  }, 'the VirtualService timeout to apply', 20_000);
  assert.equal(timedOut.status, 504);

  // TLS to the external host, passed through by SNI (no TLS origination: the
  // app's own handshake). Declared by a second ServiceEntry for the same host:
  // Pilot merges the two (ports of both), as Istio does.
  await apply(serviceEntry([TLS_PORT], 'httpbin-ext-tls'));
  const tls = external(await eventually(async () => {
    const r = await curl(`https://${EXTERNAL_HOST}/get`);
    if (r.status !== 200) throw new Error(JSON.stringify(r));
    return r;
  }, 'HTTPS to the declared TLS host', 20_000));
  assert.equal(tls.sni, EXTERNAL_HOST);
  assert.equal(tls.scheme, 'https');

  const page = await stats();
  assert.ok(counter(page, 'envoy_tcp_downstream_cx_total', 'BlackHoleCluster', 'envoy_tcp_prefix') >= 1, 'the blocked connections went to BlackHoleCluster');
  assert.ok(counter(page, 'envoy_cluster_upstream_cx_total', 'outbound|443||httpbin.example.test') >= 1, 'HTTPS left through the ServiceEntry cluster');
});

/**
 * The "Egress Gateways" task's Gateway istio-egressgateway (one server on
 * `port` for the test's host; `tls`: its tls lines) and its DestinationRule
 * with the subset httpbin.
 */
function egressGatewayYaml(port: { number: number; name: string; protocol: string }, tls?: string): string {
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: istio-egressgateway
spec:
  selector:
    istio: egressgateway
  servers:
  - port:
      number: ${port.number}
      name: ${port.name}
      protocol: ${port.protocol}
    hosts:
    - ${EXTERNAL_HOST}
${tls === undefined ? '' : `    tls:\n${tls.trim().split('\n').map((l) => `      ${l}`).join('\n')}\n`}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: egressgateway-for-httpbin
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets:
  - name: httpbin
`;
}

/** Istio's "Egress Gateways" task (HTTP), for the test's host: its Gateway, DestinationRule and VirtualService unchanged. */
const EGRESS_GATEWAY = egressGatewayYaml(HTTP_PORT);

const DIRECT_THROUGH_EGRESS_GATEWAY = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: direct-httpbin-through-egress-gateway
spec:
  hosts:
  - ${EXTERNAL_HOST}
  gateways:
  - istio-egressgateway
  - mesh
  http:
  - match:
    - gateways:
      - mesh
      port: 80
    route:
    - destination:
        host: istio-egressgateway.istio-system.svc.cluster.local
        subset: httpbin
        port:
          number: 80
      weight: 100
  - match:
    - gateways:
      - istio-egressgateway
      port: 80
    route:
    - destination:
        host: ${EXTERNAL_HOST}
        port:
          number: 80
      weight: 100
`;

let egressGateway: MeshProcess | undefined;

test('Egress Gateways: mesh -> istio-egressgateway (its own namespace on the bridge) -> external; deleting the VirtualService goes direct again', { skip, timeout: 120_000 }, async () => {
  // "Deploy Istio egress gateway": a router in its own namespace, registered at its bridge
  // address, with Istio's istio-egressgateway Service (http2 80, https 443).
  egressGateway = startMesh(['gateway', '--capture', '--capture-bridge', tag, '--capture-subnet', subnet, '--capture-dns', externalIp, '--control-plane', cp!.server, '--name', 'istio-egressgateway', '--label', 'istio=egressgateway', '--workload', `tegr${tag}-egressgw`, '--service-port', 'http2:80', '--service-port', 'https:443']);
  meshes.push(egressGateway);
  const ready = await egressGateway.waitFor((e) => e.msg === 'sidecar ready: config and certificate in place', 40_000);
  const gatewayIp = String(ready.ip);
  const gatewayStats = String(ready.stats);
  assert.notEqual(gatewayIp, sleepIp);
  assert.ok(inSubnet(gatewayIp, subnet), `the gateway's address ${gatewayIp} is on the bridge ${subnet}`);
  await egressGateway.waitFor((e) => e.msg === 'workload registered', 30_000);

  // The earlier timeout VirtualService would compete for the host: the task starts without it.
  const del = await runMesh(['delete', 'virtualservice', 'httpbin-ext', '--server', cp!.server]);
  assert.ok(del.code === 0 || del.code === 4, del.stderr + del.stdout);
  // The task's steps: the ServiceEntry (port 80, DNS), the Gateway and DestinationRule, the VirtualService.
  await apply(serviceEntry([HTTP_PORT]));
  await apply(EGRESS_GATEWAY);
  await apply(DIRECT_THROUGH_EGRESS_GATEWAY);
  const through = await answeredFrom(`http://${EXTERNAL_HOST}/get`, gatewayIp, 'the request to leave through the egress gateway');
  assert.equal(through.host, EXTERNAL_HOST);
  assert.equal(through.remote, gatewayIp, 'the external server sees the egress gateway, not the workload');

  // The gateway's stats count it (its 15090 in its namespace, over the bridge), and the
  // sidecar's count the hop to the gateway's subset cluster.
  const gwPage = await (await fetch(`http://${gatewayStats}/stats/prometheus`)).text();
  assert.ok(counter(gwPage, 'envoy_cluster_upstream_rq_total', `outbound|80||${EXTERNAL_HOST}`) >= 1, 'the egress gateway sent the request to the external host');
  assert.ok(counter(await stats(), 'envoy_cluster_upstream_rq_total', 'outbound|80|httpbin|istio-egressgateway.istio-system.svc.cluster.local') >= 1, 'the sidecar sent it to the egress gateway');

  // "Cleanup": without the VirtualService the sidecar goes straight out again.
  await deleteThroughEgressGateway();
  const direct = await answeredFrom(`http://${EXTERNAL_HOST}/get`, sleepIp, 'the request to go direct again');
  assert.equal(direct.remote, sleepIp);
});

/** The task's "Egress gateway for HTTPS traffic": TLS passed through the gateway by SNI, unchanged but for the host. */
const EGRESS_GATEWAY_TLS = `${egressGatewayYaml(TLS_PORT, 'mode: PASSTHROUGH')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: direct-httpbin-through-egress-gateway
spec:
  hosts:
  - ${EXTERNAL_HOST}
  gateways:
  - mesh
  - istio-egressgateway
  tls:
  - match:
    - gateways:
      - mesh
      port: 443
      sniHosts:
      - ${EXTERNAL_HOST}
    route:
    - destination:
        host: istio-egressgateway.istio-system.svc.cluster.local
        subset: httpbin
        port:
          number: 443
  - match:
    - gateways:
      - istio-egressgateway
      port: 443
      sniHosts:
      - ${EXTERNAL_HOST}
    route:
    - destination:
        host: ${EXTERNAL_HOST}
        port:
          number: 443
      weight: 100
`;

test('Egress Gateways, HTTPS: the app\'s TLS passes through the egress gateway by SNI, untouched', { skip, timeout: 90_000 }, async () => {
  assert.ok(egressGateway, 'the egress gateway runs (previous test)');
  const ready = await egressGateway.waitFor((e) => e.msg === 'sidecar ready: config and certificate in place');
  const gatewayIp = String(ready.ip);
  await apply(serviceEntry([TLS_PORT], 'httpbin-ext-tls'));
  await apply(EGRESS_GATEWAY_TLS);
  const tls = await answeredFrom(`https://${EXTERNAL_HOST}/get`, gatewayIp, 'HTTPS to leave through the egress gateway');
  assert.equal(tls.remote, gatewayIp, 'the external server sees the egress gateway');
  assert.equal(tls.sni, EXTERNAL_HOST, 'the app\'s own handshake, SNI and all, reached the server');
  assert.equal(tls.scheme, 'https');
  const gwPage = await (await fetch(`http://${String(ready.stats)}/stats/prometheus`)).text();
  assert.ok(counter(gwPage, 'envoy_cluster_upstream_cx_total', `outbound|443||${EXTERNAL_HOST}`) >= 1, 'the gateway opened the connection to the external host');

  await deleteThroughEgressGateway();
  const direct = await answeredFrom(`https://${EXTERNAL_HOST}/get`, sleepIp, 'HTTPS to go direct again');
  assert.equal(direct.sni, EXTERNAL_HOST);
});

test('nothing is left: workloads, namespaces, bridge, host rules', { skip, timeout: 60_000 }, async () => {
  const pids = [sleep!.child.pid!, ...(egressGateway ? [egressGateway.child.pid!] : []), ...processes.map((p) => p.pid!)];
  assert.equal(await sleep!.stop('SIGTERM'), 143, sleep!.lines.slice(-20).join('\n'));
  if (egressGateway) assert.equal(await egressGateway.stop('SIGTERM'), 0, egressGateway.lines.slice(-20).join('\n'));
  for (const p of processes) {
    p.stdin!.end();
    if (p.exitCode === null && p.signalCode === null) await once(p, 'exit');
  }
  assert.deepEqual(pids.filter(alive), [], 'no process left');
  assert.deepEqual((await listNamespaces()).filter((n) => n === SLEEP_NS || n === `${NS_PREFIX}-egressgw`), [], 'mesh run and mesh gateway removed their namespaces');
  const report = await teardownByPrefix({ namespacePrefix: NS_PREFIX, bridgePrefix: BRIDGE });
  assert.deepEqual(report.namespaces, [EXTERNAL_NS], 'only the external world was left for the test to remove');
  assert.deepEqual(report.bridges, [BRIDGE]);
  assert.deepEqual((await listNamespaces()).filter((n) => n.startsWith(NS_PREFIX)), [], 'no namespace left');
  assert.equal((await runCommand('ip', ['link', 'show', BRIDGE])).code === 0, false, 'the bridge is gone');
  assert.deepEqual((await runCommand('iptables-save', [])).stdout.split('\n').filter((l) => l.includes(BRIDGE)), [], 'no host rule left');
});

test('mesh.yaml egressGateway: the egress gateway is started like the ingress one, selected by istio=egressgateway', () => {
  const file = join(dir, 'mesh.yaml');
  const services = [{ name: 'sleep', command: ['node', 'sleep.js'] }];
  writeFileSync(file, JSON.stringify({ gateway: true, egressGateway: true, services }));
  const t = loadTopology(file);
  assert.deepEqual(t.gateway, { name: 'istio-ingressgateway', namespace: 'istio-system', labels: { istio: 'ingressgateway' } });
  assert.deepEqual(t.egressGateway, { name: 'istio-egressgateway', namespace: 'istio-system', labels: { istio: 'egressgateway' } });
  writeFileSync(file, JSON.stringify({ egressGateway: { name: 'egress', namespace: 'edge' }, services }));
  assert.deepEqual(loadTopology(file).egressGateway, { name: 'egress', namespace: 'edge', labels: { istio: 'egressgateway' } });
  writeFileSync(file, JSON.stringify({ egressGateway: 'yes', services }));
  assert.throws(() => loadTopology(file), /egressGateway: expected true, false or \{name, namespace\}/);
});
