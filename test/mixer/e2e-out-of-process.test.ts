// An out-of-process adapter through real sidecars: a control plane, three
// `mesh run` workloads (e2e-helpers.ts) and the sample adapter
// (samples/mixer-adapter) as its own process. Mixer sends it metric and
// logentry instances built from the sidecars' reports, and asks it a
// listentry check whose denial reaches the caller as a 403.

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { tempDir } from '../helpers/processes.ts';
import { eventually } from '../runtime/helpers.ts';
import { MixerMesh, RATINGS, SampleAdapter } from './e2e-helpers.ts';
import type { AdapterRecord } from './e2e-helpers.ts';

let mesh: MixerMesh | undefined;
let adapter: SampleAdapter | undefined;
const dir = tempDir('mesh-e2e-oop-');
const out = join(dir, 'instances.jsonl');

before(async () => {
  const [m, a] = await Promise.allSettled([MixerMesh.start(), SampleAdapter.start()]);
  if (m.status === 'fulfilled') mesh = m.value;
  if (a.status === 'fulfilled') adapter = a.value;
  if (m.status === 'rejected') throw m.reason;
  if (a.status === 'rejected') throw a.reason;
});

after(async () => {
  await Promise.all([mesh?.stop(), adapter?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

const config = async (address: string): Promise<string> => `${await SampleAdapter.adapterYaml()}
---
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: sample, namespace: istio-system }
spec:
  adapter: sampleadapter
  connection: { address: "${address}" }
  params:
    file_path: ${JSON.stringify(out)}
    allow: [v1]
    valid_seconds: 10
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: requestcount, namespace: istio-system }
spec:
  template: metric
  params:
    value: "1"
    dimensions:
      source_version: source.labels["version"] | "unknown"
      destination_service: destination.service.host | "unknown"
      response_code: response.code | 0
      reporter: context.reporter.kind | "unknown"
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: accesslog, namespace: istio-system }
spec:
  template: logentry
  params:
    severity: '"Info"'
    timestamp: request.time
    variables:
      method: request.method | ""
      source_principal: source.principal | ""
      destination_service: destination.service.host | ""
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: appversion, namespace: istio-system }
spec:
  template: listentry
  params: { value: 'source.labels["version"] | "none"' }
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: sampletelemetry, namespace: istio-system }
spec:
  match: context.protocol == "http"
  actions: [{ handler: sample, instances: [requestcount, accesslog] }]
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: samplecheck, namespace: istio-system }
spec:
  match: destination.service.name == "ratings"
  actions: [{ handler: sample, instances: [appversion] }]
`;

test('the out-of-process adapter receives its instances, and its listentry denial is a 403 through the sidecar', { timeout: 60_000 }, async () => {
  const m = mesh!;
  await m.apply(await config(adapter!.address));

  // Check: the adapter's allow-list admits v1 and denies v3, with its message as the body.
  const denied = await eventually(async () => {
    const r = await m.call(m.v3Port);
    return r.status === 403 ? r : undefined;
  }, 'reviews v3 denied by the sample adapter', 30_000);
  assert.match(denied.body, /v3 is not on the allow list/);
  assert.equal((await m.call(m.v1Port)).status, 200);

  // Reports: the sidecars' access logs become metric and logentry instances in the adapter.
  const find = (pred: (r: AdapterRecord) => boolean): AdapterRecord | undefined => SampleAdapter.records(out).find(pred);
  const dims = (r: AdapterRecord): Record<string, unknown> => (r['dimensions'] ?? {}) as Record<string, unknown>;
  const okMetric = await eventually(async () => {
    await m.call(m.v1Port);
    return find((r) => r.template === 'metric' && dims(r)['source_version'] === 'v1' && dims(r)['response_code'] === 200);
  }, 'a metric instance for v1 -> ratings', 30_000);
  assert.equal(okMetric.instance, 'requestcount.istio-system');
  assert.equal(okMetric['value'], 1);
  assert.deepEqual(dims(okMetric), { source_version: 'v1', destination_service: RATINGS, response_code: 200, reporter: 'inbound' });

  const deniedMetric = await eventually(async () => find((r) => r.template === 'metric' && dims(r)['source_version'] === 'v3'), 'a metric instance for the denied v3 request');
  assert.equal(dims(deniedMetric)['response_code'], 403);

  const log = await eventually(async () => find((r) => r.template === 'logentry'), 'a logentry instance');
  assert.equal(log.instance, 'accesslog.istio-system');
  assert.equal(log['severity'], 'Info');
  assert.ok(!Number.isNaN(Date.parse(String(log['timestamp']))), `timestamp ${String(log['timestamp'])}`);
  assert.deepEqual(log['variables'], { method: 'GET', source_principal: 'spiffe://cluster.local/ns/default/sa/reviews', destination_service: RATINGS });

  // And the checks the adapter answered were for the callers' versions.
  const checked = SampleAdapter.records(out).filter((r) => r.template === 'listentry');
  assert.ok(checked.some((r) => r['value'] === 'v1' && r['allowed'] === true));
  assert.ok(checked.some((r) => r['value'] === 'v3' && r['allowed'] === false));
});
