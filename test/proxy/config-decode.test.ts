// Config at the edge: Envoy v3 resources decode into domain objects or are
// rejected with a reason naming the resource and field (the NACK text).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExtensionRegistry, ProxyErrorCode, StatsStore, decodeCluster, decodeJson, decodeRouteConfiguration, defaultExtensions, parseBootstrap } from '../../src/proxy/index.ts';
import { decodeListener } from '../../src/proxy/config/listener-config.ts';
import { ClusterManager } from '../../src/proxy/upstream/cluster-manager.ts';
import { routerExtension } from '../../src/proxy/filters/http/router/router.ts';
import { TypeUrl } from '../../src/xds/index.ts';
import { HCM, ROUTER, hcmListener } from './helpers.ts';

const rc = (routes: unknown[], extra: Record<string, unknown> = {}): unknown => ({ name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routes }], ...extra });

const badRoutes: Array<[string, unknown, RegExp]> = [
  ['route without an action', rc([{ match: { prefix: '/' } }]), /virtual_hosts\[0\]\.routes\[0\]: unsupported route action/],
  ['invalid RE2 regex', rc([{ match: { safe_regex: { regex: '(a' } }, route: { cluster: 'c' } }]), /routes\[0\]\.match\.safe_regex\.regex: invalid RE2 regex "\(a"/],
  ['weighted clusters with no weight', rc([{ match: { prefix: '/' }, route: { weighted_clusters: { clusters: [{ name: 'a' }] } } }]), /weighted_clusters: needs at least one cluster with a positive weight/],
  ['duplicate domain', { name: 'r', virtual_hosts: [{ name: 'a', domains: ['x'] }, { name: 'b', domains: ['x'] }] }, /virtual_hosts\[1\]\.domains: domain "x" is already used/],
  ['virtual host without domains', { name: 'r', virtual_hosts: [{ name: 'a', domains: [] }] }, /virtual_hosts\[0\]\.domains: at least one domain is required/],
  ['path_separated_prefix ending in /', rc([{ match: { path_separated_prefix: '/a/' }, route: { cluster: 'c' } }]), /path_separated_prefix: "\/a\/" must start with/],
  ['header mutation of :path', rc([{ match: { prefix: '/' }, route: { cluster: 'c' }, request_headers_to_add: [{ header: { key: ':path', value: 'x' } }] }]), /request_headers_to_add\[0\]\.header\.key: ":path" may not be modified/],
  ['direct response status out of range', rc([{ match: { prefix: '/' }, direct_response: { status: 99 } }]), /direct_response\.status: 99 is not in \[200, 600\)/],
];
for (const [name, config, error] of badRoutes) {
  test(`RouteConfiguration rejected: ${name}`, () => {
    assert.throws(() => decodeRouteConfiguration(decodeJson(TypeUrl.RouteConfiguration, config, 'RouteConfiguration')), error);
  });
}

const badClusters: Array<[string, unknown, RegExp]> = [
  ['unknown field', { name: 'c', bogus: 1 }, /RouteConfiguration|Cluster\.bogus: envoy\.config\.cluster\.v3\.Cluster has no such field/],
  ['static without endpoints', { name: 'c', type: 'STATIC' }, /Cluster "c"\.load_assignment: required for a STATIC cluster/],
  ['unsupported lb policy', { name: 'c', type: 'EDS', eds_cluster_config: {}, lb_policy: 'CLUSTER_PROVIDED' }, /lb_policy CLUSTER_PROVIDED is not supported/],
  ['maglev table size not prime', { name: 'c', type: 'EDS', eds_cluster_config: {}, lb_policy: 'MAGLEV', maglev_lb_config: { table_size: 1000 } }, /maglev_lb_config.table_size: 1000 must be a prime number/],
  ['health check without interval', { name: 'c', type: 'EDS', eds_cluster_config: {}, health_checks: [{ timeout: '1s', unhealthy_threshold: 1, healthy_threshold: 1, tcp_health_check: {} }] }, /health_checks\[0\].interval: is required/],
  ['bad duration', { name: 'c', connect_timeout: '5 seconds' }, /connect_timeout: invalid duration "5 seconds"/],
  ['endpoint port 0', { name: 'c', type: 'STATIC', load_assignment: { endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } } }] }] } }, /lb_endpoints\[0\]\.endpoint\.address\.socket_address\.port_value: invalid port 0/],
];
for (const [name, config, error] of badClusters) {
  test(`Cluster rejected: ${name}`, () => {
    assert.throws(() => decodeCluster(decodeJson(TypeUrl.Cluster, config, 'Cluster')), error);
  });
}

test('Cluster defaults follow Envoy', () => {
  const c = decodeCluster(decodeJson(TypeUrl.Cluster, { name: 'c', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } } }, 'Cluster'));
  assert.equal(c.connectTimeoutMs, 5000);
  assert.equal(c.lbPolicy, 'ROUND_ROBIN');
  assert.deepEqual(c.circuitBreakers, { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 });
  assert.equal(c.edsServiceName, 'c');
});

function context(): { clusters: ClusterManager; stats: StatsStore; routes: { get: () => undefined }; registry: ExtensionRegistry } {
  const stats = new StatsStore();
  return { clusters: new ClusterManager(stats), stats, routes: { get: () => undefined }, registry: defaultExtensions() };
}

test('an unknown typed_config is an error naming the type URL and where it sits', () => {
  const l = hcmListener('l', rc([{ match: { prefix: '/' }, route: { cluster: 'c' } }]));
  const listener = decodeJson(TypeUrl.Listener, l, 'Listener');
  const registry = new ExtensionRegistry().register(routerExtension);
  assert.throws(
    () => decodeListener(listener, { ...context(), registry }),
    (err: Error & { code?: string }) => err.code === ProxyErrorCode.UNKNOWN_EXTENSION && err.message.includes(HCM) && err.message.includes('filter_chains[0].filters[0]'),
  );
});

test('an HCM whose last HTTP filter is not the router is rejected', () => {
  const l = hcmListener('l', rc([{ match: { prefix: '/' }, route: { cluster: 'c' } }]), { httpFilters: [] });
  const tc = (l.filter_chains as any)[0].filters[0].typed_config;
  tc.http_filters = [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }, { name: 'fault', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault' } }];
  assert.throws(() => decodeListener(decodeJson(TypeUrl.Listener, l, 'Listener'), context()), /http_filters: the last HTTP filter must be a terminal filter/);
});

test('registering a type URL twice is a boot error', () => {
  assert.throws(() => defaultExtensions().register(routerExtension), (err: Error & { code?: string }) => err.code === ProxyErrorCode.DUPLICATE_EXTENSION && err.message.includes(TypeUrl.Router));
});

test('a YAML bootstrap decodes with JSON spellings (durations, wrappers, @type)', () => {
  const b = parseBootstrap(`
node: { id: sidecar~1, cluster: c }
admin: { address: { socket_address: { address: 127.0.0.1, port_value: 0 } } }
static_resources:
  clusters:
  - name: a
    connectTimeout: 0.25s
    type: STATIC
    circuit_breakers: { thresholds: [ { max_requests: 7 } ] }
    load_assignment: { cluster_name: a, endpoints: [ { lb_endpoints: [ { endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 1 } } } } ] } ] }
`);
  const c = decodeCluster(b.static_resources.clusters[0]);
  assert.equal(c.connectTimeoutMs, 250);
  assert.equal(c.circuitBreakers.maxRequests, 7);
  assert.throws(() => parseBootstrap('static_resources: { listners: [] }', 'b.yaml'), /b\.yaml: Bootstrap\.static_resources\.listners: envoy\.config\.bootstrap\.v3\.Bootstrap\.StaticResources has no such field/);
});

test('a per-route fault config is validated with the route table', () => {
  const FAULT = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
  const bad = rc([{ match: { prefix: '/' }, route: { cluster: 'c' }, typed_per_filter_config: { 'envoy.filters.http.fault': { '@type': FAULT, abort: { http_status: 99 } } } }]);
  const registry = defaultExtensions();
  assert.throws(
    () => decodeRouteConfiguration(decodeJson(TypeUrl.RouteConfiguration, bad, 'RouteConfiguration'), 'RouteConfiguration', (t, c, p) => registry.validatePerRoute(t, c, p)),
    /routes\[0\]\.typed_per_filter_config\[envoy\.filters\.http\.fault\]\.abort\.http_status: 99 is not in \[200, 600\)/,
  );
});
