// Golden files of the xDS Pilot generates for Bookinfo: a sidecar, the
// ingress gateway and a proxyless gRPC client. REFRESH_GOLDEN=1 rewrites them;
// otherwise a difference fails with a structural diff.

import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { TypeUrl } from '../../src/xds/index.ts';
import type { ProxyNode } from '../../src/pilot/model/index.ts';
import { createGenerators } from '../../src/pilot/networking/index.ts';
import type { PushContext } from '../../src/pilot/networking/index.ts';
import { assertValidEnvoy, bookinfoConfig, gatewayProxy, grpcProxy, pushOf, sidecarProxy } from './networking-fixtures.ts';

const GOLDEN_DIR = new URL('../../testdata/pilot/', import.meta.url);

/** All four xDS types as a client would fetch them: listeners and clusters first, then what they name. */
function generateAll(proxy: ProxyNode, push: PushContext): Record<string, unknown[]> {
  const gens = createGenerators();
  const gen = (url: string, names?: string[]) => gens.get(url)!.generate(proxy, push, { full: true, names });
  const listeners = gen(TypeUrl.Listener);
  const clusters = gen(TypeUrl.Cluster);
  const routeNames = new Set<string>();
  JSON.stringify(listeners, (k, v: unknown) => {
    if (k === 'route_config_name' && typeof v === 'string') routeNames.add(v);
    return v;
  });
  const routes = gen(TypeUrl.RouteConfiguration, [...routeNames].sort());
  const edsNames = clusters.filter((c) => 'eds_cluster_config' in c.value).map((c) => c.name);
  const endpoints = gen(TypeUrl.ClusterLoadAssignment, edsNames);
  assert.equal(routes.length, routeNames.size, 'every route config a listener names is generated');
  assert.equal(endpoints.length, edsNames.length, 'every EDS cluster has a load assignment');
  return {
    listeners: assertValidEnvoy(TypeUrl.Listener, listeners),
    routes: assertValidEnvoy(TypeUrl.RouteConfiguration, routes),
    clusters: assertValidEnvoy(TypeUrl.Cluster, clusters),
    endpoints: assertValidEnvoy(TypeUrl.ClusterLoadAssignment, endpoints),
  };
}

function checkGolden(name: string, actual: unknown): void {
  const file = new URL(`${name}.golden.json`, GOLDEN_DIR);
  if (process.env.REFRESH_GOLDEN === '1' || !existsSync(file)) {
    writeFileSync(file, `${JSON.stringify(actual, null, 2)}\n`);
    if (process.env.REFRESH_GOLDEN !== '1') assert.fail(`${name}.golden.json was missing and has been written; check it and rerun`);
    return;
  }
  assert.deepEqual(actual, JSON.parse(readFileSync(file, 'utf8')), `generated xDS differs from testdata/pilot/${name}.golden.json (REFRESH_GOLDEN=1 to accept)`);
}

const cases: { name: string; proxy: () => ProxyNode }[] = [
  { name: 'bookinfo-sidecar', proxy: sidecarProxy },
  { name: 'bookinfo-gateway', proxy: gatewayProxy },
  { name: 'bookinfo-grpc', proxy: grpcProxy },
];

for (const c of cases) {
  test(`golden: ${c.name}`, () => {
    checkGolden(c.name, generateAll(c.proxy(), pushOf(bookinfoConfig())));
  });
}
