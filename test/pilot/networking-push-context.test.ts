// Table tests for the PushContext: short host resolution, the
// DestinationRule namespace lookup, exportTo visibility, Sidecar scoping,
// and gateway binding of VirtualServices.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bookinfoConfig, bookinfoRegistry, gatewayProxy, parseConfig, pushOf, service, sidecarProxy } from './networking-fixtures.ts';

const REVIEWS = 'reviews.default.svc.cluster.local';

test('push: short hosts resolve in the namespace of the config', () => {
  const push = pushOf(bookinfoConfig());
  assert.equal(push.resolve('reviews', 'default'), REVIEWS);
  assert.equal(push.resolve('reviews', 'prod'), 'reviews.prod.svc.cluster.local');
  assert.equal(push.resolve('api.example.com', 'default'), 'api.example.com');
  assert.equal(push.resolve('*', 'default'), '*');
  assert.deepEqual(push.virtualServices.find((v) => v.name === 'reviews')!.hosts, [REVIEWS]);
  assert.equal(push.destinationRules.find((d) => d.name === 'reviews')!.host, REVIEWS);
  assert.deepEqual(push.virtualServices.find((v) => v.name === 'bookinfo')!.gateways, ['default/bookinfo-gateway']);
});

function rule(ns: string, name: string, host: string, exportTo?: string[]): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}, namespace: ${ns} }
spec:
  host: "${host}"
${exportTo ? `  exportTo: [${exportTo.map((e) => `"${e}"`).join(', ')}]\n` : ''}  trafficPolicy: { loadBalancer: { simple: RANDOM } }
`;
}

const lookupCases: { name: string; rules: string[]; proxyNs: string; expect: string | undefined }[] = [
  { name: 'the proxy namespace first', rules: [rule('default', 'svc-ns', REVIEWS), rule('client', 'own', REVIEWS, ['.']), rule('istio-system', 'root', REVIEWS)], proxyNs: 'client', expect: 'client/own' },
  { name: 'then the service namespace', rules: [rule('default', 'svc-ns', 'reviews'), rule('istio-system', 'root', REVIEWS)], proxyNs: 'client', expect: 'default/svc-ns' },
  { name: 'then the root namespace', rules: [rule('istio-system', 'root', REVIEWS)], proxyNs: 'client', expect: 'istio-system/root' },
  { name: 'a rule not exported to the proxy is skipped', rules: [rule('default', 'private', REVIEWS, ['.']), rule('istio-system', 'root', REVIEWS)], proxyNs: 'client', expect: 'istio-system/root' },
  { name: 'an exact host beats a wildcard', rules: [rule('default', 'wild', '*.default.svc.cluster.local'), rule('default', 'exact', REVIEWS)], proxyNs: 'default', expect: 'default/exact' },
  { name: 'a wildcard applies when nothing is more specific', rules: [rule('default', 'wild', '*.svc.cluster.local')], proxyNs: 'default', expect: 'default/wild' },
  { name: 'no rule at all', rules: [rule('other', 'x', 'ratings.default.svc.cluster.local')], proxyNs: 'default', expect: undefined },
];

for (const c of lookupCases) {
  test(`push: DestinationRule lookup: ${c.name}`, () => {
    const push = pushOf(c.rules.flatMap((r) => parseConfig(r)));
    const dr = push.destinationRule(c.proxyNs, REVIEWS);
    assert.equal(dr ? `${dr.namespace}/${dr.name}` : undefined, c.expect);
  });
}

test('push: two rules for one host in one namespace merge their subsets', () => {
  const push = pushOf(parseConfig(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: a, namespace: default }
spec: { host: reviews, subsets: [{ name: v1, labels: { version: v1 } }] }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: b, namespace: default }
spec: { host: reviews, trafficPolicy: { loadBalancer: { simple: RANDOM } }, subsets: [{ name: v2, labels: { version: v2 } }] }
`));
  const dr = push.destinationRule('default', REVIEWS)!;
  assert.deepEqual(dr.spec.subsets!.map((s) => s.name), ['v1', 'v2']);
  assert.equal(dr.spec.trafficPolicy?.loadBalancer?.simple, 'RANDOM');
});

test('push: service exportTo limits who sees it', () => {
  const reg = bookinfoRegistry();
  reg.services.push(service('private', { exportTo: ['.'] }), service('hidden', { namespace: 'other', exportTo: ['.'] }), service('shared', { namespace: 'other', exportTo: ['default'] }));
  const push = pushOf([], reg);
  const seen = push.servicesFor(sidecarProxy()).map((s) => s.hostname);
  assert.ok(seen.includes('private.default.svc.cluster.local'));
  assert.ok(seen.includes('shared.other.svc.cluster.local'));
  assert.ok(!seen.includes('hidden.other.svc.cluster.local'));
});

test('push: VirtualService exportTo limits which proxies use it', () => {
  const push = pushOf(parseConfig(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec: { hosts: [reviews], exportTo: ["."], http: [{ route: [{ destination: { host: reviews } }] }] }
`));
  assert.equal(push.virtualServicesFor(sidecarProxy(), 'mesh').length, 1);
  assert.equal(push.virtualServicesFor(sidecarProxy({ namespace: 'other' }), 'mesh').length, 0);
});

test('push: Sidecar egress hosts scope services; a selector beats the namespace default', () => {
  const push = pushOf(parseConfig(`apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: default }
spec: { egress: [{ hosts: ["./reviews.default.svc.cluster.local"] }] }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: productpage, namespace: default }
spec:
  workloadSelector: { labels: { app: productpage } }
  egress: [{ hosts: ["./details.default.svc.cluster.local", "istio-system/*"] }]
`));
  assert.deepEqual(push.servicesFor(sidecarProxy()).map((s) => s.hostname), ['details.default.svc.cluster.local']);
  const other = sidecarProxy({ labels: { app: 'ratings' } });
  assert.deepEqual(push.servicesFor(other).map((s) => s.hostname), [REVIEWS]);
});

test('push: gateways select proxies by label; VirtualServices bind by namespace/name', () => {
  const push = pushOf(bookinfoConfig());
  assert.deepEqual(push.gatewaysFor(gatewayProxy()).map((g) => g.name), ['bookinfo-gateway']);
  assert.deepEqual(push.gatewaysFor({ ...gatewayProxy(), labels: { istio: 'egressgateway' } }), []);
  assert.deepEqual(push.virtualServicesFor(gatewayProxy(), 'default/bookinfo-gateway').map((v) => v.name), ['bookinfo']);
  assert.ok(!push.virtualServicesFor(sidecarProxy(), 'mesh').some((v) => v.name === 'bookinfo'), 'a gateway-only VirtualService is not for sidecars');
});

test('push: the older VirtualService for a host comes first', () => {
  const push = pushOf(bookinfoConfig());
  assert.deepEqual(push.virtualServicesFor(sidecarProxy(), 'mesh').filter((v) => v.hosts.includes(REVIEWS)).map((v) => v.name), ['reviews', 'reviews-test-v2']);
});
