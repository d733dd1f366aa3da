// Shared fixtures for the networking tests: Bookinfo's services and
// workloads built by hand as registry objects, Istio's sample config parsed
// from /work/shared/istio-samples, proxies of the three client kinds, and a
// helper that checks every resource encodes as Envoy v3.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { istioKinds, validateText, defaultMeshConfig, hasErrors } from '../../src/api/index.ts';
import type { ConfigObject, MeshConfig } from '../../src/api/index.ts';
import { ConfigSnapshot } from '../../src/galley/index.ts';
import { packMessage } from '../../src/xds/index.ts';
import type { ProxyNode, Service, ServiceEndpoint, ServicePort, WorkloadInstance, XdsResource } from '../../src/pilot/model/index.ts';
import { parseLocality } from '../../src/pilot/model/index.ts';
import { buildPushContext } from '../../src/pilot/networking/index.ts';
import type { PushContext } from '../../src/pilot/networking/index.ts';

export const SAMPLES = '/work/shared/istio-samples/bookinfo/networking';

const HTTP_9080: ServicePort = { name: 'http', port: 9080, protocol: 'HTTP' };

export function service(name: string, overrides: Partial<Service> = {}): Service {
  const ns = overrides.namespace ?? 'default';
  return {
    hostname: `${name}.${ns}.svc.cluster.local`,
    namespace: ns,
    ports: [HTTP_9080],
    addresses: [],
    labels: { app: name },
    exportTo: [],
    meshExternal: false,
    resolution: 'STATIC',
    serviceAccounts: [`bookinfo-${name}`],
    registry: 'test',
    origin: `test ${ns}/${name}`,
    ...overrides,
  };
}

export function workload(name: string, address: string, labels: Record<string, string>, overrides: Partial<WorkloadInstance> = {}): WorkloadInstance {
  return {
    name,
    namespace: 'default',
    address,
    ports: {},
    labels,
    locality: parseLocality('us-east1/us-east1-a/'),
    serviceAccount: `bookinfo-${labels.app ?? name}`,
    network: '',
    health: 'HEALTHY',
    weight: 1,
    registry: 'test',
    ...overrides,
  };
}

export function endpointsOf(svc: Service, workloads: readonly WorkloadInstance[]): ServiceEndpoint[] {
  return workloads.flatMap((w) => svc.ports.map((p) => ({ hostname: svc.hostname, servicePort: p, workload: w, endpointPort: p.targetPort ?? p.port })));
}

/** Bookinfo as bookinfo.yaml deploys it: four services on 9080, reviews in three versions (v3 in another zone). */
export function bookinfoRegistry(): { services: Service[]; endpoints: Map<string, ServiceEndpoint[]> } {
  const productpage = service('productpage', { addresses: ['10.96.0.10'] });
  const details = service('details', { addresses: ['10.96.0.11'] });
  const reviews = service('reviews', { addresses: ['10.96.0.12'] });
  const ratings = service('ratings', { addresses: ['10.96.0.13'] });
  const endpoints = new Map<string, ServiceEndpoint[]>([
    [productpage.hostname, endpointsOf(productpage, [workload('productpage-v1', '10.0.0.1', { app: 'productpage', version: 'v1' })])],
    [details.hostname, endpointsOf(details, [workload('details-v1', '10.0.0.2', { app: 'details', version: 'v1' })])],
    [reviews.hostname, endpointsOf(reviews, [
      workload('reviews-v1', '10.0.0.3', { app: 'reviews', version: 'v1' }),
      workload('reviews-v2', '10.0.0.4', { app: 'reviews', version: 'v2' }),
      workload('reviews-v3', '10.0.0.5', { app: 'reviews', version: 'v3' }, { locality: parseLocality('us-east1/us-east1-b/') }),
    ])],
    [ratings.hostname, endpointsOf(ratings, [workload('ratings-v1', '10.0.0.6', { app: 'ratings', version: 'v1' })])],
  ]);
  return { services: [productpage, details, reviews, ratings], endpoints };
}

/** Parses Istio YAML (failing the test on validation errors). */
export function parseConfig(text: string, file?: string): ConfigObject[] {
  const results = validateText(text, istioKinds, { file });
  for (const r of results) assert.ok(!hasErrors(r), `${file ?? 'config'}: ${JSON.stringify(r.diagnostics)}`);
  return results.map((r) => r.object);
}

export function sample(file: string): ConfigObject[] {
  return parseConfig(readFileSync(`${SAMPLES}/${file}`, 'utf8'), file);
}

export function snapshotOf(objects: readonly ConfigObject[]): ConfigSnapshot {
  const byType = new Map<string, ConfigObject[]>();
  for (const o of objects) {
    const url = `${o.apiVersion.split('/')[0]}/v1/${o.kind}`;
    const list = byType.get(url) ?? [];
    list.push(o);
    byType.set(url, list);
  }
  const key = (o: ConfigObject): string => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
  for (const list of byType.values()) list.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  return new ConfigSnapshot(1, 1, byType);
}

/**
 * The Bookinfo samples as one snapshot. Two sample files define
 * VirtualService `reviews`; the header-match one is renamed and made newer,
 * so the 80/20 split (older) is the one sidecars use, as Istio picks the
 * oldest VirtualService for a host. fault-injection-details-v1.yaml repeats
 * DestinationRule `details`; only its VirtualService is taken.
 */
export function bookinfoConfig(): ConfigObject[] {
  const weighted = sample('virtual-service-reviews-80-20.yaml').map((o) => ({ ...o, metadata: { ...o.metadata, creationTimestamp: '2024-01-01T00:00:00Z' } }));
  const testV2 = sample('virtual-service-reviews-test-v2.yaml').map((o) => ({ ...o, metadata: { ...o.metadata, name: 'reviews-test-v2', creationTimestamp: '2024-02-01T00:00:00Z' } }));
  const fault = sample('fault-injection-details-v1.yaml').filter((o) => o.kind === 'VirtualService');
  return [...sample('destination-rule-all.yaml'), ...weighted, ...testV2, ...sample('bookinfo-gateway.yaml'), ...fault];
}

export function pushOf(objects: readonly ConfigObject[], registry = bookinfoRegistry(), mesh: MeshConfig = defaultMeshConfig()): PushContext {
  return buildPushContext({
    snapshot: snapshotOf(objects),
    services: registry.services,
    endpoints: (h) => registry.endpoints.get(h) ?? [],
    mesh,
    version: 'v1',
  });
}

export function sidecarProxy(overrides: Partial<ProxyNode> = {}): ProxyNode {
  const w = workload('productpage-v1', '10.0.0.1', { app: 'productpage', version: 'v1' });
  return {
    id: 'sidecar~10.0.0.1~productpage-v1-6b746f74dc-9stfs.default~default.svc.cluster.local',
    type: 'sidecar',
    ipAddresses: ['10.0.0.1'],
    workloadName: 'productpage-v1-6b746f74dc-9stfs.default',
    namespace: 'default',
    dnsDomain: 'default.svc.cluster.local',
    labels: w.labels,
    metadata: {},
    workload: w,
    ...overrides,
  };
}

export function gatewayProxy(): ProxyNode {
  return {
    id: 'router~10.0.0.100~istio-ingressgateway-7d4c8b5f9-abcde.istio-system~istio-system.svc.cluster.local',
    type: 'router',
    ipAddresses: ['10.0.0.100'],
    workloadName: 'istio-ingressgateway-7d4c8b5f9-abcde.istio-system',
    namespace: 'istio-system',
    dnsDomain: 'istio-system.svc.cluster.local',
    labels: { istio: 'ingressgateway', app: 'istio-ingressgateway' },
    metadata: {},
  };
}

export function grpcProxy(): ProxyNode {
  return {
    id: 'sidecar~10.0.0.7~grpc-client-5f7b9c-xyz.default~default.svc.cluster.local',
    type: 'sidecar',
    ipAddresses: ['10.0.0.7'],
    workloadName: 'grpc-client-5f7b9c-xyz.default',
    namespace: 'default',
    dnsDomain: 'default.svc.cluster.local',
    labels: { app: 'grpc-client' },
    metadata: { GENERATOR: 'grpc' },
    generator: 'grpc',
  };
}

/** Asserts every resource encodes as the Envoy message of its type URL; returns plain JSON of the values. */
export function assertValidEnvoy(typeUrl: string, resources: readonly XdsResource[]): unknown[] {
  return resources.map((r) => {
    assert.doesNotThrow(() => packMessage(typeUrl, r.value), `${r.name} is not a valid ${typeUrl}`);
    return JSON.parse(JSON.stringify(r.value)) as unknown;
  });
}
