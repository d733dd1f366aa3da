// Live registration in the local registry: heartbeats, UNHEALTHY after
// unhealthyAfterMs, removal after removeAfterMs (fake clock), WorkloadGroup
// templates, conflicts, handles, and the registration authorizers.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RegistryEvent } from '../../src/pilot/model/index.ts';
import type { RegistryClock, WorkloadRegistration } from '../../src/pilot/registry/index.ts';
import { LocalRegistry, SpiffeRegistrationAuthorizer, allowAllRegistrations, systemRegistryClock } from '../../src/pilot/registry/index.ts';
import type { LocalRegistryOptions } from '../../src/pilot/registry/index.ts';
import { localSetup } from './fixtures/registry-local-setup.ts';
import { serviceEntry, workloadEntry, workloadGroup } from './fixtures/registry-objects.ts';

const HOST = 'ratings.shop.internal';
const entry = serviceEntry('shop', 'ratings', {
  hosts: [HOST], ports: [{ number: 9080, name: 'http', protocol: 'HTTP' }], resolution: 'STATIC', workloadSelector: { labels: { app: 'ratings' } },
});
const group = workloadGroup('shop', 'ratings', {
  metadata: { labels: { app: 'ratings', tier: 'backend' } },
  template: { labels: { version: 'v1', tier: 'template' }, serviceAccount: 'ratings-sa', network: 'vm-net', ports: { http: 8080 }, weight: 2 },
});

const vm = (name = 'ratings-vm-1', extra: Partial<WorkloadRegistration> = {}): WorkloadRegistration => ({
  name, namespace: 'shop', address: '10.5.0.1', labels: { app: 'ratings' }, ...extra,
});

async function running(options: Partial<LocalRegistryOptions> = {}) {
  const setup = await localSetup({ meshConfig: { trustDomain: 'example.org' }, ...options }, [entry, group, workloadEntry('shop', 'taken', { address: '10.9.9.9' })]);
  await setup.registry.run();
  const events: RegistryEvent[] = [];
  setup.registry.onChange((e) => events.push(e));
  return { ...setup, events };
}

const health = (registry: LocalRegistry) => registry.endpoints(HOST).map((e) => `${e.workload.name}:${e.workload.health}`);

describe('heartbeats', () => {
  test('a registered workload is selected; no heartbeat for 15 s: UNHEALTHY; for 60 s: removed', async () => {
    const s = await running();
    try {
      s.registry.register(vm());
      assert.deepEqual(health(s.registry), ['ratings-vm-1:HEALTHY']);
      // It runs as `default`, a new identity behind the service: a full push.
      assert.deepEqual(s.events.splice(0), [{ kind: 'services', hostnames: [HOST] }]);

      s.clock.advance(14_999);
      assert.deepEqual(health(s.registry), ['ratings-vm-1:HEALTHY']);
      s.clock.advance(1);
      assert.deepEqual(health(s.registry), ['ratings-vm-1:UNHEALTHY']);
      assert.deepEqual(s.events.splice(0), [{ kind: 'endpoints', hostnames: [HOST] }]);
      assert.equal(s.registry.workloads().find((w) => w.name === 'ratings-vm-1')!.health, 'UNHEALTHY');

      s.clock.advance(44_999);
      assert.deepEqual(health(s.registry), ['ratings-vm-1:UNHEALTHY']);
      s.clock.advance(1);
      assert.deepEqual(health(s.registry), []);
      assert.deepEqual(s.events.splice(0), [{ kind: 'services', hostnames: [HOST] }]);
      assert.equal(s.registry.heartbeat('ratings-vm-1', 'shop'), false, 'a removed workload must register again');
      assert.equal(s.clock.pending(), 0);
    } finally {
      await s.close();
    }
  });

  test('heartbeats keep it healthy; one after UNHEALTHY makes it HEALTHY again (endpoints events only)', async () => {
    const s = await running();
    try {
      s.registry.register(vm());
      s.events.splice(0);
      for (let i = 0; i < 10; i++) {
        s.clock.advance(10_000);
        assert.equal(s.registry.heartbeat('ratings-vm-1', 'shop'), true);
      }
      assert.deepEqual(health(s.registry), ['ratings-vm-1:HEALTHY']);
      assert.deepEqual(s.events, [], 'healthy heartbeats change nothing');
      assert.equal(s.clock.pending(), 1, 'one timer per workload, whatever the heartbeat rate');

      s.clock.advance(20_000);
      assert.deepEqual(health(s.registry), ['ratings-vm-1:UNHEALTHY']);
      s.registry.heartbeat('ratings-vm-1', 'shop');
      assert.deepEqual(health(s.registry), ['ratings-vm-1:HEALTHY']);
      assert.deepEqual(s.events.splice(0), [{ kind: 'endpoints', hostnames: [HOST] }, { kind: 'endpoints', hostnames: [HOST] }]);
      // The deadline restarts from the last heartbeat, not from the removal deadline.
      s.clock.advance(15_000);
      assert.deepEqual(health(s.registry), ['ratings-vm-1:UNHEALTHY']);
    } finally {
      await s.close();
    }
  });

  test('the deadlines are configurable', async () => {
    const s = await running({ unhealthyAfterMs: 1000, removeAfterMs: 3000 });
    try {
      s.registry.register(vm());
      s.clock.advance(1000);
      assert.deepEqual(health(s.registry), ['ratings-vm-1:UNHEALTHY']);
      s.clock.advance(2000);
      assert.deepEqual(health(s.registry), []);
    } finally {
      await s.close();
    }
    assert.throws(() => new LocalRegistry({ snapshots: { subscribe: () => () => {} }, unhealthyAfterMs: 10, removeAfterMs: 5 }), RangeError);
  });

  test('the handle heartbeats and unregisters; re-registering retires the old handle', async () => {
    const s = await running();
    try {
      const first = s.registry.register(vm());
      s.clock.advance(10_000);
      assert.equal(first.heartbeat(), true);
      const second = s.registry.register(vm('ratings-vm-1', { address: '10.5.0.2' }));
      assert.equal(first.heartbeat(), false);
      assert.equal(first.unregister(), false);
      assert.deepEqual(s.registry.endpoints(HOST).map((e) => e.workload.address), ['10.5.0.2']);
      assert.equal(second.unregister(), true);
      assert.deepEqual(s.registry.endpoints(HOST), []);
      assert.equal(s.clock.pending(), 0);
    } finally {
      await s.close();
    }
  });

  test('stop() cancels every heartbeat timer', async () => {
    const s = await running();
    s.registry.register(vm('a'));
    s.registry.register(vm('b'));
    assert.equal(s.clock.pending(), 2);
    await s.close();
    assert.equal(s.clock.pending(), 0);
    assert.throws(() => s.registry.register(vm('c')), { code: 'MESH_ERR_REGISTRY_STOPPED' });
  });

  test('with the system clock: real timers, unref\'d (a deadline keeps no process alive), all cleared by stop()', async () => {
    const live = new Set<unknown>();
    const spy: RegistryClock = {
      now: () => systemRegistryClock.now(),
      setTimeout: (fn, ms) => {
        const handle = systemRegistryClock.setTimeout(fn, ms);
        live.add(handle);
        return handle;
      },
      clearTimeout: (handle) => {
        live.delete(handle);
        systemRegistryClock.clearTimeout(handle);
      },
    };
    const setup = await localSetup();
    const registry = new LocalRegistry({ snapshots: setup.distributor, clock: spy });
    await registry.run();
    registry.register(vm());
    assert.equal(live.size, 1);
    const [handle] = live as Set<NodeJS.Timeout>;
    assert.equal(handle!.hasRef(), false);
    await registry.stop();
    await setup.close();
    assert.equal(live.size, 0);
  });
});

describe('registration', () => {
  test('a WorkloadGroup fills in labels, identity, network, ports and weight; the registration wins', async () => {
    const s = await running();
    try {
      s.registry.register({ name: 'vm-g', namespace: 'shop', address: '10.5.0.3', group: 'ratings', labels: { version: 'v2' }, locality: 'us/east' });
      const w = s.registry.workloads().find((x) => x.name === 'vm-g')!;
      assert.deepEqual(w.labels, { app: 'ratings', tier: 'backend', version: 'v2' });
      assert.equal(w.serviceAccount, 'ratings-sa');
      assert.equal(w.network, 'vm-net');
      assert.equal(w.weight, 2);
      assert.deepEqual(w.locality, { region: 'us', zone: 'east', subzone: '' });
      assert.deepEqual(s.registry.endpoints(HOST).map((e) => `${e.workload.address}:${e.endpointPort}`), ['10.5.0.3:8080']);
      assert.deepEqual(s.registry.services()[0]!.serviceAccounts, ['spiffe://example.org/ns/shop/sa/ratings-sa']);

      s.registry.register({ name: 'vm-h', namespace: 'shop', address: '10.5.0.4', group: 'ratings', serviceAccount: 'own', network: 'n2', ports: { http: 9999 } });
      const h = s.registry.workloads().find((x) => x.name === 'vm-h')!;
      assert.deepEqual([h.serviceAccount, h.network, h.ports], ['own', 'n2', { http: 9999 }]);
    } finally {
      await s.close();
    }
  });

  const bad: [string, WorkloadRegistration, string][] = [
    ['no name', { name: '', namespace: 'shop', address: '10.0.0.1' }, 'MESH_ERR_REGISTRY_INVALID_REGISTRATION'],
    ['no namespace', { name: 'x', namespace: '', address: '10.0.0.1' }, 'MESH_ERR_REGISTRY_INVALID_REGISTRATION'],
    ['no address', { name: 'x', namespace: 'shop', address: '' }, 'MESH_ERR_REGISTRY_INVALID_REGISTRATION'],
    ['port out of range', { name: 'x', namespace: 'shop', address: '10.0.0.1', ports: { http: 70000 } }, 'MESH_ERR_REGISTRY_INVALID_REGISTRATION'],
    ['negative weight', { name: 'x', namespace: 'shop', address: '10.0.0.1', weight: -1 }, 'MESH_ERR_REGISTRY_INVALID_REGISTRATION'],
    ['unknown group', { name: 'x', namespace: 'shop', address: '10.0.0.1', group: 'nope' }, 'MESH_ERR_REGISTRY_UNKNOWN_GROUP'],
    ['group of another namespace', { name: 'x', namespace: 'other', address: '10.0.0.1', group: 'ratings' }, 'MESH_ERR_REGISTRY_UNKNOWN_GROUP'],
    ['the name of a WorkloadEntry', { name: 'taken', namespace: 'shop', address: '10.0.0.1' }, 'MESH_ERR_REGISTRY_CONFLICT'],
  ];
  for (const [name, reg, code] of bad) {
    test(`refused: ${name} (${code}), and nothing changes`, async () => {
      const s = await running();
      try {
        const workloads = s.registry.workloads();
        assert.throws(() => s.registry.register(reg), { code });
        assert.equal(s.registry.workloads(), workloads);
        assert.deepEqual(s.events, []);
      } finally {
        await s.close();
      }
    });
  }
});

describe('authorizers', () => {
  const spiffe = new SpiffeRegistrationAuthorizer('example.org', ['old.example.org']);
  const reg = vm('r', { serviceAccount: 'ratings-sa' });
  const cases: [string, WorkloadRegistration, string | undefined, boolean][] = [
    ['its own identity', reg, 'spiffe://example.org/ns/shop/sa/ratings-sa', true],
    ['its own identity in an alias trust domain', reg, 'spiffe://old.example.org/ns/shop/sa/ratings-sa', true],
    ['another service account', reg, 'spiffe://example.org/ns/shop/sa/reviews', false],
    ['another namespace', reg, 'spiffe://example.org/ns/other/sa/ratings-sa', false],
    ['another trust domain', reg, 'spiffe://evil.org/ns/shop/sa/ratings-sa', false],
    ['no identity (unauthenticated)', reg, undefined, false],
    ['not a SPIFFE id', reg, 'ratings-sa', false],
    ['extra path segments', reg, 'spiffe://example.org/ns/shop/sa/ratings-sa/x', false],
    ['no service account means `default`', vm('d'), 'spiffe://example.org/ns/shop/sa/default', true],
  ];
  for (const [name, registration, identity, allowed] of cases) {
    test(`SpiffeRegistrationAuthorizer: ${name} -> ${allowed ? 'allowed' : 'refused'}`, () => {
      if (allowed) spiffe.authorize(registration, identity);
      else assert.throws(() => spiffe.authorize(registration, identity), { code: 'MESH_ERR_REGISTRY_UNAUTHORIZED' });
    });
  }

  test('the default allows everyone', () => {
    allowAllRegistrations.authorize(reg, undefined);
  });

  test('the registry authorizes the merged registration, and heartbeats and unregisters by the same identity', async () => {
    const s = await running({ authorizer: new SpiffeRegistrationAuthorizer('example.org') });
    try {
      const viaGroup = { name: 'vm-g', namespace: 'shop', address: '10.5.0.3', group: 'ratings' };
      // The group's template names ratings-sa, so that identity, not `default`, must register it.
      assert.throws(() => s.registry.register(viaGroup, 'spiffe://example.org/ns/shop/sa/default'), { code: 'MESH_ERR_REGISTRY_UNAUTHORIZED' });
      assert.deepEqual(s.registry.workloads().map((w) => w.name), ['taken']);
      s.registry.register(viaGroup, 'spiffe://example.org/ns/shop/sa/ratings-sa');
      assert.throws(() => s.registry.heartbeat('vm-g', 'shop', 'spiffe://example.org/ns/shop/sa/other'), { code: 'MESH_ERR_REGISTRY_UNAUTHORIZED' });
      assert.equal(s.registry.heartbeat('vm-g', 'shop', 'spiffe://example.org/ns/shop/sa/ratings-sa'), true);
      // Nobody else may take the name over by registering again.
      assert.throws(() => s.registry.register({ ...viaGroup, serviceAccount: 'thief' }, 'spiffe://example.org/ns/shop/sa/thief'), { code: 'MESH_ERR_REGISTRY_UNAUTHORIZED' });
      assert.throws(() => s.registry.unregister('vm-g', 'shop', undefined), { code: 'MESH_ERR_REGISTRY_UNAUTHORIZED' });
      assert.equal(s.registry.unregister('vm-g', 'shop', 'spiffe://example.org/ns/shop/sa/ratings-sa'), true);
    } finally {
      await s.close();
    }
  });
});
