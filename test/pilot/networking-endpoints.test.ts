// EDS: load assignments by subset, locality and health; locality failover
// priorities and distribute weights; the endpoint fast path; cache keys.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TypeUrl } from '../../src/xds/index.ts';
import { buildPushContext, createGenerators } from '../../src/pilot/networking/index.ts';
import type { ProxyNode, XdsResource } from '../../src/pilot/model/index.ts';
import { parseLocality } from '../../src/pilot/model/index.ts';
import { assertValidEnvoy, bookinfoRegistry, endpointsOf, grpcProxy, parseConfig, pushOf, sample, sidecarProxy, workload } from './networking-fixtures.ts';

const REVIEWS = 'reviews.default.svc.cluster.local';
const eds = createGenerators().get(TypeUrl.ClusterLoadAssignment)!;

interface Cla {
  cluster_name: string;
  endpoints: { locality: { region: string; zone: string }; priority?: number; load_balancing_weight: { value: number }; lb_endpoints: { endpoint: { address: { socket_address: { address: string } } }; health_status: string }[] }[];
}

function generate(proxy: ProxyNode, names: string[], yaml = '', registry = bookinfoRegistry()): readonly XdsResource[] {
  const push = pushOf([...sample('destination-rule-all.yaml'), ...(yaml ? parseConfig(yaml) : [])], registry);
  const out = eds.generate(proxy, push, { full: true, names });
  assertValidEnvoy(TypeUrl.ClusterLoadAssignment, out);
  return out;
}

function addresses(r: XdsResource): string[] {
  return (r.value as unknown as Cla).endpoints.flatMap((l) => l.lb_endpoints.map((e) => e.endpoint.address.socket_address.address)).sort();
}

test('eds: subset clusters take the endpoints with the subset labels', () => {
  const [all, v1, v3] = generate(sidecarProxy(), [`outbound|9080||${REVIEWS}`, `outbound|9080|v1|${REVIEWS}`, `outbound|9080|v3|${REVIEWS}`]);
  assert.deepEqual(addresses(all!), ['10.0.0.3', '10.0.0.4', '10.0.0.5']);
  assert.deepEqual(addresses(v1!), ['10.0.0.3']);
  assert.deepEqual(addresses(v3!), ['10.0.0.5']);
});

test('eds: an unknown subset answers with no endpoints', () => {
  const [r] = generate(sidecarProxy(), [`outbound|9080|v9|${REVIEWS}`]);
  assert.deepEqual((r!.value as unknown as Cla).endpoints, []);
});

test('eds: every locality has a locality and a weight (what gRPC requires); endpoints carry health', () => {
  const reg = bookinfoRegistry();
  const reviews = reg.services.find((s) => s.hostname === REVIEWS)!;
  reg.endpoints.set(REVIEWS, endpointsOf(reviews, [
    workload('r1', '10.0.0.3', { app: 'reviews', version: 'v1' }, { weight: 3 }),
    workload('r2', '10.0.0.4', { app: 'reviews', version: 'v2' }, { health: 'UNHEALTHY' }),
  ]));
  const [r] = generate(grpcProxy(), [`outbound|9080||${REVIEWS}`], '', reg);
  const cla = r!.value as unknown as Cla;
  assert.equal(cla.endpoints.length, 1);
  assert.deepEqual(cla.endpoints[0]!.locality, { region: 'us-east1', zone: 'us-east1-a', sub_zone: '' });
  assert.deepEqual(cla.endpoints[0]!.load_balancing_weight, { value: 4 });
  assert.deepEqual(cla.endpoints[0]!.lb_endpoints.map((e) => e.health_status), ['HEALTHY', 'UNHEALTHY']);
});

const failover = (extra: string): string => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews-lb, namespace: default }
spec:
  host: reviews.default.svc.cluster.local
  trafficPolicy:
    outlierDetection: { consecutive5xxErrors: 5 }
    loadBalancer: { localityLbSetting: { enabled: true${extra} } }
`;

function localityRegistry(): ReturnType<typeof bookinfoRegistry> {
  const reg = bookinfoRegistry();
  const reviews = reg.services.find((s) => s.hostname === REVIEWS)!;
  reg.endpoints.set(REVIEWS, endpointsOf(reviews, [
    workload('a', '10.0.1.1', { app: 'reviews' }, { locality: parseLocality('us-east1/us-east1-a/') }),
    workload('b', '10.0.1.2', { app: 'reviews' }, { locality: parseLocality('us-east1/us-east1-b/') }),
    workload('c', '10.0.1.3', { app: 'reviews' }, { locality: parseLocality('eu-west1/eu-west1-a/') }),
    workload('d', '10.0.1.4', { app: 'reviews' }, { locality: parseLocality('us-west1/us-west1-a/') }),
  ]));
  return reg;
}

function priorities(r: XdsResource): Record<string, number> {
  return Object.fromEntries((r.value as unknown as Cla).endpoints.map((l) => [l.locality.zone, l.priority ?? 0]));
}

test('eds: failover orders localities into priorities by closeness (with outlier detection)', () => {
  const [r] = generate(sidecarProxy(), [`outbound|9080||${REVIEWS}`], failover(', failover: [{ from: us-east1, to: eu-west1 }]'), localityRegistry());
  assert.deepEqual(priorities(r!), { 'us-east1-a': 0, 'us-east1-b': 1, 'eu-west1-a': 2, 'us-west1-a': 3 });
  assert.equal(r!.cacheKey, undefined, 'depends on the proxy locality: not shared');
});

test('eds: failoverPriority ranks by matching proxy labels', () => {
  const reg = localityRegistry();
  const reviews = reg.services.find((s) => s.hostname === REVIEWS)!;
  reg.endpoints.set(REVIEWS, endpointsOf(reviews, [
    workload('a', '10.0.1.1', { app: 'reviews', tier: 'gold' }, { locality: parseLocality('r/z1/') }),
    workload('b', '10.0.1.2', { app: 'reviews', tier: 'silver' }, { locality: parseLocality('r/z2/') }),
  ]));
  const proxy = sidecarProxy({ labels: { app: 'productpage', tier: 'silver' } });
  const [r] = generate(proxy, [`outbound|9080||${REVIEWS}`], failover(', failoverPriority: [tier]'), reg);
  assert.deepEqual(priorities(r!), { z1: 1, z2: 0 });
});

test('eds: no outlier detection, no failover priorities', () => {
  const [r] = generate(sidecarProxy(), [`outbound|9080||${REVIEWS}`], '', localityRegistry());
  assert.deepEqual(Object.values(priorities(r!)), [0, 0, 0, 0]);
  assert.ok(r!.cacheKey?.startsWith(`eds/outbound|9080||${REVIEWS}/`));
});

test('eds: distribute sets locality weights from the proxy locality', () => {
  const yaml = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews-lb, namespace: default }
spec:
  host: reviews.default.svc.cluster.local
  trafficPolicy: { loadBalancer: { localityLbSetting: { enabled: true, distribute: [{ from: "us-east1/*", to: { "us-east1/*": 80, "eu-west1/*": 20 } }] } } }
`;
  const [r] = generate(sidecarProxy(), [`outbound|9080||${REVIEWS}`], yaml, localityRegistry());
  const weights = Object.fromEntries((r!.value as unknown as Cla).endpoints.map((l) => [l.locality.zone, l.load_balancing_weight.value]));
  assert.deepEqual(weights, { 'eu-west1-a': 20, 'us-east1-a': 40, 'us-east1-b': 40 });
});

test('eds: the fast path rebuilds only clusters of changed hosts', () => {
  const push = pushOf(sample('destination-rule-all.yaml'));
  const names = [`outbound|9080||${REVIEWS}`, `outbound|9080|v1|${REVIEWS}`, 'outbound|9080||ratings.default.svc.cluster.local'];
  const out = eds.generate(sidecarProxy(), push, { full: false, names, changedHosts: new Set([REVIEWS]) });
  assert.deepEqual(out.map((r) => r.name), names.slice(0, 2));
  const full = eds.generate(sidecarProxy(), push, { full: true });
  assert.equal(full.length, 14, 'without names: every EDS cluster of the proxy');
});

test('eds: equal inputs give equal cache keys across proxies; a new version changes them', () => {
  const push = pushOf([]);
  const a = eds.generate(sidecarProxy(), push, { full: true, names: [`outbound|9080||${REVIEWS}`] })[0]!;
  const b = eds.generate(sidecarProxy({ namespace: 'default', labels: { app: 'x' } }), push, { full: true, names: [`outbound|9080||${REVIEWS}`] })[0]!;
  assert.equal(a.cacheKey, b.cacheKey);
  assert.deepEqual(a.value, b.value);
  const reg = bookinfoRegistry();
  const next = buildPushContext({ snapshot: push.snapshot, services: reg.services, endpoints: (h) => reg.endpoints.get(h) ?? [], mesh: push.mesh, version: 'v2' });
  const c = eds.generate(sidecarProxy(), next, { full: true, names: [`outbound|9080||${REVIEWS}`] })[0]!;
  assert.notEqual(c.cacheKey, a.cacheKey);
  assert.ok(c.cacheKey?.endsWith('@v2'));
});
