// The proxy as an ADS client of a real gRPC management server: it follows
// CDS/EDS/LDS/RDS, ACKs good updates, NACKs a bad one with the validation
// error and keeps serving the old config, and swaps listeners under load
// without dropping a request.

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

const edsCluster = (name: string): object => ({ name, type: 'EDS', connect_timeout: '1s', eds_cluster_config: { eds_config: { ads: {} } } });
const cla = (name: string, port: number): object => ({ cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] });
const routeConfig = (cluster: string, regex = '/.*'): object => ({ name: 'http.80', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { safe_regex: { regex } }, route: { cluster } }] }] });
const listener = (statPrefix: string): object => ({
  name: 'virtualOutbound',
  address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
  filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: statPrefix, rds: { route_config_name: 'http.80', config_source: { ads: {} } }, http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }] } }] }],
});

before(async () => {
  a = await startUpstream('a');
  b = await startUpstream('b');
  ads = new TestAdsServer();
  await ads.start();
  ads.set(TypeUrl.Cluster, 'c1', [edsCluster('outbound|80||svc')]);
  ads.set(TypeUrl.ClusterLoadAssignment, 'e1', [cla('outbound|80||svc', a.port)]);
  ads.set(TypeUrl.Listener, 'l1', [listener('outbound_0.0.0.0_80')]);
  ads.set(TypeUrl.RouteConfiguration, 'r1', [routeConfig('outbound|80||svc')]);
  proxy = await startProxy(adsBootstrap(ads.port, 'GRPC', { id: 'sidecar~127.0.0.1~pod.ns~ns.svc.cluster.local', cluster: 'svc.ns' }));
});

after(async () => {
  clientAgent.destroy();
  await proxy.stop();
  ads.stop();
  await a.close();
  await b.close();
});

test('follows CDS, EDS, LDS and RDS over ADS and ACKs each version', async () => {
  const port = () => proxy.listenerPort('virtualOutbound')!;
  await untilTrue(async () => port() !== undefined && (await get(port(), '/x')).status === 200, 'the route over ADS');
  assert.equal((await get(port(), '/x')).json().upstream, 'a');
  for (const [t, v] of [[TypeUrl.Cluster, 'c1'], [TypeUrl.ClusterLoadAssignment, 'e1'], [TypeUrl.Listener, 'l1'], [TypeUrl.RouteConfiguration, 'r1']]) {
    const ack = await ads.waitFor((r) => r.type_url === t && r.version_info === v && !!r.response_nonce);
    assert.ok(!ack.error_detail, `${t} ${v} is ACKed`);
  }
  const eds = ads.requests.find((r) => r.type_url === TypeUrl.ClusterLoadAssignment)!;
  assert.deepEqual(eds.resource_names, ['outbound|80||svc']);
  assert.ok(ads.requests[0].node?.id?.startsWith('sidecar~'), 'the first request carries the node');
});

test('a NACKed update carries the validation error and traffic stays on the old config', async () => {
  const port = proxy.listenerPort('virtualOutbound')!;
  ads.set(TypeUrl.RouteConfiguration, 'r2-bad', [routeConfig('outbound|80||other', '(')]);
  const nack = await ads.waitFor((r) => r.type_url === TypeUrl.RouteConfiguration && !!r.error_detail);
  assert.match(nack.error_detail!.message!, /RouteConfiguration "http\.80".*safe_regex\.regex: invalid RE2 regex/);
  assert.equal(nack.version_info, 'r1', 'a NACK names the last accepted version');
  assert.equal((await get(port, '/x')).json().upstream, 'a');
  assert.equal(proxy.stats.get('http.rds.update_rejected'), 1);
  // A later good version is accepted again.
  ads.set(TypeUrl.ClusterLoadAssignment, 'e2', [cla('outbound|80||svc', b.port)]);
  await untilTrue(async () => (await get(port, '/x')).json().upstream === 'b', 'the EDS update');
});

test('a listener swap under load drops no request', async () => {
  const port = proxy.listenerPort('virtualOutbound')!;
  let stop = false;
  const statuses: number[] = [];
  const errors: string[] = [];
  const worker = async (): Promise<void> => {
    while (!stop) {
      try {
        statuses.push((await get(port, '/load')).status);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
  };
  const workers = Array.from({ length: 16 }, worker);
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 60));
    ads.set(TypeUrl.Listener, `l-swap-${i}`, [listener(`swap_${i}`)]);
    await ads.waitFor((r) => r.type_url === TypeUrl.Listener && r.version_info === `l-swap-${i}`);
  }
  await new Promise((r) => setTimeout(r, 60));
  stop = true;
  await Promise.all(workers);
  assert.deepEqual(errors, []);
  assert.ok(statuses.length > 100, `sent ${statuses.length} requests`);
  assert.ok(statuses.every((s) => s === 200), `statuses: ${[...new Set(statuses)].join(',')}`);
  assert.equal(proxy.listenerPort('virtualOutbound'), port, 'the socket stayed bound');
  assert.ok(proxy.stats.get('http.swap_4.downstream_rq_total') > 0, 'new connections use the new config');
});

test('a removed listener stops accepting and its clusters can go too', async () => {
  const port = proxy.listenerPort('virtualOutbound')!;
  ads.set(TypeUrl.Listener, 'l-empty', []);
  await ads.waitFor((r) => r.type_url === TypeUrl.Listener && r.version_info === 'l-empty');
  assert.equal(proxy.listenerPort('virtualOutbound'), undefined);
  await assert.rejects(get(port, '/x', { agent: new (await import('node:http')).Agent() }), /ECONNREFUSED/);
  assert.equal(proxy.stats.get('listener_manager.listener_removed'), 1);
  ads.set(TypeUrl.Cluster, 'c-empty', []);
  await ads.waitFor((r) => r.type_url === TypeUrl.Cluster && r.version_info === 'c-empty');
  assert.deepEqual(proxy.clusters.all().map((c) => c.cluster.name), ['xds-grpc'], 'static clusters stay');
});
