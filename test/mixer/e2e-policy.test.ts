// Mixer policy through real sidecars (a control plane and three `mesh run`
// workloads, e2e-helpers.ts): Pilot adds the Mixer filters only when Mixer
// config exists; a denier on the source version (and mTLS principal) answers
// 403 with its message; a listchecker whitelists source versions; the
// sidecar's check cache keeps almost every check local (mixer_check_total).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { eventually } from '../runtime/helpers.ts';
import { MixerMesh, RATINGS } from './e2e-helpers.ts';
import { denyV3Yaml, versionWhitelistYaml } from './mixer-config-fixtures.ts';

let mesh: MixerMesh;

before(async () => {
  mesh = await MixerMesh.start();
});

after(async () => {
  await mesh?.stop();
});

const DENY_V3 = denyV3Yaml({
  status: '{ code: 7, message: "Not allowed: reviews v3 is blocked" }',
  validDuration: '10s',
  validUseCount: 1000,
  rule: 'denyreviewsv3',
  match: `source.labels["version"] == "v3" && source.principal == "spiffe://cluster.local/ns/default/sa/reviews" && destination.service.host == "${RATINGS}"`,
});

const WHITELIST = versionWhitelistYaml({ instance: 'appversion', match: 'destination.service.name == "ratings" && destination.labels["app"] == "ratings"' });

test('without Mixer config no Mixer filter runs: no Check reaches Mixer', { timeout: 20_000 }, async () => {
  for (let i = 0; i < 5; i++) assert.equal((await mesh.call(mesh.v1Port)).status, 200);
  assert.equal(await mesh.checkCalls(), 0);
});

test('a denier on the source version (and mTLS principal) blocks with 403 and its message; the check cache keeps checks local', { timeout: 30_000 }, async (t) => {
  await mesh.apply(DENY_V3);
  const denied = await eventually(async () => {
    const r = await mesh.call(mesh.v3Port);
    return r.status === 403 ? r : undefined;
  }, 'reviews v3 denied');
  assert.match(denied.body, /Not allowed: reviews v3 is blocked/);
  assert.equal((await mesh.call(mesh.v1Port)).status, 200);
  // Stable source and path: the first answer is reused locally.
  const before = await mesh.checkCalls();
  for (let i = 0; i < 40; i++) {
    assert.equal((await mesh.call(mesh.v1Port)).status, 200);
    assert.equal((await mesh.call(mesh.v3Port)).status, 403);
  }
  const rpcs = (await mesh.checkCalls()) - before;
  t.diagnostic(`80 requests (2 sources, 1 path) -> ${rpcs} Check RPCs to Mixer`);
  assert.ok(rpcs <= 4, `80 requests made ${rpcs} Check RPCs; almost all should hit the sidecar's check cache`);
  await mesh.remove(DENY_V3);
});

test('a listchecker whitelist on source labels admits v1 and refuses v3', { timeout: 30_000 }, async () => {
  await mesh.apply(WHITELIST);
  const refused = await eventually(async () => {
    const r = await mesh.call(mesh.v3Port);
    return r.status === 403 && /not whitelisted/.test(r.body) ? r : undefined;
  }, 'reviews v3 refused by the whitelist');
  assert.match(refused.body, /v3 is not whitelisted/);
  assert.equal((await mesh.call(mesh.v1Port)).status, 200);
  await mesh.remove(WHITELIST);
  await eventually(async () => ((await mesh.call(mesh.v3Port)).status === 200 ? true : undefined), 'reviews v3 admitted once the whitelist is gone');
});

