// Table tests: each VirtualService HTTP feature and the Envoy route field it
// becomes, checked on the sidecar's route config for port 9080, plus the
// proxy-side match filtering (sourceLabels, gateways, port) and delegation.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TypeUrl } from '../../src/xds/index.ts';
import { buildSidecarRouteConfig } from '../../src/pilot/networking/route-config-builder.ts';
import { assertValidEnvoy, parseConfig, pushOf, sample, sidecarProxy } from './networking-fixtures.ts';

const REVIEWS = 'reviews.default.svc.cluster.local';
const V1 = `outbound|9080|v1|${REVIEWS}`;
const V2 = `outbound|9080|v2|${REVIEWS}`;

function vs(http: string, extra = ''): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
${extra}  http:
${http}`;
}

/** The routes of the reviews virtual host, after a packMessage check of the whole route config. */
function reviewsRoutes(yaml: string, proxy = sidecarProxy()): Record<string, unknown>[] {
  const push = pushOf([...sample('destination-rule-all.yaml'), ...parseConfig(yaml)]);
  const rc = buildSidecarRouteConfig(push, proxy, 9080);
  assertValidEnvoy(TypeUrl.RouteConfiguration, [{ name: '9080', value: rc }]);
  const vh = (rc.virtual_hosts as { name: string; routes: Record<string, unknown>[] }[]).find((v) => v.name === `${REVIEWS}:9080`)!;
  return vh.routes;
}

const cases: { name: string; http: string; extra?: string; expect: Record<string, unknown>[] }[] = [
  {
    name: 'uri exact -> path',
    http: '  - match: [{ uri: { exact: /a } }]\n    route: [{ destination: { host: reviews, subset: v1 } }]\n',
    expect: [{ match: { path: '/a' }, route: { cluster: V1 } }],
  },
  {
    name: 'uri prefix -> prefix, ignoreUriCase -> case_sensitive false',
    http: '  - match: [{ uri: { prefix: /api }, ignoreUriCase: true }]\n    route: [{ destination: { host: reviews, subset: v1 } }]\n',
    expect: [{ match: { prefix: '/api', case_sensitive: { value: false } } }],
  },
  {
    name: 'uri regex -> safe_regex',
    http: '  - match: [{ uri: { regex: "/v[0-9]+/.*" } }]\n    route: [{ destination: { host: reviews } }]\n',
    expect: [{ match: { safe_regex: { regex: '/v[0-9]+/.*' } } }],
  },
  {
    name: 'headers, method, authority and withoutHeaders -> header matchers',
    http: '  - match: [{ headers: { end-user: { exact: jason } }, withoutHeaders: { x-debug: { regex: "*" } }, method: { exact: GET }, authority: { prefix: rev } }]\n    route: [{ destination: { host: reviews } }]\n',
    expect: [{ match: { prefix: '/', headers: [
      { name: 'end-user', string_match: { exact: 'jason' } },
      { name: 'x-debug', present_match: true, invert_match: true },
      { name: ':authority', string_match: { prefix: 'rev' } },
      { name: ':method', string_match: { exact: 'GET' } },
    ] } }],
  },
  {
    name: 'queryParams -> query_parameters',
    http: '  - match: [{ queryParams: { q: { exact: x } } }]\n    route: [{ destination: { host: reviews } }]\n',
    expect: [{ match: { query_parameters: [{ name: 'q', string_match: { exact: 'x' } }] } }],
  },
  {
    name: 'weights -> weighted_clusters with total_weight',
    http: '  - route:\n    - { destination: { host: reviews, subset: v1 }, weight: 75 }\n    - { destination: { host: reviews, subset: v2 }, weight: 25 }\n',
    expect: [{ route: { weighted_clusters: { clusters: [{ name: V1, weight: { value: 75 } }, { name: V2, weight: { value: 25 } }], total_weight: { value: 100 } } } }],
  },
  {
    name: 'redirect -> redirect with response code',
    http: '  - redirect: { uri: /new, authority: example.com, redirectCode: 302 }\n',
    expect: [{ redirect: { path_redirect: '/new', host_redirect: 'example.com', response_code: 'FOUND' } }],
  },
  {
    name: 'directResponse -> direct_response',
    http: '  - directResponse: { status: 418, body: { string: teapot } }\n',
    expect: [{ direct_response: { status: 418, body: { inline_string: 'teapot' } } }],
  },
  {
    name: 'rewrite -> prefix_rewrite and host_rewrite_literal',
    http: '  - match: [{ uri: { prefix: /old } }]\n    rewrite: { uri: /new, authority: other }\n    route: [{ destination: { host: reviews } }]\n',
    expect: [{ route: { prefix_rewrite: '/new', host_rewrite_literal: 'other' } }],
  },
  {
    name: 'timeout -> route timeout',
    http: '  - timeout: 1.5s\n    route: [{ destination: { host: reviews } }]\n',
    expect: [{ route: { timeout: { seconds: 1, nanos: 500000000 } } }],
  },
  {
    name: 'retries -> retry_policy, status codes split out',
    http: '  - retries: { attempts: 3, perTryTimeout: 2s, retryOn: "5xx,503" }\n    route: [{ destination: { host: reviews } }]\n',
    expect: [{ route: { retry_policy: { retry_on: '5xx,retriable-status-codes', num_retries: { value: 3 }, retriable_status_codes: [503], per_try_timeout: { seconds: 2 } } } }],
  },
  {
    name: 'no retries -> Istio default retry policy',
    http: '  - route: [{ destination: { host: reviews } }]\n',
    expect: [{ route: { retry_policy: { retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes', num_retries: { value: 2 } } } }],
  },
  {
    name: 'fault -> typed_per_filter_config envoy.filters.http.fault',
    http: '  - fault: { delay: { fixedDelay: 7s, percentage: { value: 50 } }, abort: { httpStatus: 500, percentage: { value: 0.1 } } }\n    route: [{ destination: { host: reviews } }]\n',
    expect: [{ typed_per_filter_config: { 'envoy.filters.http.fault': {
      delay: { fixed_delay: { seconds: 7 }, percentage: { numerator: 500000, denominator: 'MILLION' } },
      abort: { http_status: 500, percentage: { numerator: 1000, denominator: 'MILLION' } },
    } } }],
  },
  {
    name: 'mirror + mirrorPercentage -> request_mirror_policies',
    http: '  - mirror: { host: reviews, subset: v2 }\n    mirrorPercentage: { value: 25 }\n    route: [{ destination: { host: reviews, subset: v1 } }]\n',
    expect: [{ route: { request_mirror_policies: [{ cluster: V2, runtime_fraction: { default_value: { numerator: 250000, denominator: 'MILLION' } } }] } }],
  },
  {
    name: 'headers -> request/response header operations',
    http: '  - headers: { request: { set: { x-a: "1" }, add: { x-b: "2" }, remove: [x-c] }, response: { remove: [server] } }\n    route: [{ destination: { host: reviews } }]\n',
    expect: [{
      request_headers_to_add: [{ header: { key: 'x-a', value: '1' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }, { header: { key: 'x-b', value: '2' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' }],
      request_headers_to_remove: ['x-c'],
      response_headers_to_remove: ['server'],
    }],
  },
  {
    name: 'corsPolicy -> typed_per_filter_config envoy.filters.http.cors',
    http: '  - corsPolicy: { allowOrigins: [{ exact: "https://a.example" }], allowMethods: [GET, POST], maxAge: 24h, allowCredentials: true }\n    route: [{ destination: { host: reviews } }]\n',
    expect: [{ typed_per_filter_config: { 'envoy.filters.http.cors': {
      allow_origin_string_match: [{ exact: 'https://a.example' }], allow_methods: 'GET,POST', max_age: '86400', allow_credentials: { value: true },
    } } }],
  },
  {
    name: 'sourceLabels that do not match the proxy drop the match (and the rule)',
    http: '  - match: [{ sourceLabels: { app: ratings } }]\n    route: [{ destination: { host: reviews, subset: v2 } }]\n  - route: [{ destination: { host: reviews, subset: v1 } }]\n',
    expect: [{ match: { prefix: '/' }, route: { cluster: V1 } }],
  },
  {
    name: 'sourceLabels that match the proxy keep the rule',
    http: '  - match: [{ sourceLabels: { app: productpage } }]\n    route: [{ destination: { host: reviews, subset: v2 } }]\n',
    expect: [{ route: { cluster: V2 } }],
  },
  {
    name: 'match gateways without mesh do not apply to sidecars',
    http: '  - match: [{ gateways: [some-gateway], uri: { prefix: /gw } }]\n    route: [{ destination: { host: reviews, subset: v2 } }]\n  - route: [{ destination: { host: reviews, subset: v1 } }]\n',
    extra: '  gateways: [mesh, some-gateway]\n',
    expect: [{ route: { cluster: V1 } }],
  },
  {
    name: 'port matches only on their own port',
    http: '  - match: [{ port: 9999 }]\n    route: [{ destination: { host: reviews, subset: v2 } }]\n  - route: [{ destination: { host: reviews, subset: v1 } }]\n',
    expect: [{ route: { cluster: V1 } }],
  },
  {
    name: 'first matching rule wins: rules after a catch-all are dropped',
    http: '  - route: [{ destination: { host: reviews, subset: v1 } }]\n  - match: [{ uri: { prefix: /never } }]\n    route: [{ destination: { host: reviews, subset: v2 } }]\n',
    expect: [{ route: { cluster: V1 } }],
  },
];

for (const c of cases) {
  test(`route: ${c.name}`, () => {
    const routes = reviewsRoutes(vs(c.http, c.extra));
    assert.equal(routes.length, c.expect.length, JSON.stringify(routes));
    c.expect.forEach((e, i) => assert.partialDeepStrictEqual(routes[i], e));
  });
}

test('route: no VirtualService -> default route to the service cluster', () => {
  const push = pushOf(sample('destination-rule-all.yaml'));
  const rc = buildSidecarRouteConfig(push, sidecarProxy(), 9080);
  const vh = (rc.virtual_hosts as { name: string; routes: Record<string, unknown>[] }[]).find((v) => v.name === `${REVIEWS}:9080`)!;
  assert.partialDeepStrictEqual(vh.routes, [{ name: 'default', match: { prefix: '/' }, route: { cluster: `outbound|9080||${REVIEWS}` } }]);
});

test('route: delegate rules are inlined under the parent match', () => {
  const routes = reviewsRoutes(`${vs('  - match: [{ uri: { prefix: /api } }]\n    delegate: { name: reviews-api }\n')}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews-api, namespace: default }
spec:
  http:
  - match: [{ headers: { x-v: { exact: "2" } } }]
    route: [{ destination: { host: reviews, subset: v2 } }]
  - route: [{ destination: { host: reviews, subset: v1 } }]
`);
  assert.partialDeepStrictEqual(routes, [
    { match: { prefix: '/api', headers: [{ name: 'x-v', string_match: { exact: '2' } }] }, route: { cluster: V2 } },
    { match: { prefix: '/api' }, route: { cluster: V1 } },
  ]);
});

test('route: consistent hash in the DestinationRule -> hash_policy on the route', () => {
  const routes = reviewsRoutes(`${vs('  - route: [{ destination: { host: reviews, subset: v1 } }]\n')}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews-hash, namespace: default }
spec:
  host: reviews.default.svc.cluster.local
  trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: x-user } } }
  subsets: [{ name: v1, labels: { version: v1 } }]
`);
  assert.partialDeepStrictEqual(routes[0], { route: { hash_policy: [{ header: { header_name: 'x-user' } }] } });
});

test('route: virtual host domains cover every name a client uses, never twice', () => {
  const push = pushOf([]);
  const rc = buildSidecarRouteConfig(push, sidecarProxy(), 9080);
  const vhs = rc.virtual_hosts as { name: string; domains: string[] }[];
  const reviews = vhs.find((v) => v.name === `${REVIEWS}:9080`)!;
  for (const d of [REVIEWS, `${REVIEWS}:9080`, 'reviews', 'reviews:9080', 'reviews.default', 'reviews.default.svc', '10.96.0.12', '10.96.0.12:9080']) assert.ok(reviews.domains.includes(d), d);
  const all = vhs.flatMap((v) => v.domains);
  assert.equal(new Set(all).size, all.length);
  // A proxy in another namespace must not get the bare short name.
  const other = buildSidecarRouteConfig(push, sidecarProxy({ namespace: 'other' }), 9080);
  const otherReviews = (other.virtual_hosts as { name: string; domains: string[] }[]).find((v) => v.name === `${REVIEWS}:9080`)!;
  assert.ok(!otherReviews.domains.includes('reviews'));
  assert.ok(otherReviews.domains.includes('reviews.default'));
});

test('route: REGISTRY_ONLY ends with block_all, ALLOW_ANY with allow_any', () => {
  const sidecar = parseConfig(`apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: default }
spec: { outboundTrafficPolicy: { mode: REGISTRY_ONLY } }
`);
  const last = (objs: ReturnType<typeof parseConfig>) => (buildSidecarRouteConfig(pushOf(objs), sidecarProxy(), 9080).virtual_hosts as { name: string }[]).at(-1)!.name;
  assert.equal(last([]), 'allow_any');
  assert.equal(last(sidecar), 'block_all');
});
