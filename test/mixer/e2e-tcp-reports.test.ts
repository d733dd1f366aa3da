// Mixer's TCP reports end to end: a control plane and two `mesh run`
// workloads as real processes, a TCP echo service (its ServiceEntry
// declares a TCP port) and a client app that opens TCP connections to it
// through its own sidecar and the echo's sidecar (mTLS between them).
// Pilot puts the report logger on the echo sidecar's inbound tcp_proxy;
// Istio's TCP metrics defined in Mixer config then count each connection
// opened and closed and its bytes on the control plane's /metrics.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NODE, runMesh, startControlPlane } from '../helpers/processes.ts';
import type { RunningControlPlane } from '../helpers/processes.ts';
import { eventually, startMesh } from '../runtime/helpers.ts';
import type { MeshProcess } from '../runtime/helpers.ts';
import { seriesValue, tcpMetricsYaml } from './mixer-config-fixtures.ts';

const APP = fileURLToPath(new URL('../runtime/fixtures/echo-app.mjs', import.meta.url));
const ECHO = 'tcpecho.default.svc.cluster.local';
const SERVICE_ENTRY = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: tcpecho, namespace: default }
spec:
  hosts: [${ECHO}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9000, name: tcp, protocol: TCP }]
  workloadSelector: { labels: { app: tcpecho } }
`;

let cp: RunningControlPlane;
const started: MeshProcess[] = [];
let clientPort = 0;

async function apply(yaml: string): Promise<void> {
  const r = await runMesh(['apply', '-f', '-', '--server', cp.server], { input: yaml });
  assert.equal(r.code, 0, r.stderr + r.stdout);
}

before(async () => {
  cp = await startControlPlane();
  await apply(SERVICE_ENTRY);
  await apply(tcpMetricsYaml());
  const run = (args: string[]): MeshProcess => {
    const p = startMesh(['run', '--control-plane', cp.server, ...args]);
    started.push(p);
    return p;
  };
  const echo = run(['--service', 'tcpecho', '--port', '9000', '--env', 'TCP_ECHO=1', '--', NODE, APP]);
  await echo.waitFor((e) => e.msg === 'workload registered');
  const client = run(['--service', 'client', '--port', '9080', '--wait-for-service', ECHO, '--', NODE, APP]);
  const ready = (p: MeshProcess): Promise<Record<string, unknown>> => p.waitFor((e) => e.msg === 'sidecar ready: config and certificate in place');
  const [, c] = await Promise.all([ready(echo), ready(client)]);
  clientPort = Number(c.appPort);
});

after(async () => {
  await Promise.all(started.map((p) => p.stop()));
  await cp?.stop();
});

const tcpCall = async (data: string): Promise<string> => (await fetch(`http://127.0.0.1:${clientPort}/tcp?svc=tcpecho&data=${data}`)).text();

test('TCP connections through both sidecars are reported: opened, closed, bytes both ways, destination service and workload', { timeout: 60_000 }, async () => {
  await eventually(async () => ((await tcpCall('warm')) === 'echo:warm' ? true : undefined), 'the client reaching tcpecho over TCP');
  const labels = [`destination_service="${ECHO}"`, 'destination_app="tcpecho"', 'reporter="inbound"', 'security="mutual_tls"'];
  const metrics = async (): Promise<string> => (await fetch(`http://127.0.0.1:${cp.ports.monitoring}/metrics`)).text();
  // The warm-up connections (one or more) are reported first; count from there.
  const closedBefore = await eventually(async () => seriesValue(await metrics(), 'tcp_connections_closed_total', labels), 'the warm-up connection reported closed').catch(async (e) => { console.log((await metrics()).split('\n').filter((l) => l.includes('tcp') || l.includes('report')).join('\n')); throw e; });
  const before = await metrics();
  for (let i = 0; i < 3; i++) assert.equal(await tcpCall(`hello${i}`), `echo:hello${i}`);
  const text = await eventually(async () => {
    const t = await metrics();
    return seriesValue(t, 'tcp_connections_closed_total', labels) === closedBefore + 3 ? t : undefined;
  }, 'three more connections reported closed');
  const delta = (metric: string): number => seriesValue(text, metric, labels)! - (seriesValue(before, metric, labels) ?? 0);
  assert.equal(delta('tcp_connections_opened_total'), 3);
  assert.equal(delta('tcp_received_bytes_total'), 3 * 'hello0'.length);
  assert.equal(delta('tcp_sent_bytes_total'), 3 * 'echo:hello0'.length);
  assert.match(text, new RegExp(`istio_tcp_connections_closed_total\\{[^}]*source_principal="spiffe://cluster\\.local/ns/default/sa/[^"]+"`), 'the mTLS peer is the source principal');
});
