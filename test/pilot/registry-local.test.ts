// The local adapter end to end: Galley snapshots in, services, endpoints,
// workloads and events out; selector-based ServiceEntries over WorkloadEntries
// and live registrations; event kinds (full push vs EDS fast path).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ConfigObject, ServiceEntrySpec } from '../../src/api/index.ts';
import type { ConfigSnapshot } from '../../src/galley/index.ts';
import type { RegistryEvent } from '../../src/pilot/model/index.ts';
import { LocalRegistry } from '../../src/pilot/registry/index.ts';
import { RegistryStateBuilder } from '../../src/pilot/registry/registry-state.ts';
import { localSetup } from './fixtures/registry-local-setup.ts';
import { serviceEntry, workloadEntry } from './fixtures/registry-objects.ts';

const selectorEntry = (ns = 'shop', labels: Record<string, string> = { app: 'api' }) =>
  serviceEntry(ns, 'api', { hosts: ['api.shop.internal'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'STATIC', workloadSelector: { labels } });

async function running(initial: ConfigObject[] = []) {
  const setup = await localSetup({ meshConfig: { trustDomain: 'example.org' } }, initial);
  await setup.registry.run();
  const events: RegistryEvent[] = [];
  setup.registry.onChange((e) => events.push(e));
  return { ...setup, events };
}

const addresses = (registry: LocalRegistry, host: string) => registry.endpoints(host).map((e) => `${e.workload.address}:${e.endpointPort}`);

describe('workloadSelector', () => {
  test('selects WorkloadEntries of its own namespace whose labels match', async () => {
    const s = await running([
      selectorEntry(),
      workloadEntry('shop', 'vm-1', { address: '10.0.0.1', labels: { app: 'api', version: 'v1' }, ports: { http: 8080 } }),
      workloadEntry('shop', 'vm-2', { address: '10.0.0.2', labels: { app: 'web' } }),
      workloadEntry('other', 'vm-3', { address: '10.0.0.3', labels: { app: 'api' } }),
      workloadEntry('shop', 'vm-4', { address: '10.0.0.4', labels: { app: 'api' } }),
    ]);
    try {
      assert.deepEqual(addresses(s.registry, 'api.shop.internal'), ['10.0.0.1:8080', '10.0.0.4:80']);
      assert.deepEqual(s.registry.workloads().map((w) => `${w.namespace}/${w.name}`), ['other/vm-3', 'shop/vm-1', 'shop/vm-2', 'shop/vm-4']);
    } finally {
      await s.close();
    }
  });

  test('an empty selector selects every workload in the namespace', async () => {
    const s = await running([selectorEntry('shop', {}), workloadEntry('shop', 'a', { address: '10.0.0.1' }), workloadEntry('shop', 'b', { address: '10.0.0.2', labels: { x: 'y' } })]);
    try {
      assert.deepEqual(addresses(s.registry, 'api.shop.internal'), ['10.0.0.1:80', '10.0.0.2:80']);
    } finally {
      await s.close();
    }
  });

  test('the selected workloads\' identities join the service accounts', async () => {
    const s = await running([selectorEntry(), workloadEntry('shop', 'vm-1', { address: '10.0.0.1', labels: { app: 'api' }, serviceAccount: 'api-sa' })]);
    try {
      assert.deepEqual(s.registry.services()[0]!.serviceAccounts, ['spiffe://example.org/ns/shop/sa/api-sa']);
    } finally {
      await s.close();
    }
  });
});

describe('events', () => {
  test('WorkloadEntry added, changed, removed: endpoints events for the selecting host only', async () => {
    const s = await running([selectorEntry()]);
    try {
      const services = s.registry.services();
      const vm = workloadEntry('shop', 'vm-1', { address: '10.0.0.1', labels: { app: 'api' } });
      await s.apply(vm);
      await s.apply(workloadEntry('shop', 'vm-1', { address: '10.0.0.9', labels: { app: 'api' } }));
      await s.remove(vm);
      assert.deepEqual(s.events, [
        { kind: 'endpoints', hostnames: ['api.shop.internal'] },
        { kind: 'endpoints', hostnames: ['api.shop.internal'] },
        { kind: 'endpoints', hostnames: ['api.shop.internal'] },
      ]);
      assert.equal(s.registry.services(), services, 'the services array is untouched by endpoint changes');
    } finally {
      await s.close();
    }
  });

  test('a WorkloadEntry that changes the identities behind a service needs a full push', async () => {
    const s = await running([selectorEntry()]);
    try {
      await s.apply(workloadEntry('shop', 'vm-1', { address: '10.0.0.1', labels: { app: 'api' }, serviceAccount: 'api-sa' }));
      assert.deepEqual(s.events, [{ kind: 'services', hostnames: ['api.shop.internal'] }]);
    } finally {
      await s.close();
    }
  });

  test('inline endpoints changed: endpoints event; ports changed: services event', async () => {
    const se = (endpoints: string[], extraPort = false) => serviceEntry('shop', 'db', {
      hosts: ['db.shop.internal'], resolution: 'STATIC',
      ports: [{ number: 5432, name: 'tcp-pg', protocol: 'TCP' }, ...(extraPort ? [{ number: 9187, name: 'http-metrics', protocol: 'HTTP' }] : [])],
      addresses: ['240.0.0.5'],
      endpoints: endpoints.map((address) => ({ address })),
    });
    const s = await running([se(['10.0.0.1'])]);
    try {
      await s.apply(se(['10.0.0.1', '10.0.0.2']));
      assert.deepEqual(s.events.splice(0), [{ kind: 'endpoints', hostnames: ['db.shop.internal'] }]);
      assert.deepEqual(addresses(s.registry, 'db.shop.internal'), ['10.0.0.1:5432', '10.0.0.2:5432']);
      await s.apply(se(['10.0.0.1', '10.0.0.2'], true));
      assert.deepEqual(s.events.splice(0), [{ kind: 'services', hostnames: ['db.shop.internal'] }]);
      await s.remove(se([]));
      assert.deepEqual(s.events.splice(0), [{ kind: 'services', hostnames: ['db.shop.internal'] }]);
      assert.deepEqual(s.registry.services(), []);
      assert.deepEqual(s.registry.endpoints('db.shop.internal'), []);
    } finally {
      await s.close();
    }
  });

  test('a workload no service selects: an endpoints event with no hosts (workloads() changed)', async () => {
    const s = await running([selectorEntry()]);
    try {
      await s.apply(workloadEntry('shop', 'lonely', { address: '10.0.0.7', labels: { app: 'other' } }));
      assert.deepEqual(s.events, [{ kind: 'endpoints', hostnames: [] }]);
      assert.deepEqual(s.registry.workloads().map((w) => w.name), ['lonely']);
    } finally {
      await s.close();
    }
  });

  test('config the registry does not read changes nothing', async () => {
    const s = await running([selectorEntry()]);
    try {
      const services = s.registry.services();
      await s.apply({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'vs', namespace: 'shop' }, spec: { hosts: ['api.shop.internal'], http: [{ route: [{ destination: { host: 'api.shop.internal' } }] }] } });
      assert.deepEqual(s.events, []);
      assert.equal(s.registry.services(), services);
    } finally {
      await s.close();
    }
  });
});

describe('hosts defined twice', () => {
  test('in one namespace the oldest entry defines the service; endpoints of both are served', async () => {
    const port = { number: 80, name: 'http', protocol: 'HTTP' };
    // Applied in this order, so `z-first` is never younger than `a-second` (the store stamps creation times).
    const s = await running([
      serviceEntry('shop', 'z-first', { hosts: ['dup.internal'], ports: [port], resolution: 'STATIC', addresses: ['240.0.0.1'], endpoints: [{ address: '10.0.0.1' }] }),
    ]);
    try {
      // The store stamps creation times in milliseconds: let the clock move so the two differ.
      const first = Date.now();
      while (Date.now() === first) await new Promise((resolve) => setImmediate(resolve));
      await s.apply(serviceEntry('shop', 'a-second', { hosts: ['dup.internal'], ports: [port], resolution: 'STATIC', addresses: ['240.0.0.2'], endpoints: [{ address: '10.0.0.2' }] }));
      const stamps = s.distributor.current()!.objects('networking.istio.io/v1/ServiceEntry').map((o) => o.metadata.creationTimestamp!);
      assert.notEqual(stamps[0], stamps[1]);
      const services = s.registry.services();
      assert.equal(services.length, 1);
      assert.equal(services[0]!.origin, 'ServiceEntry shop/z-first');
      assert.deepEqual(services[0]!.addresses, ['240.0.0.1']);
      assert.deepEqual(addresses(s.registry, 'dup.internal'), ['10.0.0.1:80', '10.0.0.2:80']);
      assert.deepEqual(s.events, [{ kind: 'endpoints', hostnames: ['dup.internal'] }]);
    } finally {
      await s.close();
    }
  });

  test('in one namespace two entries for a host merge: the ports of both (Istio\'s egress gateway task adds 443 beside 80)', async () => {
    const external = (name: string, ports: { number: number; name: string; protocol: string }[]) => serviceEntry('shop', name, { hosts: ['httpbin.example.test'], ports, resolution: 'DNS', location: 'MESH_EXTERNAL' });
    const s = await running([external('httpbin-http', [{ number: 80, name: 'http', protocol: 'HTTP' }])]);
    try {
      const first = Date.now();
      while (Date.now() === first) await new Promise((resolve) => setImmediate(resolve));
      // The same port again in the second entry is not repeated; the new one is added.
      await s.apply(external('httpbin-tls', [{ number: 443, name: 'tls', protocol: 'TLS' }, { number: 80, name: 'http-again', protocol: 'HTTP' }]));
      const services = s.registry.services();
      assert.equal(services.length, 1);
      assert.equal(services[0]!.origin, 'ServiceEntry shop/httpbin-http');
      assert.deepEqual(services[0]!.ports.map((p) => `${p.name}/${p.port}/${p.protocol}`), ['http/80/HTTP', 'tls/443/TLS']);
      assert.deepEqual(s.events.splice(0), [{ kind: 'services', hostnames: ['httpbin.example.test'] }]);
      // Each entry resolves the host for its own ports.
      assert.deepEqual(addresses(s.registry, 'httpbin.example.test').sort(), ['httpbin.example.test:443', 'httpbin.example.test:80', 'httpbin.example.test:80']);
      await s.remove(external('httpbin-tls', []));
      assert.deepEqual(s.registry.services()[0]!.ports.map((p) => p.port), [80], 'removing the second entry removes its port');
    } finally {
      await s.close();
    }
  });

  test('entries that differ in resolution, labels, selector or exportTo do not merge: the oldest defines the host', () => {
    const builder = new RegistryStateBuilder({ registry: 'local', trustDomain: 'cluster.local' });
    const base = { hosts: ['dup.internal'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'STATIC' as const };
    const older = serviceEntry('shop', 'older', base, { creationTimestamp: '2024-01-01T00:00:00.000Z' });
    const cases: [string, Record<string, unknown>, Record<string, unknown>][] = [
      ['same everything: merged', {}, {}],
      ['resolution', { resolution: 'DNS' }, {}],
      ['selector', { workloadSelector: { labels: { app: 'x' } } }, {}],
      ['exportTo', { exportTo: ['.'] }, {}],
      ['labels', {}, { labels: { team: 'b' } }],
    ];
    for (const [name, spec, meta] of cases) {
      const newer = serviceEntry('shop', 'newer', { ...base, ...spec, ports: [{ number: 443, name: 'tls', protocol: 'TLS' }] } as ServiceEntrySpec, { creationTimestamp: '2024-02-01T00:00:00.000Z', ...meta });
      const state = builder.build({ serviceEntries: [newer, older], workloadEntries: [], registered: [] });
      assert.deepEqual(state.services.map((x) => [x.origin, x.ports.map((p) => p.port)]), [['ServiceEntry shop/older', name.endsWith('merged') ? [80, 443] : [80]]], name);
    }
  });

  test('the state builder orders definitions by creation time, then namespace/name', () => {
    const port = { number: 80, name: 'http', protocol: 'HTTP' };
    const builder = new RegistryStateBuilder({ registry: 'local', trustDomain: 'cluster.local' });
    const older = serviceEntry('shop', 'b', { hosts: ['dup.internal'], ports: [port], addresses: ['240.0.0.1'] }, { creationTimestamp: '2024-01-01T00:00:00.000Z' });
    const newer = serviceEntry('shop', 'a', { hosts: ['dup.internal'], ports: [port], addresses: ['240.0.0.2'] }, { creationTimestamp: '2024-02-01T00:00:00.000Z' });
    const state = builder.build({ serviceEntries: [newer, older], workloadEntries: [], registered: [] });
    assert.deepEqual(state.services.map((x) => x.origin), ['ServiceEntry shop/b']);
    const tie = builder.build({ serviceEntries: [older, { ...newer, metadata: { ...newer.metadata, creationTimestamp: older.metadata.creationTimestamp } }], workloadEntries: [], registered: [] });
    assert.deepEqual(tie.services.map((x) => x.origin), ['ServiceEntry shop/a']);
  });

  test('in two namespaces they are two services; endpoints() of the host serves both', async () => {
    const port = { number: 80, name: 'http', protocol: 'HTTP' };
    const s = await running([
      serviceEntry('a', 'x', { hosts: ['shared.internal'], ports: [port], resolution: 'STATIC', exportTo: ['.'], endpoints: [{ address: '10.0.0.1' }] }),
      serviceEntry('b', 'x', { hosts: ['shared.internal'], ports: [port], resolution: 'STATIC', exportTo: ['.'], endpoints: [{ address: '10.0.0.2' }] }),
    ]);
    try {
      assert.deepEqual(s.registry.services().map((x) => [x.hostname, x.namespace, x.exportTo]), [['shared.internal', 'a', ['.']], ['shared.internal', 'b', ['.']]]);
      assert.deepEqual(addresses(s.registry, 'shared.internal'), ['10.0.0.1:80', '10.0.0.2:80']);
    } finally {
      await s.close();
    }
  });
});

describe('run()', () => {
  test('waits for the first snapshot when the source has none yet, and reports nothing before', async () => {
    let deliver: ((s: ConfigSnapshot) => void) | undefined;
    let unsubscribed = false;
    const source = { subscribe: (l: (s: ConfigSnapshot) => void) => ((deliver = l), () => void (unsubscribed = true)) };
    const setup = await localSetup({}, [selectorEntry(), workloadEntry('shop', 'vm', { address: '10.0.0.1', labels: { app: 'api' } })]);
    const registry = new LocalRegistry({ snapshots: source });
    const events: RegistryEvent[] = [];
    registry.onChange((e) => events.push(e));
    let resolved = false;
    const run = registry.run().then(() => (resolved = true));
    await Promise.resolve();
    assert.equal(resolved, false);
    deliver!(setup.distributor.current()!);
    await run;
    assert.deepEqual(addresses(registry, 'api.shop.internal'), ['10.0.0.1:80']);
    assert.deepEqual(events, []);
    await registry.stop();
    assert.equal(unsubscribed, true);
    await setup.close();
  });

  test('run() after stop() is refused', async () => {
    const s = await localSetup();
    await s.registry.stop();
    await assert.rejects(s.registry.run(), { code: 'MESH_ERR_REGISTRY_STOPPED' });
    await s.close();
  });
});
