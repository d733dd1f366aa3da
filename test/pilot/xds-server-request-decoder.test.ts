// The hand-written discovery request decoder (src/pilot/xds-server/request-decoder.ts):
// table-driven against protobufjs (what proto-loader decoded before),
// including messages no ordinary encoder writes (interleaved repeated fields,
// unknown fields of every wire type, merged message fields); then over real
// gRPC: ACKs recognized by their bytes, subscription changes (grown, shrunk,
// reordered, wildcard), NACKs with error_detail, a Node on every request, and
// delta requests.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TypeUrl, XDS_CONVERSION_OPTIONS, loadXdsProtos } from '../../src/xds/index.ts';
import type { DeltaDiscoveryRequest, DiscoveryRequest } from '../../src/xds/index.ts';
import { decodeDeltaDiscoveryRequest, decodeDiscoveryRequest } from '../../src/pilot/xds-server/request-decoder.ts';
import { CLUSTER_A, CLUSTER_B, basePush, deltaStream, endpoints, namesIn, nextOf, nodeOf, sotwStream, startPilot, waitFor } from './xds-server-helpers.ts';

const protos = loadXdsProtos();
const Sotw = protos.lookupType('envoy.service.discovery.v3.DiscoveryRequest');
const Delta = protos.lookupType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
const encode = (type: typeof Sotw, value: object): Buffer => Buffer.from(type.encode(type.fromObject(value)).finish());
const generic = (type: typeof Sotw, bytes: Buffer): Record<string, unknown> => type.toObject(type.decode(bytes), XDS_CONVERSION_OPTIONS) as Record<string, unknown>;

/** What the ADS server reads of a SotW request. */
function sotwView(r: DiscoveryRequest): unknown {
  return { version_info: r.version_info, node: r.node, resource_names: r.resource_names, type_url: r.type_url, response_nonce: r.response_nonce, error_detail: r.error_detail };
}

function deltaView(r: DeltaDiscoveryRequest): unknown {
  return {
    node: r.node,
    type_url: r.type_url,
    resource_names_subscribe: r.resource_names_subscribe,
    resource_names_unsubscribe: r.resource_names_unsubscribe,
    initial_resource_versions: { ...r.initial_resource_versions },
    response_nonce: r.response_nonce,
    error_detail: r.error_detail,
  };
}

// Raw protobuf pieces, for messages protobufjs would not write.
function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}
const str = (field: number, s: string): Buffer => Buffer.concat([varint((field << 3) | 2), varint(Buffer.byteLength(s)), Buffer.from(s)]);
const bytesField = (field: number, b: Buffer): Buffer => Buffer.concat([varint((field << 3) | 2), varint(b.length), b]);

const node = nodeOf();
const manyNames = Array.from({ length: 1000 }, (_, i) => `outbound|9080||svc-${i}.ns-${i % 10}.svc.cluster.local`);

const sotwCases: { name: string; bytes: Buffer }[] = [
  { name: 'empty message', bytes: Buffer.alloc(0) },
  { name: 'first request with a node', bytes: encode(Sotw, { node, type_url: TypeUrl.Cluster }) },
  { name: 'an ACK of 1000 names', bytes: encode(Sotw, { version_info: '7', resource_names: manyNames, type_url: TypeUrl.ClusterLoadAssignment, response_nonce: 'a1' }) },
  { name: 'names with *, an empty name and non-ASCII', bytes: encode(Sotw, { resource_names: ['*', '', 'ünï|cödé', CLUSTER_A], type_url: TypeUrl.Listener }) },
  { name: 'a NACK with error_detail', bytes: encode(Sotw, { version_info: '6', resource_names: [CLUSTER_A], type_url: TypeUrl.ClusterLoadAssignment, response_nonce: 'b', error_detail: { code: 3, message: 'bad endpoint' } }) },
  { name: 'resource_locators and dynamic_parameter_constraints are skipped', bytes: encode(Sotw, { type_url: TypeUrl.Cluster, resource_locators: [{ name: 'x' }], dynamic_parameter_constraints: { constraint: { key: 'k', value: 'v' } } }) },
  {
    name: 'names interleaved with other fields, unknown fields of every wire type, a repeated scalar (last wins)',
    bytes: Buffer.concat([
      str(3, 'a'),
      str(4, 'type.googleapis.com/old'),
      Buffer.concat([varint(99 << 3), Buffer.from([0x96, 0x01])]), // varint
      str(3, 'b'),
      Buffer.concat([varint((100 << 3) | 1), Buffer.alloc(8)]), // fixed64
      Buffer.concat([varint((101 << 3) | 5), Buffer.alloc(4)]), // fixed32
      Buffer.concat([varint((102 << 3) | 3), str(1, 'in a group'), varint((102 << 3) | 4)]), // group
      str(4, TypeUrl.ClusterLoadAssignment),
      str(3, 'c'),
    ]),
  },
];

for (const c of sotwCases) {
  test(`SotW request decodes as protobufjs does: ${c.name}`, () => {
    assert.deepEqual(sotwView(decodeDiscoveryRequest(c.bytes)), sotwView(generic(Sotw, c.bytes) as DiscoveryRequest));
  });
}

test('a message field sent in two parts is merged, as protobuf says (protobufjs keeps only the last part)', () => {
  const bytes = Buffer.concat([bytesField(2, str(1, 'sidecar~1.2.3.4~a.b~b.svc.cluster.local')), str(4, TypeUrl.Cluster), bytesField(2, str(2, 'cluster-x')), bytesField(6, str(2, 'bad')), bytesField(6, Buffer.from([0x08, 0x03]))]);
  const r = decodeDiscoveryRequest(bytes);
  assert.equal(r.node?.id, 'sidecar~1.2.3.4~a.b~b.svc.cluster.local');
  assert.equal(r.node?.cluster, 'cluster-x');
  assert.deepEqual({ code: r.error_detail?.code, message: r.error_detail?.message }, { code: 3, message: 'bad' });
});

test('equal resource_names bytes mean an equal list; other fields do not change them', () => {
  const ack = decodeDiscoveryRequest(encode(Sotw, { version_info: '1', resource_names: manyNames, type_url: TypeUrl.ClusterLoadAssignment, response_nonce: 'x' }));
  const later = decodeDiscoveryRequest(encode(Sotw, { version_info: '2', node, resource_names: manyNames, type_url: TypeUrl.ClusterLoadAssignment, response_nonce: 'yy' }));
  const reordered = decodeDiscoveryRequest(encode(Sotw, { resource_names: [manyNames[1], manyNames[0], ...manyNames.slice(2)], type_url: TypeUrl.ClusterLoadAssignment }));
  assert.ok(ack.namesBytes.equals(later.namesBytes));
  assert.ok(!ack.namesBytes.equals(reordered.namesBytes));
  // Interleaved entries are joined into the same encoding as contiguous ones.
  const interleaved = decodeDiscoveryRequest(Buffer.concat([str(3, 'a'), str(5, 'n'), str(3, 'b')]));
  assert.ok(interleaved.namesBytes.equals(decodeDiscoveryRequest(Buffer.concat([str(3, 'a'), str(3, 'b')])).namesBytes));
});

test('malformed requests throw (grpc-js ends the stream with INTERNAL)', () => {
  // protobufjs throws for these too, except that its Buffer reader cuts a truncated string short instead.
  const cases: { name: string; bytes: Buffer }[] = [
    { name: 'a truncated string', bytes: str(4, TypeUrl.Cluster).subarray(0, 10) },
    { name: 'a truncated varint', bytes: Buffer.from([0x22, 0x80]) },
    { name: 'a length past the end', bytes: Buffer.from([0x1a, 0x7f, 0x61]) },
    { name: 'wire type 7', bytes: Buffer.from([(5 << 3) | 7]) },
    { name: 'an unterminated group', bytes: Buffer.concat([varint((102 << 3) | 3), str(1, 'x')]) },
  ];
  for (const c of cases) {
    assert.throws(() => decodeDiscoveryRequest(c.bytes), Error, c.name);
    assert.throws(() => decodeDeltaDiscoveryRequest(c.bytes), Error, `delta: ${c.name}`);
  }
});

const deltaCases: { name: string; bytes: Buffer }[] = [
  { name: 'first request with node and initial versions', bytes: encode(Delta, { node, type_url: TypeUrl.ClusterLoadAssignment, resource_names_subscribe: [CLUSTER_A, CLUSTER_B], initial_resource_versions: { [CLUSTER_A]: 'h1', __proto__: 'h2', '': '' } }) },
  { name: 'an ACK', bytes: encode(Delta, { type_url: TypeUrl.Cluster, response_nonce: '3' }) },
  { name: 'a NACK', bytes: encode(Delta, { type_url: TypeUrl.Cluster, response_nonce: '4', error_detail: { code: 13, message: 'nope' } }) },
  { name: 'subscribe and unsubscribe with *', bytes: encode(Delta, { type_url: TypeUrl.Cluster, resource_names_subscribe: ['*', 'x'], resource_names_unsubscribe: ['y', 'ü'], resource_locators_subscribe: [{ name: 'z' }] }) },
  { name: 'a map entry without a value, unknown fields', bytes: Buffer.concat([str(2, TypeUrl.Cluster), bytesField(5, str(1, 'only-key')), Buffer.concat([varint(77 << 3), Buffer.from([1])])]) },
];

for (const c of deltaCases) {
  test(`delta request decodes as protobufjs does: ${c.name}`, () => {
    const expected = generic(Delta, c.bytes) as DeltaDiscoveryRequest;
    assert.deepEqual(deltaView(decodeDeltaDiscoveryRequest(c.bytes)), deltaView({ ...expected, initial_resource_versions: { ...expected.initial_resource_versions } }));
  });
}

// ---- over real gRPC --------------------------------------------------------------

const CLUSTER_C = 'outbound|80||c.default.svc.cluster.local';
const pushWithC = () => basePush('v1', { [TypeUrl.ClusterLoadAssignment]: [endpoints(CLUSTER_A, ['10.0.0.1', 8080]), endpoints(CLUSTER_B, ['10.0.0.2', 8080]), endpoints(CLUSTER_C, ['10.0.0.3', 8080])] });

test('SotW over gRPC: repeated ACKs (node on every request, as Envoy sends it) get no response; changed, reordered and shrunk subscriptions are seen; a NACK records its error', async (t) => {
  const pilot = await startPilot({ initialPush: pushWithC() });
  const s = sotwStream(pilot.port);
  t.after(() => {
    s.close();
    pilot.stop();
  });
  const eds = TypeUrl.ClusterLoadAssignment;
  const edsStatus = () => pilot.xds.proxyStatus()[0]!.types[eds]!;
  s.send({ node, type_url: eds, resource_names: [CLUSTER_A, CLUSTER_B] });
  let res = await nextOf(s, eds);
  assert.deepEqual(namesIn(res).sort(), [CLUSTER_A, CLUSTER_B]);
  // ACKs that repeat the names: recognized, answered with nothing.
  for (let i = 0; i < 3; i++) s.send({ node, version_info: res.version_info, response_nonce: res.nonce, type_url: eds, resource_names: [CLUSTER_A, CLUSTER_B] });
  await waitFor(() => pilot.xds.stats().acks === 3);
  assert.equal(edsStatus().state, 'SYNCED');
  assert.equal(pilot.xds.stats().responses, 1);

  // The same names in another order: the same subscription, no response.
  s.send({ node, version_info: res.version_info, response_nonce: res.nonce, type_url: eds, resource_names: [CLUSTER_B, CLUSTER_A] });
  await waitFor(() => pilot.xds.stats().acks === 4);
  assert.equal(pilot.xds.stats().responses, 1);

  // Grown: C is sent (a SotW EDS response carries what the proxy lacks).
  s.send({ node, version_info: res.version_info, response_nonce: res.nonce, type_url: eds, resource_names: [CLUSTER_A, CLUSTER_B, CLUSTER_C] });
  res = await nextOf(s, eds);
  assert.deepEqual(namesIn(res), [CLUSTER_C]);
  assert.deepEqual(edsStatus().names, [CLUSTER_A, CLUSTER_B, CLUSTER_C].sort());
  s.send({ node, version_info: res.version_info, response_nonce: res.nonce, type_url: eds, resource_names: [CLUSTER_A, CLUSTER_B, CLUSTER_C] });
  await waitFor(() => edsStatus().state === 'SYNCED');

  // Shrunk to one (with the nonce of the latest response): the watch follows; a later grow sends B again.
  s.send({ node, version_info: res.version_info, response_nonce: res.nonce, type_url: eds, resource_names: [CLUSTER_C] });
  await waitFor(() => edsStatus().names?.length === 1);
  assert.deepEqual(edsStatus().names, [CLUSTER_C]);
  const responses = pilot.xds.stats().responses;

  // A NACK of the latest response, repeating the names: NACKED with the text, no response.
  s.send({ node, version_info: res.version_info, response_nonce: res.nonce, type_url: eds, resource_names: [CLUSTER_C], error_detail: { code: 3, message: 'endpoint rejected' } });
  await waitFor(() => pilot.xds.stats().nacks === 1);
  assert.equal(edsStatus().state, 'NACKED');
  assert.equal(edsStatus().error, 'endpoint rejected');
  assert.equal(pilot.xds.stats().responses, responses);

  // Grow again after the NACK: B comes back.
  s.send({ node, version_info: res.version_info, response_nonce: res.nonce, type_url: eds, resource_names: [CLUSTER_B, CLUSTER_C] });
  res = await nextOf(s, eds);
  assert.deepEqual(namesIn(res), [CLUSTER_B]);
});

test('SotW over gRPC: two proxies with the same names share the recognition; "*" makes a different subscription than the same names without it', async (t) => {
  const pilot = await startPilot();
  const a = sotwStream(pilot.port);
  const b = sotwStream(pilot.port);
  t.after(() => {
    a.close();
    b.close();
    pilot.stop();
  });
  a.send({ node: nodeOf('a.default'), type_url: TypeUrl.Cluster, resource_names: [CLUSTER_A] });
  b.send({ node: nodeOf('b.default'), type_url: TypeUrl.Cluster, resource_names: [CLUSTER_A, '*'] });
  const ra = await nextOf(a, TypeUrl.Cluster);
  const rb = await nextOf(b, TypeUrl.Cluster);
  // a asked for CLUSTER_A only, b for everything.
  assert.deepEqual(namesIn(ra), [CLUSTER_A]);
  assert.deepEqual(namesIn(rb).sort(), [CLUSTER_A, CLUSTER_B]);
  // b switches to the exact bytes a sent (same name set, no wildcard): its watch is by name now (what it dropped it forgets; nothing is sent).
  b.send({ version_info: rb.version_info, response_nonce: rb.nonce, type_url: TypeUrl.Cluster, resource_names: [CLUSTER_A] });
  const statusOf = (id: string) => pilot.xds.proxyStatus().find((p) => p.id === id)!.types[TypeUrl.Cluster]!;
  await waitFor(() => statusOf(nodeOf('b.default').id).names !== undefined);
  assert.deepEqual(statusOf(nodeOf('b.default').id).names, [CLUSTER_A]);
  // a turns on the wildcard with the bytes b first used: it gets B too.
  a.send({ version_info: ra.version_info, response_nonce: ra.nonce, type_url: TypeUrl.Cluster, resource_names: [CLUSTER_A, '*'] });
  const ra2 = await nextOf(a, TypeUrl.Cluster);
  assert.deepEqual(namesIn(ra2).sort(), [CLUSTER_A, CLUSTER_B]);
  assert.equal(statusOf(nodeOf('a.default').id).names, undefined);
  assert.equal(pilot.xds.stats().responses, 3);
});

test('delta over gRPC: node on every request, initial versions, ACK, NACK and (un)subscribe', async (t) => {
  const pilot = await startPilot({ initialPush: pushWithC() });
  const d = deltaStream(pilot.port);
  t.after(() => {
    d.close();
    pilot.stop();
  });
  const eds = TypeUrl.ClusterLoadAssignment;
  const edsStatus = () => pilot.xds.proxyStatus()[0]!.types[eds]!;
  d.send({ node, type_url: eds, resource_names_subscribe: [CLUSTER_A, CLUSTER_B], initial_resource_versions: { [CLUSTER_A]: 'stale-hash' } });
  let res = await nextOf(d, eds);
  assert.deepEqual(res.resources.map((r) => r.name).sort(), [CLUSTER_A, CLUSTER_B]);
  d.send({ node, type_url: eds, response_nonce: res.nonce });
  await waitFor(() => edsStatus().state === 'SYNCED');
  d.send({ node, type_url: eds, response_nonce: res.nonce, resource_names_subscribe: [CLUSTER_C], resource_names_unsubscribe: [CLUSTER_A] });
  res = await nextOf(d, eds);
  assert.deepEqual(res.resources.map((r) => r.name), [CLUSTER_C]);
  assert.deepEqual(edsStatus().names, [CLUSTER_B, CLUSTER_C].sort());
  d.send({ node, type_url: eds, response_nonce: res.nonce, error_detail: { code: 3, message: 'delta says no' } });
  await waitFor(() => edsStatus().state === 'NACKED');
  assert.equal(edsStatus().error, 'delta says no');
});
