// The debug endpoints on a real HTTP server: /debug/syncz, /debug/config_dump,
// /debug/adsz, paths the handler does not own; and the pilot_xds* metrics.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { TypeUrl } from '../../src/xds/index.ts';
import { createPilotDebugHandler } from '../../src/pilot/xds-server/index.ts';
import type { ConnectionInfo, ProxyStatus } from '../../src/pilot/xds-server/index.ts';
import { CLUSTER_A, nextOf, nodeOf, sotwStream, startPilot, waitFor } from './xds-server-helpers.ts';

/** Envoy's config dump as JSON: the entries this test reads. */
interface ConfigDump {
  configs: Array<{
    '@type': string;
    dynamic_active_clusters: Array<{ version_info: string; cluster: { '@type': string } }>;
    dynamic_listeners: Array<{ name: string; active_state: { listener: { name: string } } }>;
    dynamic_route_configs: unknown[];
    dynamic_endpoint_configs: Array<{ endpoint_config: { cluster_name: string } }>;
  }>;
}

test('the debug handler serves syncz, config_dump and adsz, and leaves other paths alone', async (t) => {
  const pilot = await startPilot();
  const s = sotwStream(pilot.port);
  const handler = createPilotDebugHandler(pilot.xds);
  const http = createServer((req, res) => {
    if (!handler(req, res)) {
      res.writeHead(418);
      res.end('not mine');
    }
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  t.after(() => {
    s.close();
    pilot.stop();
    http.close();
  });
  const node = nodeOf();
  s.send({ node, type_url: TypeUrl.Cluster });
  const cds = await nextOf(s, TypeUrl.Cluster);
  s.send({ type_url: TypeUrl.Cluster, version_info: cds.version_info, response_nonce: cds.nonce });
  s.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: [CLUSTER_A] });
  await nextOf(s, TypeUrl.ClusterLoadAssignment);
  s.send({ type_url: TypeUrl.Listener });
  await nextOf(s, TypeUrl.Listener);
  await waitFor(() => pilot.xds.proxyStatus()[0].types[TypeUrl.Cluster].state === 'SYNCED');

  const syncz = (await (await fetch(`${base}/debug/syncz`)).json()) as ProxyStatus[];
  assert.equal(syncz.length, 1);
  assert.equal(syncz[0].id, node.id);
  assert.equal(syncz[0].types[TypeUrl.Cluster].state, 'SYNCED');
  assert.equal(syncz[0].types[TypeUrl.Listener].state, 'STALE');

  const dumpRes = await fetch(`${base}/debug/config_dump?proxyID=${encodeURIComponent(node.id)}`);
  assert.equal(dumpRes.status, 200);
  const dump = (await dumpRes.json()) as ConfigDump;
  const byType = Object.fromEntries(dump.configs.map((c) => [c['@type'].split('.').pop() ?? '', c]));
  assert.deepEqual(Object.keys(byType).sort(), ['ClustersConfigDump', 'EndpointsConfigDump', 'ListenersConfigDump', 'RoutesConfigDump']);
  assert.equal(byType.ClustersConfigDump.dynamic_active_clusters.length, 2);
  assert.equal(byType.ClustersConfigDump.dynamic_active_clusters[0].cluster['@type'], TypeUrl.Cluster);
  assert.equal(byType.ClustersConfigDump.dynamic_active_clusters[0].version_info, 'v1');
  assert.equal(byType.ListenersConfigDump.dynamic_listeners[0].name, '0.0.0.0_80');
  assert.equal(byType.ListenersConfigDump.dynamic_listeners[0].active_state.listener.name, '0.0.0.0_80');
  assert.deepEqual(byType.EndpointsConfigDump.dynamic_endpoint_configs.map((e) => e.endpoint_config.cluster_name), [CLUSTER_A]);
  assert.deepEqual(byType.RoutesConfigDump.dynamic_route_configs, []);
  // By name.namespace too, as istioctl users type it.
  assert.equal((await fetch(`${base}/debug/config_dump?proxyID=app-1.default`)).status, 200);
  assert.equal((await fetch(`${base}/debug/config_dump?proxyID=nobody.default`)).status, 404);
  assert.equal((await fetch(`${base}/debug/config_dump`)).status, 400);

  const adsz = (await (await fetch(`${base}/debug/adsz`)).json()) as { totalClients: number; clients: ConnectionInfo[] };
  assert.equal(adsz.totalClients, 1);
  assert.equal(adsz.clients[0].proxyId, node.id);
  assert.deepEqual(adsz.clients[0].watches[TypeUrl.ClusterLoadAssignment], [CLUSTER_A]);
  assert.equal(adsz.clients[0].watches[TypeUrl.Cluster], '*');

  const other = await fetch(`${base}/debug/other`);
  assert.equal(other.status, 418);
  assert.equal((await fetch(`${base}/debug/syncz`, { method: 'POST' })).status, 405);

  // proxyConfig filtered by type, as the integrator's CLI would ask.
  const config = pilot.xds.proxyConfig(node.id, TypeUrl.Cluster);
  assert.deepEqual(Object.keys(config!.types), [TypeUrl.Cluster]);
});

test('metrics use Istio names: pushes, connected proxies, send and push times', async (t) => {
  const pilot = await startPilot();
  const s = sotwStream(pilot.port);
  t.after(() => {
    s.close();
    pilot.stop();
  });
  s.send({ node: nodeOf(), type_url: TypeUrl.Cluster });
  await nextOf(s, TypeUrl.Cluster);
  s.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: [CLUSTER_A] });
  await nextOf(s, TypeUrl.ClusterLoadAssignment);
  const text = await pilot.metrics.metrics();
  assert.match(text, /^pilot_xds 1$/m);
  assert.match(text, /^pilot_xds_pushes\{type="cds"\} 1$/m);
  assert.match(text, /^pilot_xds_pushes\{type="eds"\} 1$/m);
  assert.match(text, /^pilot_xds_push_time_count\{type="eds"\} 1$/m);
  assert.match(text, /^pilot_xds_send_time_count 2$/m);
  assert.match(text, /^# TYPE pilot_proxy_convergence_time histogram$/m);
  assert.match(text, /^# TYPE pilot_total_xds_rejects counter$/m);
});
