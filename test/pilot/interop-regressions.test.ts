// Regressions found by the proxyless gRPC interop tests (interop-*.test.ts),
// pinned here as fast generator-level tests.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TypeUrl } from '../../src/xds/index.ts';
import { createGenerators } from '../../src/pilot/networking/index.ts';
import { grpcTargetHost } from '../../src/pilot/networking/grpc-listeners.ts';
import { assertValidEnvoy, grpcProxy, parseConfig, pushOf, sidecarProxy } from './networking-fixtures.ts';

const gens = createGenerators();
const FULL = 'reviews.default.svc.cluster.local';

test('interop: grpcTargetHost expands the short names Istio expands for gRPC clients', () => {
  const cases: [string, string][] = [
    ['reviews', FULL],
    ['reviews.default', FULL],
    ['reviews.default.svc', FULL],
    [FULL, FULL],
    // Another namespace's short form is not expanded, as in Istio's grpcgen.
    ['reviews.other', 'reviews.other'],
    ['a.b.default', 'a.b.default'],
  ];
  for (const [host, want] of cases) assert.equal(grpcTargetHost(host, 'default', 'cluster.local'), want, host);
});

test('interop: `xds:///reviews.default:9080` and `reviews.default.svc:9080` get a listener and its route config', () => {
  const push = pushOf([]);
  for (const name of ['reviews.default:9080', 'reviews.default.svc:9080']) {
    const ls = gens.get(TypeUrl.Listener)!.generate(grpcProxy(), push, { full: true, names: [name] });
    assert.equal(ls.length, 1, name);
    assert.partialDeepStrictEqual(ls[0]!.value, { name, api_listener: { api_listener: { rds: { route_config_name: `${FULL}:9080` } } } });
    // The route's virtual host answers the authority the client sends (the dialled name).
    const [rc] = gens.get(TypeUrl.RouteConfiguration)!.generate(grpcProxy(), push, { full: true, names: [`${FULL}:9080`] });
    const domains = (rc!.value as { virtual_hosts: { domains: string[] }[] }).virtual_hosts[0]!.domains;
    assert.ok(domains.includes(name), `${name} in ${domains.join(',')}`);
  }
});

test('interop: outlierDetection leaves success-rate ejection off (grpc-js crashed on the implicit default)', () => {
  const push = pushOf(parseConfig(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: ${FULL}
  trafficPolicy: {outlierDetection: {consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s}}
`));
  for (const proxy of [grpcProxy(), sidecarProxy()]) {
    const cds = gens.get(TypeUrl.Cluster)!.generate(proxy, push, { full: true, names: [`outbound|9080||${FULL}`] });
    assert.equal(cds.length, 1, proxy.generator ?? proxy.type);
    assertValidEnvoy(TypeUrl.Cluster, cds);
    assert.partialDeepStrictEqual(cds[0]!.value, { outlier_detection: { enforcing_success_rate: { value: 0 }, consecutive_5xx: { value: 5 } } });
  }
});
