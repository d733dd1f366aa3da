// Which listeners get Istio's telemetry filters, and the switches that turn
// them off (MeshConfig defaultProviders, Telemetry overrides by scope and mode).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseMeshConfig } from '../../src/api/index.ts';
import type { ConfigObject } from '../../src/api/index.ts';
import { createGenerators } from '../../src/pilot/networking/index.ts';
import type { ProxyNode } from '../../src/pilot/model/index.ts';
import { TypeUrl } from '../../src/xds/index.ts';
import { bookinfoConfig, gatewayProxy, grpcProxy, pushOf, sidecarProxy } from './networking-fixtures.ts';

const telemetry = (name: string, namespace: string, spec: Record<string, unknown>): ConfigObject =>
  ({ apiVersion: 'telemetry.istio.io/v1', kind: 'Telemetry', metadata: { name, namespace }, spec }) as unknown as ConfigObject;

/** Names of istio.* filters per listener direction: HTTP filters and network filters. */
function istioFilters(proxy: ProxyNode, objects: ConfigObject[], mesh = parseMeshConfig({})): { inbound: string[]; outbound: string[] } {
  const out = { inbound: [] as string[], outbound: [] as string[] };
  const listeners = createGenerators().get(TypeUrl.Listener)!.generate(proxy, pushOf([...bookinfoConfig(), ...objects], undefined, mesh), { full: true });
  for (const l of listeners) {
    const dir = (l.value as { traffic_direction?: string }).traffic_direction === 'INBOUND' ? 'inbound' : 'outbound';
    JSON.stringify(l.value, (k, v: unknown) => {
      if (k === 'name' && typeof v === 'string' && v.startsWith('istio.')) out[dir].push(v);
      return v;
    });
  }
  return { inbound: [...new Set(out.inbound)].sort(), outbound: [...new Set(out.outbound)].sort() };
}

const BOTH = ['istio.metadata_exchange', 'istio.stats'];
const disabled = (mode?: string): Record<string, unknown> => ({ metrics: [{ providers: [{ name: 'prometheus' }], overrides: [{ match: { metric: 'ALL_METRICS', ...(mode ? { mode } : {}) }, disabled: true }] }] });

const cases: { name: string; proxy: () => ProxyNode; objects?: ConfigObject[]; mesh?: object; inbound: string[]; outbound: string[] }[] = [
  { name: 'sidecar by default: both directions', proxy: sidecarProxy, inbound: BOTH, outbound: BOTH },
  { name: 'gateway by default', proxy: gatewayProxy, inbound: [], outbound: BOTH },
  { name: 'proxyless gRPC: never', proxy: grpcProxy, inbound: [], outbound: [] },
  { name: 'MeshConfig defaultProviders.metrics: [] turns it off mesh-wide', proxy: sidecarProxy, mesh: { defaultProviders: { metrics: [] } }, inbound: [], outbound: [] },
  { name: 'root-namespace Telemetry disabled: off everywhere', proxy: sidecarProxy, objects: [telemetry('mesh-default', 'istio-system', disabled())], inbound: [], outbound: [] },
  { name: 'namespace Telemetry disabled in mode SERVER: inbound only', proxy: sidecarProxy, objects: [telemetry('ns', 'default', disabled('SERVER'))], inbound: [], outbound: BOTH },
  { name: 'workload Telemetry re-enables what the root disabled', proxy: sidecarProxy, objects: [telemetry('mesh-default', 'istio-system', disabled()), telemetry('pp', 'default', { selector: { matchLabels: { app: 'productpage' } }, metrics: [{ providers: [{ name: 'prometheus' }] }] })], inbound: BOTH, outbound: BOTH },
  { name: 'a Telemetry selecting another workload does not apply', proxy: sidecarProxy, objects: [telemetry('r', 'default', { selector: { matchLabels: { app: 'reviews' } }, ...disabled() })], inbound: BOTH, outbound: BOTH },
];

for (const c of cases) {
  test(`telemetry filters: ${c.name}`, () => {
    const got = istioFilters(c.proxy(), c.objects ?? [], parseMeshConfig(c.mesh ?? {}));
    assert.deepEqual(got, { inbound: c.inbound, outbound: c.outbound });
  });
}

test('telemetry filters: Istio order on an HTTP chain and a TCP chain', () => {
  const listeners = createGenerators().get(TypeUrl.Listener)!.generate(sidecarProxy(), pushOf(bookinfoConfig()), { full: true });
  const inbound = listeners.find((l) => l.name === 'virtualInbound')!.value as { filter_chains: { filters: { name: string; typed_config: { http_filters?: { name: string }[] } }[] }[] };
  const hcm = inbound.filter_chains[0]!.filters.at(-1)!;
  const names = hcm.typed_config.http_filters!.map((f) => f.name);
  assert.equal(names[0], 'istio.metadata_exchange');
  assert.deepEqual(names.slice(-2), ['istio.stats', 'envoy.filters.http.router']);
  const vo = listeners.find((l) => l.name === 'virtualOutbound')!.value as { filter_chains: { filters: { name: string }[] }[] };
  assert.deepEqual(vo.filter_chains[0]!.filters.map((f) => f.name), ['istio.stats', 'envoy.filters.network.tcp_proxy']);
});
