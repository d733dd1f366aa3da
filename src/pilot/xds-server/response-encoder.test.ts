// The hand-written response encoder against protobufjs: every response the
// ADS server writes decodes to the same message as the generic encoding.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadXdsProtos, packMessage, TypeUrl } from '../../xds/index.ts';
import type { DeltaDiscoveryResponse, DiscoveryResponse } from '../../xds/index.ts';
import { encodeDeltaDiscoveryResponse, encodeDiscoveryResponse } from './response-encoder.ts';

const protos = loadXdsProtos();
const Sotw = protos.lookupType('envoy.service.discovery.v3.DiscoveryResponse');
const Delta = protos.lookupType('envoy.service.discovery.v3.DeltaDiscoveryResponse');
const decode = (type: typeof Sotw, bytes: Uint8Array): unknown => type.toObject(type.decode(bytes), { longs: String, enums: String, bytes: String, defaults: true });

const route = packMessage(TypeUrl.RouteConfiguration, { name: '9080', virtual_hosts: [{ name: 'r:9080', domains: ['r', 'r:9080', 'ünïcode'], routes: [{ match: { prefix: '/' }, route: { cluster: 'outbound|9080||r' } }] }] });
const big = packMessage(TypeUrl.ClusterLoadAssignment, { cluster_name: 'c', endpoints: [{ lb_endpoints: Array.from({ length: 3000 }, (_, i) => ({ endpoint: { address: { socket_address: { address: `10.0.${i >> 8}.${i & 255}`, port_value: 80 } } } })) }] });

const sotwCases: { name: string; response: DiscoveryResponse }[] = [
  { name: 'empty', response: { version_info: '', resources: [], type_url: TypeUrl.Listener, nonce: '1' } },
  { name: 'one resource', response: { version_info: '7.3', resources: [route], type_url: TypeUrl.RouteConfiguration, nonce: 'a1', control_plane: { identifier: 'pilot' } } },
  { name: 'a large resource (multi-byte lengths)', response: { version_info: 'v', resources: [big, route], type_url: TypeUrl.ClusterLoadAssignment, nonce: 'zz', control_plane: { identifier: 'pilot' } } },
];

for (const c of sotwCases) {
  test(`SotW response encodes as protobufjs does: ${c.name}`, () => {
    const ours = encodeDiscoveryResponse(c.response);
    assert.ok(ours);
    assert.deepEqual(decode(Sotw, ours), decode(Sotw, Sotw.encode(Sotw.fromObject(c.response)).finish()));
  });
}

const deltaCases: { name: string; response: DeltaDiscoveryResponse }[] = [
  { name: 'removals only, one empty name', response: { system_version_info: '2', resources: [], removed_resources: ['a', '', 'ç'], type_url: TypeUrl.ClusterLoadAssignment, nonce: '3' } },
  { name: 'resources', response: { system_version_info: '2', resources: [{ name: '9080', version: 'abc', resource: route }, { name: 'c', version: 'def', resource: big }], removed_resources: [], type_url: TypeUrl.RouteConfiguration, nonce: '4', control_plane: { identifier: 'pilot' } } },
];

for (const c of deltaCases) {
  test(`delta response encodes as protobufjs does: ${c.name}`, () => {
    const ours = encodeDeltaDiscoveryResponse(c.response);
    assert.ok(ours);
    assert.deepEqual(decode(Delta, ours), decode(Delta, Delta.encode(Delta.fromObject(c.response)).finish()));
  });
}

test('a response with a field the encoder does not write is left to the generic serializer', () => {
  const response = { version_info: '1', resources: [], type_url: TypeUrl.Cluster, nonce: '1', canary: true } as DiscoveryResponse;
  assert.equal(encodeDiscoveryResponse(response), undefined);
});
