// Runs the registry conformance suite against the local adapter and against
// the aggregate over two local adapters (services spread across both).

import type { ConfigObject } from '../../src/api/index.ts';
import { AggregateRegistry } from '../../src/pilot/registry/index.ts';
import type { ConformanceHarness } from './registry-conformance.ts';
import { registryConformance } from './registry-conformance.ts';
import type { LocalSetup } from './fixtures/registry-local-setup.ts';
import { localSetup } from './fixtures/registry-local-setup.ts';
import { serviceEntry, workloadEntry } from './fixtures/registry-objects.ts';

/**
 * The conformance mutators in the local adapter's terms: a ServiceEntry that
 * selects WorkloadEntries by label, one WorkloadEntry per endpoint.
 */
class LocalMutator {
  private readonly setup: LocalSetup;
  private readonly counts = new Map<string, number>();
  private readonly ids = new Map<string, number>();
  private nextId = 1;

  constructor(setup: LocalSetup) {
    this.setup = setup;
  }

  async putService(hostname: string, endpoints: number): Promise<void> {
    await this.write(hostname, endpoints, true);
  }

  async setEndpoints(hostname: string, endpoints: number): Promise<void> {
    await this.write(hostname, endpoints, false);
  }

  async removeService(hostname: string): Promise<void> {
    const entries = Array.from({ length: this.counts.get(hostname) ?? 0 }, (_, i) => this.entry(hostname, i));
    await this.setup.remove(this.service(hostname), ...entries);
    this.counts.delete(hostname);
  }

  private async write(hostname: string, endpoints: number, withService: boolean): Promise<void> {
    const before = this.counts.get(hostname) ?? 0;
    const wanted = Array.from({ length: endpoints }, (_, i) => this.entry(hostname, i));
    const extra = Array.from({ length: Math.max(0, before - endpoints) }, (_, i) => this.entry(hostname, endpoints + i));
    for (const obj of extra) await this.setup.store.delete({ group: 'networking.istio.io', kind: 'WorkloadEntry', namespace: 'conformance', name: obj.metadata.name });
    await this.setup.apply(...(withService ? [this.service(hostname)] : []), ...wanted);
    this.counts.set(hostname, endpoints);
  }

  private service(hostname: string): ConfigObject {
    return serviceEntry('conformance', objectName(hostname), {
      hosts: [hostname],
      ports: [{ number: 8080, name: 'http', protocol: 'HTTP' }],
      resolution: 'STATIC',
      location: 'MESH_INTERNAL',
      workloadSelector: { labels: { svc: objectName(hostname) } },
    });
  }

  private entry(hostname: string, i: number): ConfigObject {
    let id = this.ids.get(hostname);
    if (id === undefined) this.ids.set(hostname, (id = this.nextId++));
    return workloadEntry('conformance', `${objectName(hostname)}-${i}`, { address: `10.${id}.${i >> 8}.${i & 255}`, labels: { svc: objectName(hostname) } });
  }
}

function objectName(hostname: string): string {
  return hostname.replaceAll('.', '-');
}

registryConformance('LocalRegistry', async (): Promise<ConformanceHarness> => {
  const setup = await localSetup();
  const mutator = new LocalMutator(setup);
  return {
    registry: setup.registry,
    putService: (h, n) => mutator.putService(h, n),
    setEndpoints: (h, n) => mutator.setEndpoints(h, n),
    removeService: (h) => mutator.removeService(h),
    close: () => setup.close(),
  };
});

registryConformance('AggregateRegistry over two LocalRegistries', async (): Promise<ConformanceHarness> => {
  const setups = [await localSetup({ name: 'local-a' }), await localSetup({ name: 'local-b' })];
  const mutators = setups.map((s) => new LocalMutator(s));
  const owner = new Map<string, LocalMutator>();
  // Hosts alternate between the two adapters, so both feed every check.
  const of = (hostname: string): LocalMutator => {
    let m = owner.get(hostname);
    if (!m) owner.set(hostname, (m = mutators[owner.size % 2]!));
    return m;
  };
  const registry = new AggregateRegistry({ registries: setups.map((s) => s.registry) });
  return {
    registry,
    putService: (h, n) => of(h).putService(h, n),
    setEndpoints: (h, n) => of(h).setEndpoints(h, n),
    removeService: (h) => of(h).removeService(h),
    close: async () => {
      for (const s of setups) await s.close();
    },
  };
});
