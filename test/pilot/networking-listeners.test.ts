// LDS (and the route configs listeners name) for the three clients: sidecar
// capture listeners and per-port listeners with TCP/TLS routes, gateway
// servers in each TLS mode, and proxyless gRPC API listeners.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TypeUrl } from '../../src/xds/index.ts';
import { createGenerators } from '../../src/pilot/networking/index.ts';
import type { ProxyNode } from '../../src/pilot/model/index.ts';
import type { ConfigObject } from '../../src/api/index.ts';
import { assertValidEnvoy, bookinfoRegistry, endpointsOf, gatewayProxy, grpcProxy, parseConfig, pushOf, service, sidecarProxy, workload } from './networking-fixtures.ts';

const gens = createGenerators();

function listeners(proxy: ProxyNode, objects: ConfigObject[], registry = bookinfoRegistry()): Map<string, Record<string, unknown>> {
  const out = gens.get(TypeUrl.Listener)!.generate(proxy, pushOf(objects, registry), { full: true });
  return new Map(assertValidEnvoy(TypeUrl.Listener, out).map((v) => [(v as { name: string }).name, v as Record<string, unknown>]));
}

function tcpRegistry(): ReturnType<typeof bookinfoRegistry> {
  const reg = bookinfoRegistry();
  const mongo = service('mongo', { ports: [{ name: 'tcp', port: 27017, protocol: 'TCP' }], addresses: ['10.96.0.20'] });
  reg.services.push(mongo);
  reg.endpoints.set(mongo.hostname, endpointsOf(mongo, [workload('mongo-v1', '10.0.0.20', { app: 'mongo', version: 'v1' })]));
  const ext = service('ext', { hostname: 'api.example.com', ports: [{ name: 'tls', port: 443, protocol: 'TLS' }], resolution: 'DNS', meshExternal: true });
  reg.services.push(ext);
  return reg;
}

test('lds: virtualOutbound falls through to PassthroughCluster, or BlackHoleCluster for REGISTRY_ONLY', () => {
  const allow = listeners(sidecarProxy(), []).get('virtualOutbound')!;
  assert.partialDeepStrictEqual(allow, { address: { socket_address: { port_value: 15001 } }, use_original_dst: { value: true }, filter_chains: [{ filters: [{ typed_config: { cluster: 'PassthroughCluster' } }] }] });
  const sidecar = parseConfig('apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: { name: default, namespace: default }\nspec: { outboundTrafficPolicy: { mode: REGISTRY_ONLY } }\n');
  const block = listeners(sidecarProxy(), sidecar).get('virtualOutbound')!;
  assert.partialDeepStrictEqual(block, { filter_chains: [{ filters: [{ typed_config: { cluster: 'BlackHoleCluster' } }] }] });
});

test('lds: HTTP ports get an HCM with RDS named by port', () => {
  const l = listeners(sidecarProxy(), []).get('0.0.0.0_9080')!;
  assert.partialDeepStrictEqual(l, { bind_to_port: { value: false }, filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { rds: { route_config_name: '9080' } } }] }] });
  const filters = (l as { filter_chains: { filters: { typed_config: { http_filters: { name: string }[] } }[] }[] }).filter_chains[0]!.filters[0]!.typed_config.http_filters;
  assert.equal(filters.at(-1)!.name, 'envoy.filters.http.router');
});

test('lds: TCP ports get tcp_proxy by VIP; a VirtualService TCP route splits by weight', () => {
  const vs = parseConfig(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: mongo, namespace: default }
spec:
  hosts: [mongo]
  tcp:
  - route:
    - { destination: { host: mongo, subset: v1 }, weight: 90 }
    - { destination: { host: mongo, subset: v2 }, weight: 10 }
`);
  const l = listeners(sidecarProxy(), vs, tcpRegistry()).get('0.0.0.0_27017')!;
  assert.partialDeepStrictEqual(l, { filter_chains: [{
    filter_chain_match: { prefix_ranges: [{ address_prefix: '10.96.0.20', prefix_len: { value: 32 } }] },
    filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { weighted_clusters: { clusters: [
      { name: 'outbound|27017|v1|mongo.default.svc.cluster.local', weight: 90 },
      { name: 'outbound|27017|v2|mongo.default.svc.cluster.local', weight: 10 },
    ] } } }],
  }] });
});

test('lds: TLS routes match SNI with the TLS inspector', () => {
  const vs = parseConfig(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ext, namespace: default }
spec:
  hosts: [api.example.com]
  tls:
  - match: [{ port: 443, sniHosts: [api.example.com] }]
    route: [{ destination: { host: api.example.com, port: { number: 443 } } }]
`);
  const l = listeners(sidecarProxy(), vs, tcpRegistry()).get('0.0.0.0_443')!;
  assert.partialDeepStrictEqual(l, {
    listener_filters: [{ name: 'envoy.filters.listener.tls_inspector' }],
    filter_chains: [{ filter_chain_match: { server_names: ['api.example.com'] }, filters: [{ typed_config: { cluster: 'outbound|443||api.example.com' } }] }],
  });
});

test('lds: virtualInbound has mTLS and plaintext chains per workload port, then passthrough', () => {
  const l = listeners(sidecarProxy(), []).get('virtualInbound')! as { filter_chains: { name: string; filter_chain_match?: unknown; transport_socket?: unknown }[] };
  assert.deepEqual(l.filter_chains.map((c) => c.name), ['inbound|9080||-mtls', 'inbound|9080||', 'virtualInbound-catchall-tcp']);
  assert.partialDeepStrictEqual(l.filter_chains[0], { filter_chain_match: { destination_port: { value: 9080 }, transport_protocol: 'tls' }, transport_socket: { typed_config: { require_client_certificate: { value: true } } } });
});

function gateway(servers: string): ConfigObject[] {
  return parseConfig(`apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
${servers}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: edge, namespace: default }
spec:
  hosts: ["reviews.example.com"]
  gateways: [istio-system/gw]
  http: [{ route: [{ destination: { host: reviews, port: { number: 9080 } } }] }]
  tls:
  - match: [{ sniHosts: [reviews.example.com] }]
    route: [{ destination: { host: reviews, port: { number: 9080 } } }]
`);
}

const gatewayCases: { name: string; server: string; expect: Record<string, unknown> }[] = [
  {
    name: 'HTTPS SIMPLE with credentialName -> SDS secret of that name, RDS https.443...',
    server: '  - { port: { number: 443, name: https, protocol: HTTPS }, hosts: ["reviews.example.com"], tls: { mode: SIMPLE, credentialName: reviews-cert } }',
    expect: { filter_chains: [{
      filter_chain_match: { server_names: ['reviews.example.com'] },
      transport_socket: { typed_config: { common_tls_context: { tls_certificate_sds_secret_configs: [{ name: 'reviews-cert' }] } } },
      filters: [{ typed_config: { rds: { route_config_name: 'https.443.https.gw.istio-system' } } }],
    }] },
  },
  {
    name: 'HTTPS MUTUAL -> client CA from `<credential>-cacert`, client certificate required',
    server: '  - { port: { number: 443, name: https, protocol: HTTPS }, hosts: ["reviews.example.com"], tls: { mode: MUTUAL, credentialName: reviews-cert } }',
    expect: { filter_chains: [{ transport_socket: { typed_config: {
      require_client_certificate: { value: true },
      common_tls_context: { combined_validation_context: { validation_context_sds_secret_config: { name: 'reviews-cert-cacert' } } },
    } } }] },
  },
  {
    name: 'TLS PASSTHROUGH -> tcp_proxy chosen by SNI',
    server: '  - { port: { number: 443, name: tls, protocol: TLS }, hosts: ["reviews.example.com"], tls: { mode: PASSTHROUGH } }',
    expect: { listener_filters: [{ name: 'envoy.filters.listener.tls_inspector' }], filter_chains: [{
      filter_chain_match: { server_names: ['reviews.example.com'] },
      filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { cluster: 'outbound|9080||reviews.default.svc.cluster.local' } }],
    }] },
  },
  {
    name: 'ISTIO_MUTUAL -> mesh certificate over SDS',
    server: '  - { port: { number: 15443, name: mtls, protocol: HTTPS }, hosts: ["*"], tls: { mode: ISTIO_MUTUAL } }',
    expect: { filter_chains: [{ transport_socket: { typed_config: { common_tls_context: { tls_certificate_sds_secret_configs: [{ name: 'default' }], combined_validation_context: { validation_context_sds_secret_config: { name: 'ROOTCA' } } } } } }] },
  },
  {
    name: 'HTTP -> RDS http.PORT',
    server: '  - { port: { number: 8080, name: http, protocol: HTTP }, hosts: ["*"] }',
    expect: { name: '0.0.0.0_8080', filter_chains: [{ filters: [{ typed_config: { rds: { route_config_name: 'http.8080' } } }] }] },
  },
];

for (const c of gatewayCases) {
  test(`lds gateway: ${c.name}`, () => {
    const all = listeners(gatewayProxy(), gateway(c.server));
    assert.equal(all.size, 1);
    assert.partialDeepStrictEqual([...all.values()][0], c.expect);
  });
}

test('rds gateway: VirtualService hosts bound to the server become virtual hosts', () => {
  const push = pushOf(gateway('  - { port: { number: 8080, name: http, protocol: HTTP }, hosts: ["*.example.com"] }'));
  const [rc] = gens.get(TypeUrl.RouteConfiguration)!.generate(gatewayProxy(), push, { full: true });
  assertValidEnvoy(TypeUrl.RouteConfiguration, [rc!]);
  assert.partialDeepStrictEqual(rc!.value, { name: 'http.8080', virtual_hosts: [{ name: 'reviews.example.com:8080', domains: ['reviews.example.com', 'reviews.example.com:8080'], routes: [{ route: { cluster: 'outbound|9080||reviews.default.svc.cluster.local' } }] }] });
});

test('rds gateway: no bound VirtualService -> 404 blackhole virtual host', () => {
  const push = pushOf(gateway('  - { port: { number: 8080, name: http, protocol: HTTP }, hosts: ["other.example.org"] }'));
  const [rc] = gens.get(TypeUrl.RouteConfiguration)!.generate(gatewayProxy(), push, { full: true });
  assert.partialDeepStrictEqual(rc!.value, { virtual_hosts: [{ name: 'blackhole:8080', routes: [{ direct_response: { status: 404 } }] }] });
});

test('grpc: API listeners named host:port whose RDS has the same name; route domains include host and host:port', () => {
  const push = pushOf([]);
  const name = 'reviews.default.svc.cluster.local:9080';
  const ls = gens.get(TypeUrl.Listener)!.generate(grpcProxy(), push, { full: true, names: [name, 'nope.default.svc.cluster.local:1'] });
  assert.deepEqual(ls.map((l) => l.name), [name]);
  assertValidEnvoy(TypeUrl.Listener, ls);
  assert.partialDeepStrictEqual(ls[0]!.value, { name, api_listener: { api_listener: { rds: { route_config_name: name, config_source: { ads: {} } } } } });
  const filters = (ls[0]!.value as { api_listener: { api_listener: { http_filters: { name: string }[] } } }).api_listener.api_listener.http_filters;
  assert.equal(filters.at(-1)!.name, 'envoy.filters.http.router');
  const [rc] = gens.get(TypeUrl.RouteConfiguration)!.generate(grpcProxy(), push, { full: true, names: [name] });
  assertValidEnvoy(TypeUrl.RouteConfiguration, [rc!]);
  const domains = (rc!.value as { virtual_hosts: { domains: string[] }[] }).virtual_hosts[0]!.domains;
  for (const d of ['reviews.default.svc.cluster.local', name, 'reviews', 'reviews:9080']) assert.ok(domains.includes(d), d);
});

test('grpc: a short target name resolves in the client namespace', () => {
  const ls = gens.get(TypeUrl.Listener)!.generate(grpcProxy(), pushOf([]), { full: true, names: ['reviews:9080'] });
  assert.partialDeepStrictEqual(ls[0]!.value, { name: 'reviews:9080', api_listener: { api_listener: { rds: { route_config_name: 'reviews.default.svc.cluster.local:9080' } } } });
});
