// Mixer quota and telemetry through real sidecars (e2e-helpers.ts):
// memquota limits reviews v1 -> ratings to 1 req/s (429, flag RL) while an
// override lets v3 through; a prometheus metric defined in Mixer config
// appears on the control plane's /metrics after traffic (reports over istio.mixer.v1.Mixer/Report).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { eventually } from '../runtime/helpers.ts';
import { MixerMesh, RATINGS } from './e2e-helpers.ts';
import { memquotaSpec, REQUEST_COUNT_DIMENSIONS, requestCounterYaml, requestCountQuotaYaml, VERSION_AND_DESTINATION } from './mixer-config-fixtures.ts';

let mesh: MixerMesh;

before(async () => {
  mesh = await MixerMesh.start();
});

after(async () => {
  await mesh?.stop();
});

const QUOTA = requestCountQuotaYaml({
  handlerSpec: memquotaSpec({ maxAmount: 1, validDuration: '1s', overrides: [{ dimensions: { source: 'v3', destination: RATINGS }, maxAmount: 1000 }] }),
  dimensions: VERSION_AND_DESTINATION,
});

const TELEMETRY = requestCounterYaml({ handler: 'prom', metric: 'e2e_requests_total', instance: 'e2erequestcount', rule: 'e2etelemetry', dimensions: REQUEST_COUNT_DIMENSIONS, match: 'context.protocol == "http"' });

test('memquota: 1 req/s from reviews v1 to ratings gives 429 beyond the limit; the v3 override passes', { timeout: 30_000 }, async () => {
  await mesh.apply(QUOTA);
  await eventually(async () => ((await mesh.call(mesh.v1Port)).status === 429 ? true : undefined), 'a 429 for reviews v1');
  // Beyond the limit within one second: at most one request passes.
  await new Promise((r) => setTimeout(r, 1_100));
  const burst = [];
  const t0 = Date.now();
  for (let i = 0; i < 4; i++) burst.push((await mesh.call(mesh.v1Port)).status);
  const elapsed = Date.now() - t0;
  assert.equal(burst[0], 200, `within the limit: ${burst}`);
  assert.ok(burst.every((s) => s === 200 || s === 429), `${burst}`);
  assert.ok(burst.includes(429), `beyond the limit: ${burst}`);
  // 1 req/s: no more passes than windows the burst spanned (all four within one second on an idle machine).
  assert.ok(burst.filter((s) => s === 200).length <= 1 + Math.floor(elapsed / 1000), `${burst} in ${elapsed} ms`);
  // The override (1000/s for v3) passes.
  for (let i = 0; i < 6; i++) assert.equal((await mesh.call(mesh.v3Port)).status, 200);
  // Within the limit again after the window.
  await new Promise((r) => setTimeout(r, 1_100));
  assert.equal((await mesh.call(mesh.v1Port)).status, 200);
  await mesh.remove(QUOTA);
});

test('a prometheus metric defined in Mixer config appears on the control plane /metrics after traffic (Report API from the sidecars)', { timeout: 30_000 }, async () => {
  await mesh.apply(TELEMETRY);
  const line = await eventually(async () => {
    await mesh.call(mesh.v1Port);
    const m = /^istio_e2e_requests_total\{[^}]*destination_service="ratings\.default\.svc\.cluster\.local"[^}]*\} (\d+)/m.exec(await mesh.metrics());
    return m && m[0].includes('source_version="v1"') && m[0].includes('response_code="200"') ? m[0] : undefined;
  }, 'istio_e2e_requests_total for ratings');
  assert.match(line, /reporter="inbound"/);
  await mesh.remove(TELEMETRY);
});
