// `mesh proxy -c FILE` as a real process: a YAML bootstrap with admin, a
// static listener -> HCM -> static cluster -> node:http upstream, a tcp_proxy
// listener, and the admin API answering in Envoy's shapes.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SIDECAR_NODE_FLAGS } from '../../src/runtime/node-flags.ts';
import type { Upstream } from './helpers.ts';
import { clientAgent, get, startUpstream } from './helpers.ts';

const MESH = fileURLToPath(new URL('../../bin/mesh.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'mesh-proxy-'));
let child: ChildProcess;
let upstream: Upstream;
let echo: ReturnType<typeof createTcpServer>;
let ports: { admin: number; http: number; tcp: number };
let stdout = '';

async function freePort(): Promise<number> {
  const s = createTcpServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const p = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return p;
}

function spawnProxy(file: string): ChildProcess {
  return spawn(process.execPath, ['--disable-warning=ExperimentalWarning', MESH, 'proxy', '-c', file], { env: { ...process.env, MESH_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
}

before(async () => {
  upstream = await startUpstream('app');
  echo = createTcpServer((s) => s.pipe(s)).listen(0, '127.0.0.1');
  await once(echo, 'listening');
  const echoPort = (echo.address() as { port: number }).port;
  ports = { admin: await freePort(), http: await freePort(), tcp: await freePort() };
  const yaml = `
node:
  id: sidecar~127.0.0.1~app.default~default.svc.cluster.local
  cluster: app.default
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: ${ports.admin} } }
static_resources:
  listeners:
  - name: 0.0.0.0_9080
    address: { socket_address: { address: 127.0.0.1, port_value: ${ports.http} } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: inbound_9080
          route_config:
            name: "9080"
            virtual_hosts:
            - name: app
              domains: ["*"]
              routes:
              - match: { prefix: / }
                route: { cluster: "inbound|9080||", timeout: 5s }
          http_filters:
          - name: envoy.filters.http.router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
  - name: tcp
    address: { socket_address: { address: 127.0.0.1, port_value: ${ports.tcp} } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: echo, cluster: echo }
  clusters:
  - name: "inbound|9080||"
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: "inbound|9080||"
      endpoints: [ { lb_endpoints: [ { endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ${upstream.port} } } } } ] } ]
  - name: echo
    type: STRICT_DNS
    dns_lookup_family: V4_ONLY
    connect_timeout: 1s
    load_assignment:
      cluster_name: echo
      endpoints: [ { lb_endpoints: [ { endpoint: { address: { socket_address: { address: localhost, port_value: ${echoPort} } } } } ] } ]
`;
  const file = join(dir, 'bootstrap.yaml');
  writeFileSync(file, yaml);
  child = spawnProxy(file);
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 10_000;
  while (!stdout.includes('proxy ready')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`proxy did not start: ${stderr}${stdout}`);
    await new Promise((r) => setTimeout(r, 50));
  }
});

after(async () => {
  clientAgent.destroy();
  if (child.exitCode === null) {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
  await upstream.close();
  echo.close();
});

test('started without the sidecar V8 flags, the process re-executed itself with them (same pid)', () => {
  const cmdline = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
  for (const flag of SIDECAR_NODE_FLAGS) assert.ok(cmdline.indexOf(flag) > 0 && cmdline.indexOf(flag) < cmdline.indexOf(MESH), `${flag} in ${cmdline.join(' ')}`);
  assert.deepEqual(cmdline.slice(cmdline.indexOf(MESH)), [MESH, 'proxy', '-c', join(dir, 'bootstrap.yaml'), '']);
});

test('serves HTTP from the bootstrap listener to the static cluster', async () => {
  const r = await get(ports.http, '/productpage', { host: 'app:9080' });
  assert.equal(r.status, 200);
  assert.equal(r.json().upstream, 'app');
});

test('tcp_proxy pipes bytes to a STRICT_DNS cluster resolved from localhost', async () => {
  const s = connect(ports.tcp, '127.0.0.1');
  s.end('ping over tcp');
  let got = '';
  for await (const chunk of s) got += String(chunk);
  assert.equal(got, 'ping over tcp');
});

test('admin: /ready, /server_info, /listeners, /clusters', async () => {
  const ready = await get(ports.admin, '/ready');
  assert.equal(ready.status, 200);
  assert.equal(ready.body, 'LIVE\n');
  const info = (await get(ports.admin, '/server_info')).json();
  assert.equal(info.state, 'LIVE');
  assert.equal(info.node.id, 'sidecar~127.0.0.1~app.default~default.svc.cluster.local');
  assert.match(info.uptime_current_epoch, /^\d+s$/);
  const listeners = (await get(ports.admin, '/listeners?format=json')).json();
  assert.deepEqual(
    listeners.listener_statuses.map((l: any) => [l.name, l.local_address.socket_address.port_value]),
    [['0.0.0.0_9080', ports.http], ['tcp', ports.tcp]],
  );
  const clusters = (await get(ports.admin, '/clusters')).body;
  assert.match(clusters, new RegExp(`^inbound\\|9080\\|\\|::127\\.0\\.0\\.1:${upstream.port}::rq_total::\\d+$`, 'm'));
  assert.match(clusters, /^inbound\|9080\|\|::default_priority::max_connections::1024$/m);
  const json = (await get(ports.admin, '/clusters?format=json')).json();
  assert.equal(json.cluster_statuses.find((c: any) => c.name === 'echo').host_statuses[0].address.socket_address.address, '127.0.0.1');
});

test('admin: /config_dump in Envoy shape', async () => {
  const dump = (await get(ports.admin, '/config_dump')).json();
  const types = dump.configs.map((c: any) => c['@type']);
  assert.deepEqual(types, [
    'type.googleapis.com/envoy.admin.v3.BootstrapConfigDump',
    'type.googleapis.com/envoy.admin.v3.ClustersConfigDump',
    'type.googleapis.com/envoy.admin.v3.ListenersConfigDump',
    'type.googleapis.com/envoy.admin.v3.RoutesConfigDump',
    'type.googleapis.com/envoy.admin.v3.SecretsConfigDump',
  ]);
  const listener = dump.configs[2].static_listeners[0].listener;
  assert.equal(listener['@type'], 'type.googleapis.com/envoy.config.listener.v3.Listener');
  const hcm = listener.filter_chains[0].filters[0].typed_config;
  assert.equal(hcm['@type'], 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager');
  assert.equal(hcm.route_config.virtual_hosts[0].routes[0].route.timeout, '5s');
  assert.equal(dump.configs[1].static_clusters[0].cluster.connect_timeout, '1s');
});

test('admin: /stats text and /stats/prometheus with Envoy names and tags', async () => {
  await get(ports.http, '/again', { host: 'app' });
  const text = (await get(ports.admin, '/stats')).body;
  assert.match(text, /^cluster\.inbound\|9080\|\|\.upstream_rq_total: [1-9]\d*$/m);
  assert.match(text, /^cluster\.inbound\|9080\|\|\.upstream_rq_2xx: [1-9]\d*$/m);
  assert.match(text, /^http\.inbound_9080\.downstream_rq_total: [1-9]\d*$/m);
  assert.match(text, new RegExp(`^listener\\.127\\.0\\.0\\.1_${ports.http}\\.downstream_cx_total: [1-9]\\d*$`, 'm'));
  const prom = (await get(ports.admin, '/stats/prometheus')).body;
  assert.match(prom, /^# TYPE envoy_cluster_upstream_rq_total counter$/m);
  assert.match(prom, /^envoy_cluster_upstream_rq_total\{envoy_cluster_name="inbound\|9080\|\|"\} [1-9]\d*$/m);
  assert.match(prom, /^envoy_cluster_upstream_rq\{envoy_cluster_name="inbound\|9080\|\|",envoy_response_code="200"\} [1-9]\d*$/m);
  assert.match(prom, /^envoy_http_downstream_rq_total\{envoy_http_conn_manager_prefix="inbound_9080"\} [1-9]\d*$/m);
  assert.match(prom, /^envoy_cluster_upstream_cx_active\{envoy_cluster_name="echo"\} \d+$/m);
});

test('a bad bootstrap fails the process with a reason naming the field', async () => {
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'static_resources:\n  clusters:\n  - name: x\n    type: STATIC\n');
  const p = spawnProxy(bad);
  let err = '';
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const [code] = (await once(p, 'exit')) as [number];
  assert.equal(code, 1);
  assert.match(err, /static_resources\.clusters\[0\] "x"\.load_assignment: required for a STATIC cluster/);
});

test('POST /quitquitquit stops the process cleanly', async () => {
  const r = await get(ports.admin, '/quitquitquit', { method: 'POST' });
  assert.equal(r.body, 'OK\n');
  const [code] = (await once(child, 'exit')) as [number];
  assert.equal(code, 0);
});
