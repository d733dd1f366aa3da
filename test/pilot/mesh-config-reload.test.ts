// MeshConfig on a running control plane, as istiod watches its mesh
// ConfigMap: a real `mesh control-plane --mesh-config FILE` and an ADS
// client subscribed to listeners like a captured sidecar. Rewriting the file
// to REGISTRY_ONLY (Istio's "Accessing External Services" task) turns the
// virtualOutbound catch-all from PassthroughCluster into BlackHoleCluster
// without a restart; an invalid rewrite is logged with the field named and
// the config in force stays. The same listener carries Istio's telemetry:
// istio.stats right before tcp_proxy on the passthrough chain.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { DiscoveryResponse } from '../../src/xds/index.ts';
import { TypeUrl, unpackMessage } from '../../src/xds/index.ts';
import { startControlPlane, tempDir } from '../helpers/processes.ts';
import type { RunningControlPlane } from '../helpers/processes.ts';
import { eventually } from '../runtime/helpers.ts';
import { nextOf, nodeOf, sotwStream } from './xds-server-helpers.ts';
import type { Stream } from './xds-server-helpers.ts';

const dir = tempDir('mesh-config-reload-');
const FILE = join(dir, 'mesh.yaml');
let cp: RunningControlPlane;
const streams: Stream<unknown, DiscoveryResponse>[] = [];

before(async () => {
  writeFileSync(FILE, 'outboundTrafficPolicy: { mode: ALLOW_ANY }\n');
  cp = await startControlPlane(['--mesh-config', FILE]);
});

after(async () => {
  for (const s of streams) s.close();
  await cp?.stop();
});

type Filter = { name: string; typed_config: { type_url: string } };
type Listener = { name: string; filter_chains: { name?: string; filters: Filter[] }[] };

function virtualOutbound(res: DiscoveryResponse): Listener {
  const listeners = res.resources.map((r) => unpackMessage<Listener>(r));
  const vo = listeners.find((l) => l.name === 'virtualOutbound');
  assert.ok(vo, `virtualOutbound in ${listeners.map((l) => l.name).join(', ')}`);
  return vo;
}

function catchAllCluster(l: Listener): string {
  const chain = l.filter_chains.find((c) => c.name === 'virtualOutbound-catchall-tcp')!;
  const tcp = chain.filters.at(-1)!;
  assert.equal(tcp.name, 'envoy.filters.network.tcp_proxy');
  return unpackMessage<{ cluster: string }>(tcp.typed_config as never).cluster;
}

/** A SotW LDS subscription as a captured sidecar; each response is ACKed. */
function subscribe(name: string): { stream: Stream<unknown, DiscoveryResponse>; next(): Promise<DiscoveryResponse> } {
  const stream = sotwStream(cp.ports.xds) as Stream<unknown, DiscoveryResponse>;
  streams.push(stream);
  const node = nodeOf(name, { NAMESPACE: 'default', LABELS: { app: 'sleep' } });
  stream.send({ node, type_url: TypeUrl.Listener, resource_names: [] });
  return {
    stream,
    async next() {
      const res = await nextOf(stream, TypeUrl.Listener);
      stream.send({ node, type_url: TypeUrl.Listener, resource_names: [], version_info: res.version_info, response_nonce: res.nonce });
      return res;
    },
  };
}

test('a rewrite to REGISTRY_ONLY turns passthrough into blackhole on the running control plane; an invalid one is rejected', { timeout: 60_000 }, async () => {
  const sleep = subscribe('sleep-1.default');
  const first = virtualOutbound(await sleep.next());
  assert.equal(catchAllCluster(first), 'PassthroughCluster');
  // Egress is counted as Istio does: istio.stats (a TypedStruct) just before tcp_proxy.
  const filters = first.filter_chains.find((c) => c.name === 'virtualOutbound-catchall-tcp')!.filters;
  assert.deepEqual(filters.map((f) => f.name), ['istio.stats', 'envoy.filters.network.tcp_proxy']);
  assert.equal(filters[0]!.typed_config.type_url, 'type.googleapis.com/udpa.type.v1.TypedStruct');
  assert.equal(unpackMessage<{ type_url: string }>(filters[0]!.typed_config as never).type_url, 'type.googleapis.com/stats.PluginConfig');

  writeFileSync(FILE, 'outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n');
  const pushed = virtualOutbound(await sleep.next());
  assert.equal(catchAllCluster(pushed), 'BlackHoleCluster', 'pushed to the connected proxy without a restart');
  await eventually(async () => cp.logs.some((l) => l.includes('"mesh config reloaded"')) || undefined, 'reload logged');

  // Invalid: logged with the field named; nothing is pushed and a new proxy still gets the last good config.
  writeFileSync(FILE, 'outboundTrafficPolicy:\n  mode: SOMETIMES\n');
  const rejected = await eventually(async () => cp.logs.find((l) => l.includes('"msg":"mesh config rejected')), 'rejection logged');
  assert.match(rejected, /outboundTrafficPolicy\.mode/);
  const late = subscribe('sleep-2.default');
  assert.equal(catchAllCluster(virtualOutbound(await late.next())), 'BlackHoleCluster');
  assert.equal(sleep.stream.responses.size, 0, 'no push for a rejected config');

  // And back: the watch keeps working after a rejected file.
  writeFileSync(FILE, 'outboundTrafficPolicy: { mode: ALLOW_ANY }\n');
  assert.equal(catchAllCluster(virtualOutbound(await sleep.next())), 'PassthroughCluster');
});
