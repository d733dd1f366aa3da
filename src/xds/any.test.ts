// Any packing against the real Envoy protos: round trips, nested `@type`
// Anys, and errors that name the offending field.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADS_PROTO_FILES, ADS_SERVICE, TypeUrl, loadXdsProtos, packJsonAny, packMessage, unpackJsonAny, unpackMessage } from './index.ts';

const listener = {
  name: 'virtualOutbound',
  address: { socket_address: { address: '0.0.0.0', port_value: 15001 } },
  filter_chains: [
    { filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TypeUrl.TcpProxy, stat_prefix: 'PassthroughCluster', cluster: 'PassthroughCluster' } }] },
  ],
};

test('an Envoy message round-trips, nested Anys included', () => {
  const any = packMessage(TypeUrl.Listener, listener);
  assert.equal(any.type_url, TypeUrl.Listener);
  const back = unpackMessage<{ name: string; address: { socket_address: { port_value: number } }; filter_chains: Array<{ filters: Array<{ typed_config: { type_url: string; value: Uint8Array } }> }> }>(any);
  assert.equal(back.name, 'virtualOutbound');
  assert.equal(back.address.socket_address.port_value, 15001);
  const inner = back.filter_chains[0].filters[0].typed_config;
  assert.equal(inner.type_url, TypeUrl.TcpProxy);
  assert.equal(unpackMessage<{ cluster: string }>(inner).cluster, 'PassthroughCluster');
});

const bad: Array<[string, object, RegExp]> = [
  ['unknown top-level field', { name: 'l', bogus: 1 }, /Listener\.bogus: envoy\.config\.listener\.v3\.Listener has no such field/],
  ['wrong scalar type', { name: 5 }, /Listener: name: string expected/],
  ['unknown field inside a nested Any', { name: 'l', filter_chains: [{ filters: [{ name: 'f', typed_config: { '@type': TypeUrl.TcpProxy, clustr: 'x' } }] }] }, /filter_chains\[0\]\.filters\[0\]\.typed_config\.clustr/],
  ['unknown @type', { name: 'l', filter_chains: [{ filters: [{ name: 'f', typed_config: { '@type': 'type.googleapis.com/no.Such' } }] }] }, /@type type\.googleapis\.com\/no\.Such/],
];
for (const [name, message, error] of bad) {
  test(`packMessage rejects: ${name}`, () => {
    assert.throws(() => packMessage(TypeUrl.Listener, message), error);
  });
}

test('JSON Anys keep the given type URL and content', () => {
  const obj = { kind: 'VirtualService', metadata: { name: 'reviews' }, spec: { hosts: ['reviews'] } };
  const any = packJsonAny('networking.istio.io/v1/VirtualService', obj);
  assert.equal(any.type_url, 'networking.istio.io/v1/VirtualService');
  assert.deepEqual(unpackJsonAny(any), obj);
});

test('proto sets are loaded once and expose the ADS service', () => {
  const a = loadXdsProtos(ADS_PROTO_FILES);
  assert.equal(loadXdsProtos([...ADS_PROTO_FILES]), a);
  const service = a.serviceDefinition(ADS_SERVICE);
  assert.equal(service.StreamAggregatedResources.path, '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources');
  assert.throws(() => a.service('no.such.Service'), /no service no\.such\.Service/);
});

test('packMessage takes Envoy JSON forms: enum names and duration strings, also inside typed_config', () => {
  const any = packMessage('type.googleapis.com/envoy.config.cluster.v3.Cluster', { name: 'c', type: 'EDS', connect_timeout: '1.5s', eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' } } });
  const cluster = unpackMessage<{ type: string; connect_timeout: { seconds: string; nanos: number }; eds_cluster_config: { eds_config: { resource_api_version: string } } }>(any);
  assert.equal(cluster.type, 'EDS');
  assert.deepEqual(cluster.connect_timeout, { seconds: '1', nanos: 500_000_000 });
  assert.equal(cluster.eds_cluster_config.eds_config.resource_api_version, 'V3');
  const hcm = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
  assert.throws(
    () => packMessage('type.googleapis.com/envoy.config.listener.v3.Listener', { name: 'l', filter_chains: [{ filters: [{ name: 'h', typed_config: { '@type': hcm, codec_type: 'SOMETIMES' } }] }] }),
    /Listener\.filter_chains\[0\]\.filters\[0\]\.typed_config\.codec_type: unknown enum value "SOMETIMES"; allowed: AUTO, HTTP1, HTTP2, HTTP3/,
  );
  assert.throws(() => packMessage('type.googleapis.com/envoy.config.cluster.v3.Cluster', { name: 'c', connect_timeout: '1m' }), /Cluster\.connect_timeout: invalid duration "1m"/);
});
