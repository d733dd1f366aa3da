// The proxy as a delta (incremental) ADS client: wildcard CDS/LDS, EDS and RDS
// by name, changes applied on top of what it holds, ACK/NACK by nonce, and
// the last good config kept after a NACK.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Proxy } from '../../src/proxy/index.ts';
import { TypeUrl } from '../../src/xds/index.ts';
import { TestAdsServer, adsBootstrap, untilTrue } from './ads-server.ts';
import type { Upstream } from './helpers.ts';
import { HCM, ROUTER, clientAgent, get, startProxy, startUpstream } from './helpers.ts';

let ads: TestAdsServer;
let proxy: Proxy;
let a: Upstream;
let b: Upstream;

const cla = (name: string, port: number): object => ({ cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] });
const routeConfig = (cluster: string, regex = '/.*'): object => ({ name: '80', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { safe_regex: { regex } }, route: { cluster } }] }] });

before(async () => {
  a = await startUpstream('a');
  b = await startUpstream('b');
  ads = new TestAdsServer();
  await ads.start();
  ads.setDelta(TypeUrl.Cluster, 'c1', [{ name: 'svc', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } } }]);
  ads.setDelta(TypeUrl.ClusterLoadAssignment, 'e1', [cla('svc', a.port)]);
  ads.setDelta(TypeUrl.Listener, 'l1', [
    {
      name: 'out',
      address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
      filter_chains: [{ filters: [{ name: 'hcm', typed_config: { '@type': HCM, stat_prefix: 'out', rds: { route_config_name: '80', config_source: { ads: {} } }, http_filters: [{ name: 'router', typed_config: { '@type': ROUTER } }] } }] }],
    },
  ]);
  ads.setDelta(TypeUrl.RouteConfiguration, 'r1', [routeConfig('svc')]);
  proxy = await startProxy(adsBootstrap(ads.port, 'DELTA_GRPC', { id: 'sidecar~127.0.0.1~pod.ns~ns.svc.cluster.local' }));
});

after(async () => {
  clientAgent.destroy();
  await proxy.stop();
  ads.stop();
  await a.close();
  await b.close();
});

test('subscribes wildcard CDS/LDS and named EDS/RDS, and serves traffic', async () => {
  await untilTrue(async () => proxy.listenerPort('out') !== undefined && (await get(proxy.listenerPort('out')!, '/x')).status === 200, 'the delta config');
  assert.equal((await get(proxy.listenerPort('out')!, '/x')).json().upstream, 'a');
  const cds = await ads.waitForDelta((r) => r.type_url === TypeUrl.Cluster);
  assert.deepEqual(cds.resource_names_subscribe, ['*']);
  assert.ok(ads.deltaRequests[0].node?.id, 'the first request carries the node');
  const eds = await ads.waitForDelta((r) => r.type_url === TypeUrl.ClusterLoadAssignment && (r.resource_names_subscribe?.length ?? 0) > 0);
  assert.deepEqual(eds.resource_names_subscribe, ['svc']);
  const rds = await ads.waitForDelta((r) => r.type_url === TypeUrl.RouteConfiguration && (r.resource_names_subscribe?.length ?? 0) > 0);
  assert.deepEqual(rds.resource_names_subscribe, ['80']);
});

test('an incremental EDS change applies on top of the held clusters', async () => {
  ads.setDelta(TypeUrl.ClusterLoadAssignment, 'e2', [cla('svc', b.port)]);
  await untilTrue(async () => (await get(proxy.listenerPort('out')!, '/x')).json().upstream === 'b', 'the EDS delta');
  assert.ok(proxy.clusters.get('svc'), 'the cluster is still there');
});

test('a bad delta is NACKed by nonce and the old config keeps serving', async () => {
  ads.setDelta(TypeUrl.RouteConfiguration, 'r2', [routeConfig('svc', '[')]);
  const nack = await ads.waitForDelta((r) => r.type_url === TypeUrl.RouteConfiguration && !!r.error_detail);
  assert.match(nack.error_detail!.message!, /invalid RE2 regex/);
  assert.ok(nack.response_nonce);
  assert.equal((await get(proxy.listenerPort('out')!, '/x')).json().upstream, 'b');
});
