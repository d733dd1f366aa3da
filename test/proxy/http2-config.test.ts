// Table tests for the HTTP/2 and gRPC parts of config decoding: the
// upstream protocol a Cluster selects, http2_protocol_options limits and
// their errors, the HCM codec_type, and the grpc-timeout arithmetic of a
// route with max_stream_duration.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeCluster, decodeJson, decodeRouteConfiguration } from '../../src/proxy/index.ts';
import { defaultExtensions } from '../../src/proxy/extensions.ts';
import { StatsStore } from '../../src/proxy/stats.ts';
import { ClusterManager } from '../../src/proxy/upstream/cluster-manager.ts';
import { parseGrpcTimeout, routeTimeoutMs } from '../../src/proxy/http/grpc.ts';
import type { ClusterAction } from '../../src/proxy/config/route-config.ts';
import { HCM, ROUTER } from './helpers.ts';

const CLUSTER = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
const HPO = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const hpo = (o: Record<string, unknown>): Record<string, unknown> => ({ typed_extension_protocol_options: { [HPO]: { '@type': `type.googleapis.com/${HPO}`, ...o } } });
const cluster = (extra: Record<string, unknown>) => decodeCluster(decodeJson(CLUSTER, { name: 'c', type: 'EDS', eds_cluster_config: {}, ...extra }, 'Cluster'));

const protocolCases: Array<[string, Record<string, unknown>, string, number]> = [
  ['no options: HTTP/1.1', {}, 'http1', 2147483647],
  ['explicit http2_protocol_options', hpo({ explicit_http_config: { http2_protocol_options: { max_concurrent_streams: 9 } } }), 'http2', 9],
  ['explicit http_protocol_options', hpo({ explicit_http_config: { http_protocol_options: {} } }), 'http1', 2147483647],
  ['use_downstream_protocol_config', hpo({ use_downstream_protocol_config: { http2_protocol_options: { max_concurrent_streams: 3 } } }), 'downstream', 3],
  ['auto_config (plaintext: HTTP/1.1 until TLS negotiates h2)', hpo({ auto_config: {} }), 'auto', 2147483647],
  ['legacy cluster.http2_protocol_options', { http2_protocol_options: { max_concurrent_streams: 4 } }, 'http2', 4],
  ['legacy protocol_selection USE_DOWNSTREAM_PROTOCOL', { protocol_selection: 'USE_DOWNSTREAM_PROTOCOL' }, 'downstream', 2147483647],
];

for (const [name, extra, kind, streams] of protocolCases) {
  test(`upstream protocol: ${name}`, () => {
    const c = cluster(extra);
    assert.equal(c.httpProtocol?.kind, kind);
    assert.equal(c.httpProtocol?.http2.maxConcurrentStreams, streams);
  });
}

const rejected: Array<[string, Record<string, unknown>, RegExp]> = [
  ['HTTP/3 upstream', hpo({ explicit_http_config: { http3_protocol_options: {} } }), /explicit_http_config\.http3_protocol_options: HTTP\/3 upstreams are not supported/],
  ['window below 65535', hpo({ explicit_http_config: { http2_protocol_options: { initial_stream_window_size: 1000 } } }), /initial_stream_window_size: 1000 is not in \[65535, 2147483647\]/],
  ['no protocol chosen', hpo({}), /one of explicit_http_config, use_downstream_protocol_config or auto_config is required/],
];

for (const [name, extra, error] of rejected) {
  test(`Cluster rejected: ${name}`, () => {
    assert.throws(() => cluster(extra), error);
  });
}

test('HCM codec_type HTTP3 is rejected naming the field; HTTP2 is accepted', () => {
  const registry = defaultExtensions();
  const stats = new StatsStore();
  const ctx = { clusters: new ClusterManager(stats), stats, routes: { get: () => undefined }, registry };
  const ext = registry.get('network', HCM, 'f');
  const hcm = (codec: string): Record<string, unknown> =>
    decodeJson(HCM, { stat_prefix: 's', codec_type: codec, route_config: { name: 'r' }, http_filters: [{ name: 'router', typed_config: { '@type': ROUTER } }] }, 'hcm');
  assert.throws(() => ext.create(hcm('HTTP3'), ctx, 'hcm', 'f'), /hcm\.codec_type: HTTP3 is not supported/);
  const f = ext.create(hcm('HTTP2'), ctx, 'hcm', 'f');
  f.close();
});

const grpcTimeouts: Array<[string, number | undefined]> = [
  ['100m', 100],
  ['5S', 5000],
  ['2M', 120_000],
  ['1H', 3_600_000],
  ['1500u', 2],
  ['10n', 1],
  ['123456789S', undefined],
  ['10x', undefined],
  ['m', undefined],
];

for (const [value, ms] of grpcTimeouts) {
  test(`grpc-timeout "${value}" -> ${ms}`, () => assert.equal(parseGrpcTimeout(value), ms));
}

function action(routeExtra: Record<string, unknown>): ClusterAction {
  const rc = decodeJson('type.googleapis.com/envoy.config.route.v3.RouteConfiguration', { name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c', ...routeExtra } }] }] }, 'rc');
  return decodeRouteConfiguration(rc).virtualHosts[0].routes[0].action as ClusterAction;
}

const grpc = { 'content-type': 'application/grpc' };
const timeoutCases: Array<[string, Record<string, unknown>, Record<string, string>, number]> = [
  ['no max_stream_duration: route timeout', { timeout: '3s' }, { ...grpc, 'grpc-timeout': '100m' }, 3000],
  ['header max 0: grpc-timeout uncapped', { timeout: '3s', max_stream_duration: { grpc_timeout_header_max: '0s' } }, { ...grpc, 'grpc-timeout': '10S' }, 10_000],
  ['header max caps grpc-timeout', { max_stream_duration: { grpc_timeout_header_max: '1s' } }, { ...grpc, 'grpc-timeout': '10S' }, 1000],
  ['grpc-timeout below the max', { max_stream_duration: { grpc_timeout_header_max: '1s' } }, { ...grpc, 'grpc-timeout': '250m' }, 250],
  ['offset subtracted', { max_stream_duration: { grpc_timeout_header_max: '0s', grpc_timeout_header_offset: '0.05s' } }, { ...grpc, 'grpc-timeout': '250m' }, 200],
  ['no grpc-timeout header: route timeout', { timeout: '2s', max_stream_duration: { grpc_timeout_header_max: '1s' } }, grpc, 2000],
  ['not gRPC: route timeout', { timeout: '2s', max_stream_duration: { grpc_timeout_header_max: '1s' } }, { 'grpc-timeout': '100m' }, 2000],
];

for (const [name, routeExtra, headers, ms] of timeoutCases) {
  test(`route timeout: ${name}`, () => assert.equal(routeTimeoutMs(action(routeExtra), headers), ms));
}
