// The aggregate: one ServiceRegistry over several platform adapters (local,
// etcd, Kubernetes clusters), as Istio's aggregate controller. A hostname
// defined by several registries in one namespace becomes one service: the
// first registry (in the order added) defines it, the others add their
// virtual addresses and identities; endpoints of all registries are
// concatenated. Child events are forwarded unchanged.

import { deepFreeze } from '../../common/index.ts';
import type { RegistryEvent, Service, ServiceEndpoint, ServiceRegistry, WorkloadInstance } from '../model/index.ts';
import { RegistryError, RegistryErrorCode } from './errors.ts';
import type { RegistryLogger } from './local-registry.ts';

export interface AggregateRegistryOptions {
  /** Default `aggregate`. */
  readonly name?: string;
  readonly registries?: readonly ServiceRegistry[];
  readonly log?: RegistryLogger;
}

interface Child {
  readonly registry: ServiceRegistry;
  unsubscribe: () => void;
}

const EMPTY: readonly never[] = Object.freeze([]);
const silent: RegistryLogger = { debug() {}, warn() {}, error() {} };

/** Results computed from the children's arrays, valid while those arrays are the same objects. */
interface Memo<T> {
  readonly inputs: readonly unknown[];
  readonly result: T;
}

function sameInputs(memo: Memo<unknown> | undefined, inputs: readonly unknown[]): boolean {
  return !!memo && memo.inputs.length === inputs.length && memo.inputs.every((x, i) => x === inputs[i]);
}

/**
 * Contract (beyond ServiceRegistry's): reads are merged views of the
 * children's current state, cached until a child hands out new arrays.
 * Registries added while running are run, then announced with a `services`
 * event for their hosts; removed ones are stopped and announced the same way.
 */
export class AggregateRegistry implements ServiceRegistry {
  readonly name: string;
  private readonly log: RegistryLogger;
  private readonly children: Child[] = [];
  private readonly listeners = new Set<(event: RegistryEvent) => void>();
  private running = false;
  private stopped = false;
  private servicesMemo: Memo<readonly Service[]> | undefined;
  private workloadsMemo: Memo<readonly WorkloadInstance[]> | undefined;
  private readonly endpointsMemo = new Map<string, Memo<readonly ServiceEndpoint[]>>();

  constructor(options: AggregateRegistryOptions = {}) {
    this.name = options.name ?? 'aggregate';
    this.log = options.log ?? silent;
    for (const registry of options.registries ?? []) this.attach(registry);
  }

  /** The children in precedence order. */
  registries(): readonly ServiceRegistry[] {
    return this.children.map((c) => c.registry);
  }

  /** Adds a registry after the others (lowest precedence); runs it first when the aggregate is running. */
  async addRegistry(registry: ServiceRegistry): Promise<void> {
    if (this.stopped) throw new RegistryError(RegistryErrorCode.STOPPED, `registry ${this.name} was stopped`);
    this.attach(registry);
    if (!this.running) return;
    await registry.run();
    this.announce(registry);
  }

  /** Stops and removes the registry with that name; false when there is none. */
  async removeRegistry(name: string): Promise<boolean> {
    const i = this.children.findIndex((c) => c.registry.name === name);
    if (i < 0) return false;
    const [child] = this.children.splice(i, 1) as [Child];
    child.unsubscribe();
    this.announce(child.registry);
    await child.registry.stop();
    return true;
  }

  services(): readonly Service[] {
    const inputs = this.children.map((c) => c.registry.services());
    if (!sameInputs(this.servicesMemo, inputs)) this.servicesMemo = { inputs, result: mergeServices(inputs) };
    return this.servicesMemo!.result;
  }

  endpoints(hostname: string): readonly ServiceEndpoint[] {
    const inputs = this.children.map((c) => c.registry.endpoints(hostname));
    const memo = this.endpointsMemo.get(hostname);
    if (sameInputs(memo, inputs)) return memo!.result;
    const nonEmpty = inputs.filter((eps) => eps.length > 0);
    const result = nonEmpty.length === 0 ? EMPTY : nonEmpty.length === 1 ? nonEmpty[0]! : Object.freeze(nonEmpty.flat());
    // Hosts without endpoints are not remembered, so the memo does not grow with lookups of unknown names.
    if (result.length > 0) this.endpointsMemo.set(hostname, { inputs, result });
    else this.endpointsMemo.delete(hostname);
    return result;
  }

  workloads(): readonly WorkloadInstance[] {
    const inputs = this.children.map((c) => c.registry.workloads());
    if (!sameInputs(this.workloadsMemo, inputs)) {
      const nonEmpty = inputs.filter((w) => w.length > 0);
      this.workloadsMemo = { inputs, result: nonEmpty.length === 1 ? nonEmpty[0]! : Object.freeze(nonEmpty.flat()) };
    }
    return this.workloadsMemo!.result;
  }

  onChange(listener: (event: RegistryEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Runs every child at once; resolves when all have loaded, rejects with the first failure. */
  async run(): Promise<void> {
    if (this.stopped) throw new RegistryError(RegistryErrorCode.STOPPED, `registry ${this.name} was stopped`);
    await Promise.all(this.children.map((c) => c.registry.run()));
    if (!this.stopped) this.running = true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.running = false;
    for (const child of this.children) child.unsubscribe();
    const results = await Promise.allSettled(this.children.map((c) => c.registry.stop()));
    for (const [i, r] of results.entries()) {
      if (r.status === 'rejected') this.log.error({ err: r.reason, registry: this.children[i]?.registry.name }, 'a registry failed to stop');
    }
    this.listeners.clear();
    this.endpointsMemo.clear();
  }

  private attach(registry: ServiceRegistry): void {
    if (this.children.some((c) => c.registry.name === registry.name)) {
      throw new RegistryError(RegistryErrorCode.DUPLICATE, `registry ${this.name} already has a registry named ${registry.name}`);
    }
    // Events before the aggregate's run() resolves describe state the first read sees anyway.
    const unsubscribe = registry.onChange((event) => {
      if (this.running) this.emit(event);
    });
    this.children.push({ registry, unsubscribe });
  }

  private announce(registry: ServiceRegistry): void {
    const hostnames = [...new Set(registry.services().map((s) => s.hostname))].sort();
    if (this.running && hostnames.length > 0) this.emit({ kind: 'services', hostnames });
  }

  private emit(event: RegistryEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (err) {
        this.log.error({ err, event }, 'a registry listener threw');
      }
    }
  }
}

/**
 * One service per hostname and namespace, in first-seen order. The first
 * definition wins; later ones add addresses (like Istio's per-cluster VIPs)
 * and identities (their endpoints are served too, so SAN checks must accept
 * them). A hostname seen once passes through as the child's own object.
 */
export function mergeServices(lists: readonly (readonly Service[])[]): readonly Service[] {
  const nonEmpty = lists.filter((l) => l.length > 0);
  if (nonEmpty.length <= 1) return nonEmpty[0] ?? EMPTY;
  const merged = new Map<string, Service>();
  for (const list of nonEmpty) {
    for (const s of list) {
      const key = `${s.hostname}\u0000${s.namespace}`;
      const first = merged.get(key);
      if (!first) {
        merged.set(key, s);
        continue;
      }
      const addresses = union(first.addresses, s.addresses);
      const serviceAccounts = union(first.serviceAccounts, s.serviceAccounts);
      if (addresses !== first.addresses || serviceAccounts !== first.serviceAccounts) merged.set(key, { ...first, addresses, serviceAccounts });
    }
  }
  return deepFreeze([...merged.values()]);
}

/** `a` itself when `b` adds nothing to it. */
function union(a: readonly string[], b: readonly string[]): readonly string[] {
  const extra = b.filter((x) => !a.includes(x));
  return extra.length === 0 ? a : [...a, ...extra];
}
