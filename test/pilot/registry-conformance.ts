// The conformance suite every platform adapter (local, etcd, Kubernetes) and
// the aggregate must pass: the ServiceRegistry contract from
// src/pilot/model/service-registry.ts, checked through each adapter's own way
// of adding and removing a service (the harness).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RegistryEvent, ServiceRegistry } from '../../src/pilot/model/index.ts';

/**
 * An adapter under test, created but not yet run. The mutators may be used
 * before `registry.run()` (to set the initial state) and after; after run
 * they resolve once the change is written to the adapter's source; the suite
 * then waits for the adapter's event.
 *
 * A service made by `putService` has the given hostname, exactly one port
 * named `http` (number 8080, protocol HTTP) and `endpoints` endpoints with
 * distinct addresses.
 */
export interface ConformanceHarness {
  readonly registry: ServiceRegistry;
  /** Creates the service, or replaces it (same definition) with this many endpoints. */
  putService(hostname: string, endpoints: number): Promise<void>;
  /** Changes only the endpoints of an existing service (the service itself must stay equal). */
  setEndpoints(hostname: string, endpoints: number): Promise<void>;
  removeService(hostname: string): Promise<void>;
  /** Releases what the harness made besides the registry (stores, servers); called after registry.stop(). */
  close(): Promise<void>;
}

export type ConformanceFactory = () => Promise<ConformanceHarness>;

const HEALTH = new Set(['HEALTHY', 'UNHEALTHY', 'DRAINING']);
const RESOLUTIONS = new Set(['STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'NONE']);
/** Longest wait for an adapter's event; a missing event fails the test instead of hanging it. */
const EVENT_TIMEOUT_MS = 5000;

/** Resolves with the first event matching `pred`, recording every event in `seen`. */
function nextEvent(registry: ServiceRegistry, pred: (e: RegistryEvent) => boolean, seen: RegistryEvent[] = []): Promise<RegistryEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no matching registry event within ${EVENT_TIMEOUT_MS} ms; saw ${JSON.stringify(seen)}`));
    }, EVENT_TIMEOUT_MS);
    const off = registry.onChange((e) => {
      seen.push(e);
      if (!pred(e)) return;
      clearTimeout(timer);
      off();
      resolve(e);
    });
  });
}

const about = (kind: RegistryEvent['kind'], host: string) => (e: RegistryEvent) => e.kind === kind && e.hostnames.includes(host);

function resourceCounts(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1);
  return counts;
}

export function registryConformance(name: string, factory: ConformanceFactory): void {
  /** Runs `body` with a fresh harness; stops and closes it whatever happens. */
  async function withHarness(body: (h: ConformanceHarness) => Promise<void>, options: { run?: boolean } = {}): Promise<void> {
    const h = await factory();
    try {
      if (options.run ?? true) await h.registry.run();
      await body(h);
    } finally {
      await h.registry.stop();
      await h.close();
    }
  }

  describe(`registry conformance: ${name}`, () => {
    test('run() resolves with the initial state loaded, and tells nobody about it', () =>
      withHarness(async (h) => {
        await h.putService('alpha.conformance.test', 3);
        await h.putService('beta.conformance.test', 0);
        const events: RegistryEvent[] = [];
        h.registry.onChange((e) => events.push(e));
        await h.registry.run();
        const hosts = h.registry.services().map((s) => s.hostname);
        assert.ok(hosts.includes('alpha.conformance.test'), `services after run: ${hosts.join(', ')}`);
        assert.ok(hosts.includes('beta.conformance.test'));
        assert.equal(h.registry.endpoints('alpha.conformance.test').length, 3);
        assert.equal(h.registry.endpoints('beta.conformance.test').length, 0);
        assert.deepEqual(events, []);
      }, { run: false }));

    test('services() have the model shape', () =>
      withHarness(async (h) => {
        await h.putService('shape.conformance.test', 2);
        const service = h.registry.services().find((s) => s.hostname === 'shape.conformance.test');
        assert.ok(service);
        assert.equal(typeof service.namespace, 'string');
        assert.deepEqual(service.ports.map((p) => ({ name: p.name, port: p.port, protocol: p.protocol })), [{ name: 'http', port: 8080, protocol: 'HTTP' }]);
        for (const field of ['addresses', 'exportTo', 'serviceAccounts'] as const) assert.ok(Array.isArray(service[field]), field);
        assert.equal(typeof service.labels, 'object');
        assert.equal(typeof service.meshExternal, 'boolean');
        assert.ok(RESOLUTIONS.has(service.resolution), service.resolution);
        assert.ok(service.registry.length > 0);
        assert.ok(service.origin.length > 0);
      }));

    test('endpoints() have the model shape and point at the service', () =>
      withHarness(async (h) => {
        await h.putService('eps.conformance.test', 3);
        const service = h.registry.services().find((s) => s.hostname === 'eps.conformance.test')!;
        const eps = h.registry.endpoints('eps.conformance.test');
        assert.equal(eps.length, 3);
        assert.equal(new Set(eps.map((e) => e.workload.address)).size, 3, 'distinct addresses');
        for (const ep of eps) {
          assert.equal(ep.hostname, 'eps.conformance.test');
          assert.ok(service.ports.some((p) => p.port === ep.servicePort.port && p.name === ep.servicePort.name), 'servicePort is one of the service ports');
          assert.ok(Number.isInteger(ep.endpointPort) && ep.endpointPort >= 0 && ep.endpointPort <= 65535, `endpointPort ${ep.endpointPort}`);
          assert.ok(ep.workload.address.length > 0);
          assert.ok(HEALTH.has(ep.workload.health));
          assert.ok(ep.workload.weight >= 1);
          assert.equal(typeof ep.workload.locality.region, 'string');
          assert.ok(ep.workload.registry.length > 0);
        }
      }));

    test('an unknown host has no endpoints (an empty, frozen array)', () =>
      withHarness(async (h) => {
        const eps = h.registry.endpoints('nowhere.conformance.test');
        assert.equal(eps.length, 0);
        assert.ok(Object.isFrozen(eps));
      }));

    test('returned arrays and objects are immutable', () =>
      withHarness(async (h) => {
        await h.putService('frozen.conformance.test', 2);
        const services = h.registry.services();
        const eps = h.registry.endpoints('frozen.conformance.test');
        for (const value of [services, eps, h.registry.workloads(), services[0], services[0]!.ports, eps[0], eps[0]!.workload, eps[0]!.workload.labels]) {
          assert.ok(Object.isFrozen(value), `frozen: ${JSON.stringify(value)}`);
        }
        assert.throws(() => (services as unknown[]).push({}), TypeError);
        assert.throws(() => ((eps[0]!.workload as { address: string }).address = '1.1.1.1'), TypeError);
      }));

    test('a change produces new arrays and leaves the old ones as they were', () =>
      withHarness(async (h) => {
        await h.putService('one.conformance.test', 1);
        const before = h.registry.services();
        const count = before.length;
        const epsBefore = h.registry.endpoints('one.conformance.test');
        const done = nextEvent(h.registry, (e) => e.hostnames.includes('two.conformance.test'));
        await h.putService('two.conformance.test', 1);
        await done;
        const changed = nextEvent(h.registry, (e) => e.hostnames.includes('one.conformance.test'));
        await h.setEndpoints('one.conformance.test', 2);
        await changed;
        assert.equal(before.length, count);
        assert.notEqual(h.registry.services(), before);
        assert.equal(h.registry.services().length, count + 1);
        assert.equal(epsBefore.length, 1);
        assert.equal(h.registry.endpoints('one.conformance.test').length, 2);
      }));

    test('adding a service emits a services event naming it; listeners see the new state', () =>
      withHarness(async (h) => {
        let seenInCallback: string[] = [];
        h.registry.onChange((e) => {
          if (e.hostnames.includes('new.conformance.test')) seenInCallback = h.registry.services().map((s) => s.hostname);
        });
        const event = nextEvent(h.registry, about('services', 'new.conformance.test'));
        await h.putService('new.conformance.test', 2);
        await event;
        assert.ok(seenInCallback.includes('new.conformance.test'));
        assert.equal(h.registry.endpoints('new.conformance.test').length, 2);
      }));

    test('changing only endpoints emits an endpoints event (the EDS fast path), not a services one', () =>
      withHarness(async (h) => {
        await h.putService('fast.conformance.test', 2);
        const serviceBefore = h.registry.services().find((s) => s.hostname === 'fast.conformance.test');
        const seen: RegistryEvent[] = [];
        const event = nextEvent(h.registry, about('endpoints', 'fast.conformance.test'), seen);
        await h.setEndpoints('fast.conformance.test', 5);
        await event;
        assert.equal(h.registry.endpoints('fast.conformance.test').length, 5);
        assert.deepEqual(seen.filter(about('services', 'fast.conformance.test')), []);
        assert.deepEqual(h.registry.services().find((s) => s.hostname === 'fast.conformance.test'), serviceBefore);

        const down = nextEvent(h.registry, about('endpoints', 'fast.conformance.test'), seen);
        await h.setEndpoints('fast.conformance.test', 0);
        await down;
        assert.equal(h.registry.endpoints('fast.conformance.test').length, 0);
        assert.ok(h.registry.services().some((s) => s.hostname === 'fast.conformance.test'), 'the service stays without endpoints');
      }));

    test('removing a service emits a services event and drops its endpoints', () =>
      withHarness(async (h) => {
        await h.putService('gone.conformance.test', 2);
        const event = nextEvent(h.registry, about('services', 'gone.conformance.test'));
        await h.removeService('gone.conformance.test');
        await event;
        assert.ok(!h.registry.services().some((s) => s.hostname === 'gone.conformance.test'));
        assert.equal(h.registry.endpoints('gone.conformance.test').length, 0);
      }));

    test('writing a service unchanged emits nothing', () =>
      withHarness(async (h) => {
        await h.putService('same.conformance.test', 2);
        const seen: RegistryEvent[] = [];
        // A later real change is the barrier: any event for the no-op would arrive before it.
        const barrier = nextEvent(h.registry, about('services', 'barrier.conformance.test'), seen);
        await h.putService('same.conformance.test', 2);
        await h.putService('barrier.conformance.test', 1);
        await barrier;
        assert.deepEqual(seen.filter((e) => e.hostnames.includes('same.conformance.test')), []);
      }));

    test('every listener gets every event; an unsubscribed one gets no more', () =>
      withHarness(async (h) => {
        const a: RegistryEvent[] = [];
        const b: RegistryEvent[] = [];
        h.registry.onChange((e) => a.push(e));
        const offB = h.registry.onChange((e) => b.push(e));
        const first = nextEvent(h.registry, about('services', 'l1.conformance.test'));
        await h.putService('l1.conformance.test', 1);
        await first;
        assert.ok(a.some(about('services', 'l1.conformance.test')));
        assert.ok(b.some(about('services', 'l1.conformance.test')));
        offB();
        const second = nextEvent(h.registry, about('services', 'l2.conformance.test'));
        await h.putService('l2.conformance.test', 1);
        await second;
        assert.ok(a.some(about('services', 'l2.conformance.test')));
        assert.ok(!b.some((e) => e.hostnames.includes('l2.conformance.test')));
      }));

    test('stop() ends events and releases every handle; a second stop() is harmless', async () => {
      const before = resourceCounts();
      const h = await factory();
      await h.putService('stop.conformance.test', 2);
      await h.registry.run();
      const events: RegistryEvent[] = [];
      h.registry.onChange((e) => events.push(e));
      await h.registry.stop();
      await h.registry.stop();
      await h.putService('after-stop.conformance.test', 1).catch(() => undefined);
      await h.close();
      assert.deepEqual(events, []);
      const after = resourceCounts();
      for (const [resource, n] of after) assert.ok(n <= (before.get(resource) ?? 0), `${resource} left open: ${n} now, ${before.get(resource) ?? 0} before`);
    });
  });
}
