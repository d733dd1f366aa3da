// Capture-mode configuration without privileges: VIP assignment (stable,
// unique, in 240.240.0.0/16, existing ones kept), the DNS table, the mode
// setting of flags and mesh.yaml, and the `auto` decision's reason.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { captureAvailable, decideCapture, parseCaptureSetting } from '../../src/runtime/capture/mode.ts';
import { assignVips, isVip, nameTable } from '../../src/runtime/capture/vips.ts';
import { loadTopology } from '../../src/runtime/topology.ts';
import { tempDir } from '../helpers/processes.ts';

test('VIPs are stable across processes, unique, and keep the ones already assigned', () => {
  const hosts = Array.from({ length: 300 }, (_, i) => `svc${i}.default.svc.cluster.local`);
  const a = assignVips(hosts);
  const b = assignVips([...hosts].reverse());
  assert.deepEqual([...a.entries()].sort(), [...b.entries()].sort(), 'the same VIPs whatever the order');
  assert.equal(new Set(a.values()).size, hosts.length, 'no VIP given twice');
  assert.ok([...a.values()].every(isVip));
  const taken = a.get('svc0.default.svc.cluster.local')!;
  const c = assignVips(['new.default.svc.cluster.local', 'svc0.default.svc.cluster.local'], new Map([['other.default.svc.cluster.local', taken]]));
  assert.equal(c.get('other.default.svc.cluster.local'), taken);
  assert.notEqual(c.get('svc0.default.svc.cluster.local'), taken, 'a taken VIP is never reused');
});

test('the DNS table prefers ServiceEntry addresses, then the assigned VIP', () => {
  const table = nameTable(
    [
      { hostname: 'a.default.svc.cluster.local', addresses: ['240.240.9.9'] },
      { hostname: 'b.default.svc.cluster.local', addresses: ['0.0.0.0'] },
      { hostname: 'c.default.svc.cluster.local' },
      { hostname: 'httpbin.example.test' },
      { hostname: 'static.example.test', addresses: ['240.240.7.7'] },
    ],
    new Map([['b.default.svc.cluster.local', '240.240.1.2'], ['httpbin.example.test', '240.240.3.3']]),
  );
  // An external host without addresses resolves upstream (its real address), not to a VIP.
  assert.deepEqual(table, { 'a.default.svc.cluster.local': ['240.240.9.9'], 'b.default.svc.cluster.local': ['240.240.1.2'], 'static.example.test': ['240.240.7.7'] });
});

test('capture settings: flags and mesh.yaml, with errors naming the field', () => {
  assert.equal(parseCaptureSetting(undefined, 'x'), 'off');
  assert.equal(parseCaptureSetting(true, 'x'), 'on');
  assert.equal(parseCaptureSetting('auto', 'x'), 'auto');
  assert.throws(() => parseCaptureSetting('maybe', 'mesh.yaml: capture'), /mesh\.yaml: capture: "maybe" is not one of true, false, auto/);
  assert.deepEqual(decideCapture('off'), { capture: false, reason: 'capture off: each app gets <SVC>_SERVICE_HOST/PORT' });
  const auto = decideCapture('auto');
  assert.equal(auto.capture, captureAvailable().ok);
  assert.match(auto.reason, /^capture auto: /);
  if (!captureAvailable().ok) assert.throws(() => decideCapture('on'), /cannot run here/);

  const dir = tempDir('mesh-capture-topology-');
  const file = join(dir, 'mesh.yaml');
  writeFileSync(file, 'capture: { mode: auto, bridge: x1, subnet: 10.250.3.0/24 }\nservices: [{ name: a, command: [node, a.js] }]\n');
  assert.deepEqual(loadTopology(file).capture, { mode: 'auto', bridge: 'x1', subnet: '10.250.3.0/24' });
  writeFileSync(file, 'services: [{ name: a, command: [node, a.js] }]\n');
  assert.deepEqual(loadTopology(file).capture, { mode: 'off' });
  writeFileSync(file, 'capture: sometimes\nservices: [{ name: a, command: [node, a.js] }]\n');
  assert.throws(() => loadTopology(file), /capture: "sometimes" is not one of/);
});

test('certTtl in mesh.yaml: a duration for every sidecar, or an error naming the field', () => {
  const dir = tempDir('mesh-cert-ttl-topology-');
  const file = join(dir, 'mesh.yaml');
  writeFileSync(file, 'certTtl: 90m\nservices: [{ name: a, command: [node, a.js] }]\n');
  assert.equal(loadTopology(file).certTtlSeconds, 5400);
  writeFileSync(file, 'services: [{ name: a, command: [node, a.js] }]\n');
  assert.equal(loadTopology(file).certTtlSeconds, undefined, 'absent: Citadel default');
  writeFileSync(file, 'certTtl: soon\nservices: [{ name: a, command: [node, a.js] }]\n');
  assert.throws(() => loadTopology(file), /mesh\.yaml: certTtl: soon is not a duration such as 6s, 90m or 24h/);
  writeFileSync(file, 'certTtl: 0.5s\nservices: [{ name: a, command: [node, a.js] }]\n');
  assert.throws(() => loadTopology(file), /certTtl: 0\.5s/, 'under a second is refused');
});
