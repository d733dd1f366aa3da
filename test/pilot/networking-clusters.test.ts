// Table tests for CDS: cluster types by resolution, the special clusters,
// subsets, and each DestinationRule traffic-policy field -> its Cluster field.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TypeUrl } from '../../src/xds/index.ts';
import { createGenerators } from '../../src/pilot/networking/index.ts';
import { buildOutboundClusters } from '../../src/pilot/networking/cluster-builder.ts';
import type { Service } from '../../src/pilot/model/index.ts';
import { assertValidEnvoy, bookinfoRegistry, endpointsOf, parseConfig, pushOf, service, sidecarProxy, workload } from './networking-fixtures.ts';

const REVIEWS = 'reviews.default.svc.cluster.local';

/** Clusters (string enums) for the sidecar, every one checked by packMessage. */
function clusters(yaml: string, extra: Service[] = []): Map<string, Record<string, unknown>> {
  const reg = bookinfoRegistry();
  reg.services.push(...extra);
  for (const s of extra) reg.endpoints.set(s.hostname, endpointsOf(s, [workload(`${s.hostname}-1`, '10.1.0.1', { app: 'x' })]));
  const push = pushOf(yaml ? parseConfig(yaml) : [], reg);
  const built = buildOutboundClusters(push, sidecarProxy());
  assertValidEnvoy(TypeUrl.Cluster, built.map((c) => ({ name: c.name, value: c.value })));
  return new Map(built.map((c) => [c.name, c.value]));
}

function dr(trafficPolicy: string, subsets = ''): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: default }
spec:
  host: reviews
  trafficPolicy: ${trafficPolicy}
${subsets}`;
}

test('cds: cluster type follows the service resolution', () => {
  const dns = service('api', { hostname: 'api.example.com', resolution: 'DNS', ports: [{ name: 'https', port: 443, protocol: 'TLS' }], meshExternal: true });
  const rr = service('rr', { hostname: 'rr.example.com', resolution: 'DNS_ROUND_ROBIN', ports: [{ name: 'tcp', port: 5432, protocol: 'TCP' }] });
  const none = service('none', { hostname: 'none.example.com', resolution: 'NONE', ports: [{ name: 'tcp', port: 6000, protocol: 'TCP' }] });
  const c = clusters('', [dns, rr, none]);
  assert.partialDeepStrictEqual(c.get(`outbound|9080||${REVIEWS}`), { type: 'EDS', eds_cluster_config: { service_name: `outbound|9080||${REVIEWS}`, eds_config: { ads: {} } } });
  assert.partialDeepStrictEqual(c.get('outbound|443||api.example.com'), { type: 'STRICT_DNS', load_assignment: { cluster_name: 'outbound|443||api.example.com' } });
  assert.partialDeepStrictEqual(c.get('outbound|5432||rr.example.com'), { type: 'LOGICAL_DNS' });
  assert.partialDeepStrictEqual(c.get('outbound|6000||none.example.com'), { type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED' });
});

test('cds: special clusters and inbound clusters for the sidecar', () => {
  const push = pushOf([]);
  const out = createGenerators().get(TypeUrl.Cluster)!.generate(sidecarProxy(), push, { full: true });
  const names = out.map((c) => c.name);
  for (const n of ['PassthroughCluster', 'BlackHoleCluster', 'InboundPassthroughClusterIpv4', 'inbound|9080||']) assert.ok(names.includes(n), n);
  assert.partialDeepStrictEqual(out.find((c) => c.name === 'PassthroughCluster')!.value, { type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED' });
  assert.ok(out.find((c) => c.name === 'BlackHoleCluster')!.cacheKey, 'special clusters are shared by cache key');
});

test('cds: one cluster per DestinationRule subset', () => {
  const c = clusters(dr('{ loadBalancer: { simple: RANDOM } }', '  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 }, trafficPolicy: { loadBalancer: { simple: LEAST_REQUEST } } }]\n'));
  assert.partialDeepStrictEqual(c.get(`outbound|9080|v1|${REVIEWS}`), { lb_policy: 'RANDOM' });
  assert.partialDeepStrictEqual(c.get(`outbound|9080|v2|${REVIEWS}`), { lb_policy: 'LEAST_REQUEST' }, 'subset policy overrides');
});

const policyCases: { name: string; policy: string; expect: Record<string, unknown> }[] = [
  { name: 'simple LEAST_CONN -> LEAST_REQUEST', policy: '{ loadBalancer: { simple: LEAST_CONN } }', expect: { lb_policy: 'LEAST_REQUEST' } },
  { name: 'consistentHash ringHash -> RING_HASH', policy: '{ loadBalancer: { consistentHash: { httpHeaderName: x, ringHash: { minimumRingSize: 2048 } } } }', expect: { lb_policy: 'RING_HASH', ring_hash_lb_config: { minimum_ring_size: { value: 2048 } } } },
  { name: 'consistentHash maglev -> MAGLEV', policy: '{ loadBalancer: { consistentHash: { useSourceIp: true, maglev: { tableSize: 65537 } } } }', expect: { lb_policy: 'MAGLEV', maglev_lb_config: { table_size: { value: 65537 } } } },
  {
    name: 'localityLbSetting distribute -> locality_weighted_lb_config',
    policy: '{ loadBalancer: { localityLbSetting: { enabled: true, distribute: [{ from: "us-east1/*", to: { "us-east1/*": 80, "us-west1/*": 20 } }] } } }',
    expect: { common_lb_config: { locality_weighted_lb_config: {} } },
  },
  {
    name: 'connectionPool -> circuit_breakers, connect_timeout, keepalive, HTTP options',
    policy: '{ connectionPool: { tcp: { maxConnections: 100, connectTimeout: 30ms, tcpKeepalive: { time: 7200s, interval: 75s } }, http: { http1MaxPendingRequests: 10, http2MaxRequests: 1000, maxRetries: 3, maxRequestsPerConnection: 1, idleTimeout: 60s } } }',
    expect: {
      connect_timeout: { seconds: 0, nanos: 30000000 },
      circuit_breakers: { thresholds: [{ max_connections: { value: 100 }, max_pending_requests: { value: 10 }, max_requests: { value: 1000 }, max_retries: { value: 3 }, track_remaining: true }] },
      upstream_connection_options: { tcp_keepalive: { keepalive_time: { value: 7200 }, keepalive_interval: { value: 75 } } },
      typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { common_http_protocol_options: { idle_timeout: { seconds: 60 }, max_requests_per_connection: { value: 1 } }, explicit_http_config: { http_protocol_options: {} } } },
    },
  },
  {
    name: 'outlierDetection -> outlier_detection and panic threshold',
    policy: '{ outlierDetection: { consecutive5xxErrors: 7, consecutiveGatewayErrors: 3, interval: 5m, baseEjectionTime: 15m, maxEjectionPercent: 50, minHealthPercent: 30 } }',
    expect: {
      outlier_detection: { consecutive_5xx: { value: 7 }, enforcing_consecutive_5xx: { value: 100 }, consecutive_gateway_failure: { value: 3 }, interval: { seconds: 300 }, base_ejection_time: { seconds: 900 }, max_ejection_percent: { value: 50 } },
      common_lb_config: { healthy_panic_threshold: { value: 30 } },
    },
  },
  {
    name: 'tls ISTIO_MUTUAL -> SDS default/ROOTCA from sds-grpc, Istio ALPN and SNI',
    policy: '{ tls: { mode: ISTIO_MUTUAL } }',
    expect: { transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: {
      '@type': TypeUrl.UpstreamTlsContext,
      sni: `outbound_.9080_._.${REVIEWS}`,
      common_tls_context: {
        tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: { api_config_source: { grpc_services: [{ envoy_grpc: { cluster_name: 'sds-grpc' } }] } } }],
        combined_validation_context: { default_validation_context: { match_subject_alt_names: [{ exact: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews' }] }, validation_context_sds_secret_config: { name: 'ROOTCA' } },
        alpn_protocols: ['istio-peer-exchange', 'istio'],
      },
    } } },
  },
  {
    name: 'tls SIMPLE with files -> validation_context trusted_ca and sni',
    policy: '{ tls: { mode: SIMPLE, caCertificates: /etc/ca.pem, sni: reviews.example.com } }',
    expect: { transport_socket: { typed_config: { sni: 'reviews.example.com', common_tls_context: { validation_context: { trusted_ca: { filename: '/etc/ca.pem' } } } } } },
  },
  {
    name: 'tls MUTUAL with credentialName -> SDS secrets by that name',
    policy: '{ tls: { mode: MUTUAL, credentialName: reviews-client } }',
    expect: { transport_socket: { typed_config: { common_tls_context: {
      tls_certificate_sds_secret_configs: [{ name: 'reviews-client' }],
      combined_validation_context: { validation_context_sds_secret_config: { name: 'reviews-client-cacert' } },
    } } } },
  },
  {
    name: 'portLevelSettings override for their port',
    policy: '{ loadBalancer: { simple: RANDOM }, portLevelSettings: [{ port: { number: 9080 }, loadBalancer: { simple: ROUND_ROBIN } }] }',
    expect: { lb_policy: 'ROUND_ROBIN' },
  },
];

for (const c of policyCases) {
  test(`cds: ${c.name}`, () => {
    assert.partialDeepStrictEqual(clusters(dr(c.policy)).get(`outbound|9080||${REVIEWS}`), c.expect);
  });
}

test('cds: portLevelSettings for another port leave this one alone', () => {
  const c = clusters(dr('{ loadBalancer: { simple: RANDOM }, portLevelSettings: [{ port: { number: 8080 }, loadBalancer: { simple: ROUND_ROBIN } }] }'));
  assert.equal(c.get(`outbound|9080||${REVIEWS}`)!.lb_policy, 'RANDOM');
});

test('cds: no TLS setting means no transport socket (plaintext)', () => {
  assert.equal(clusters('').get(`outbound|9080||${REVIEWS}`)!.transport_socket, undefined);
});

test('cds: proxyless gRPC clusters are EDS over ADS with subsets', () => {
  const push = pushOf(parseConfig(dr('{ loadBalancer: { simple: ROUND_ROBIN } }', '  subsets: [{ name: v1, labels: { version: v1 } }]\n')));
  const out = createGenerators().get(TypeUrl.Cluster)!.generate({ ...sidecarProxy(), generator: 'grpc' }, push, { full: true, names: [`outbound|9080|v1|${REVIEWS}`] });
  assert.equal(out.length, 1);
  assertValidEnvoy(TypeUrl.Cluster, out);
  assert.partialDeepStrictEqual(out[0]!.value, { type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } } });
});

test('cds/eds: auto mTLS sends ISTIO_MUTUAL only to endpoints labelled tlsMode=istio', () => {
  const reg = bookinfoRegistry();
  const reviews = reg.services.find((s) => s.hostname === REVIEWS)!;
  reg.endpoints.set(REVIEWS, endpointsOf(reviews, [
    workload('meshed', '10.0.0.3', { app: 'reviews', 'security.istio.io/tlsMode': 'istio' }),
    workload('plain', '10.0.0.4', { app: 'reviews' }),
  ]));
  const push = pushOf([], reg);
  const gens = createGenerators();
  const [cluster] = gens.get(TypeUrl.Cluster)!.generate(sidecarProxy(), push, { full: true, names: [`outbound|9080||${REVIEWS}`] });
  assertValidEnvoy(TypeUrl.Cluster, [cluster!]);
  assert.partialDeepStrictEqual(cluster!.value, { transport_socket_matches: [{
    match: { fields: { tlsMode: { stringValue: 'istio' } } },
    transport_socket: { typed_config: { common_tls_context: { alpn_protocols: ['istio-peer-exchange', 'istio'] } } },
  }] });
  assert.equal(cluster!.value.transport_socket, undefined, 'the rest stay plaintext');
  const [cla] = gens.get(TypeUrl.ClusterLoadAssignment)!.generate(sidecarProxy(), push, { full: true, names: [`outbound|9080||${REVIEWS}`] });
  assertValidEnvoy(TypeUrl.ClusterLoadAssignment, [cla!]);
  const eps = (cla!.value as { endpoints: { lb_endpoints: { metadata?: unknown }[] }[] }).endpoints[0]!.lb_endpoints;
  assert.deepEqual(eps.map((e) => e.metadata !== undefined), [true, false]);
  // With auto mTLS off, no socket matches at all.
  const off = pushOf([], reg, { ...push.mesh, enableAutoMtls: false });
  assert.equal(gens.get(TypeUrl.Cluster)!.generate(sidecarProxy(), off, { full: true, names: [`outbound|9080||${REVIEWS}`] })[0]!.value.transport_socket_matches, undefined);
});
