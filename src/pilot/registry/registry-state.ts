// The local registry's state at one moment (services, endpoints by host,
// workloads), built from ServiceEntries, WorkloadEntries and live
// registrations, and the diff between two states that tells Pilot whether a
// change needs a full push or only the endpoint (EDS) fast path.

import { isDeepStrictEqual } from 'node:util';
import type { ConfigObject, ServiceEntrySpec, WorkloadEntrySpec } from '../../api/index.ts';
import { deepFreeze } from '../../common/index.ts';
import type { RegistryEvent, Service, ServiceEndpoint, WorkloadInstance } from '../model/index.ts';
import type { ConversionContext, ConvertedServiceEntry } from './service-entry-conversion.ts';
import { convertServiceEntry, convertWorkloadEntry, endpointsFor, mergeServiceAccounts, selects, workloadIdentities } from './service-entry-conversion.ts';

const EMPTY: readonly never[] = Object.freeze([]);

/** Immutable: every array and object in it is deep-frozen. */
export interface RegistryState {
  /** Sorted by hostname, then namespace; one per hostname and namespace. */
  readonly services: readonly Service[];
  readonly endpointsByHost: ReadonlyMap<string, readonly ServiceEndpoint[]>;
  /** WorkloadEntries and live registrations, sorted by namespace, then name. */
  readonly workloads: readonly WorkloadInstance[];
}

export const EMPTY_STATE: RegistryState = Object.freeze({ services: EMPTY, endpointsByHost: new Map(), workloads: EMPTY });

export interface StateInputs {
  readonly serviceEntries: readonly ConfigObject[];
  readonly workloadEntries: readonly ConfigObject[];
  /** Live-registered workloads; a WorkloadEntry of the same namespace and name shadows one. */
  readonly registered: readonly WorkloadInstance[];
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Builds states, caching each config object's conversion by identity: Galley
 * hands out the same frozen object while it is unchanged, so only changed
 * objects are converted again.
 */
export class RegistryStateBuilder {
  private readonly ctx: ConversionContext;
  private readonly serviceEntryCache = new WeakMap<ConfigObject, ConvertedServiceEntry>();
  private readonly workloadEntryCache = new WeakMap<ConfigObject, WorkloadInstance>();

  constructor(ctx: ConversionContext) {
    this.ctx = ctx;
  }

  build(inputs: StateInputs, previous: RegistryState = EMPTY_STATE): RegistryState {
    const workloads = this.workloads(inputs);
    const byNamespace = new Map<string, WorkloadInstance[]>();
    for (const w of workloads) {
      let list = byNamespace.get(w.namespace);
      if (!list) byNamespace.set(w.namespace, (list = []));
      list.push(w);
    }

    const services = new Map<string, Service>();
    const endpoints = new Map<string, ServiceEndpoint[]>();
    const addEndpoints = (hostname: string, eps: readonly ServiceEndpoint[]) => {
      if (eps.length === 0) return;
      const list = endpoints.get(hostname);
      if (list) list.push(...eps);
      else endpoints.set(hostname, [...eps]);
    };
    // The oldest entry defines a host in a namespace (Istio sorts by creation time); later ones still
    // add endpoints, and their ports when the two can merge (Istio's appendSidecarServices).
    for (const se of [...inputs.serviceEntries].sort(byCreation)) {
      const converted = this.convert(se);
      for (let service of converted.services) {
        const key = `${service.hostname}\u0000${service.namespace}`;
        if (service.workloadSelector) {
          const selected = (byNamespace.get(service.namespace) ?? []).filter((w) => selects(service.workloadSelector!, w.labels));
          if (selected.length > 0) {
            service = { ...service, serviceAccounts: mergeServiceAccounts(service.serviceAccounts, workloadIdentities(this.ctx.trustDomain, selected)) };
          }
          addEndpoints(service.hostname, endpointsFor(service, selected));
        } else {
          addEndpoints(service.hostname, converted.endpoints.get(service.hostname) ?? EMPTY);
        }
        const existing = services.get(key);
        if (!existing) services.set(key, service);
        else if (canMerge(existing, service)) services.set(key, mergePorts(existing, service));
      }
    }

    const sorted = [...services.values()].sort((a, b) => compare(a.hostname, b.hostname) || compare(a.namespace, b.namespace));
    // Unchanged parts keep the previous objects, so readers may compare by identity.
    const previousServices = new Map(previous.services.map((s) => [`${s.hostname}\u0000${s.namespace}`, s]));
    const finalServices = sorted.map((s) => {
      const before = previousServices.get(`${s.hostname}\u0000${s.namespace}`);
      return before && isDeepStrictEqual(before, s) ? before : s;
    });
    const finalEndpoints = new Map<string, readonly ServiceEndpoint[]>();
    for (const [hostname, eps] of endpoints) {
      const before = previous.endpointsByHost.get(hostname);
      finalEndpoints.set(hostname, before && isDeepStrictEqual(before, eps) ? before : deepFreeze(eps));
    }
    const finalWorkloads = isDeepStrictEqual(previous.workloads, workloads) ? previous.workloads : workloads;
    return Object.freeze({
      services: sameItems(previous.services, finalServices) ? previous.services : deepFreeze(finalServices),
      endpointsByHost: finalEndpoints,
      workloads: deepFreeze(finalWorkloads),
    });
  }

  private workloads(inputs: StateInputs): WorkloadInstance[] {
    const out = new Map<string, WorkloadInstance>();
    for (const we of inputs.workloadEntries) {
      let w = this.workloadEntryCache.get(we);
      if (!w) this.workloadEntryCache.set(we, (w = deepFreeze(convertWorkloadEntry(we as ConfigObject<WorkloadEntrySpec>, this.ctx.registry))));
      out.set(`${w.namespace}/${w.name}`, w);
    }
    for (const w of inputs.registered) if (!out.has(`${w.namespace}/${w.name}`)) out.set(`${w.namespace}/${w.name}`, w);
    return [...out.values()].sort((a, b) => compare(a.namespace, b.namespace) || compare(a.name, b.name));
  }

  private convert(se: ConfigObject): ConvertedServiceEntry {
    let converted = this.serviceEntryCache.get(se);
    if (!converted) {
      converted = deepFreeze(convertServiceEntry(se as ConfigObject<ServiceEntrySpec>, this.ctx));
      this.serviceEntryCache.set(se, converted);
    }
    return converted;
  }
}

/**
 * Whether two definitions of one host in one namespace are one service with
 * the ports of both, as Istio's canMergeServices decides: same resolution,
 * labels, workload selector and exportTo. Otherwise the older one alone
 * defines it.
 */
function canMerge(a: Service, b: Service): boolean {
  return a.resolution === b.resolution
    && a.registry === b.registry
    && isDeepStrictEqual(a.labels, b.labels)
    && isDeepStrictEqual(a.workloadSelector ?? null, b.workloadSelector ?? null)
    && isDeepStrictEqual([...a.exportTo].sort(), [...b.exportTo].sort());
}

/** `a` with the ports of `b` whose numbers it lacks appended (the older definition keeps the rest). */
function mergePorts(a: Service, b: Service): Service {
  const added = b.ports.filter((p) => !a.ports.some((q) => q.port === p.port));
  return added.length === 0 ? a : { ...a, ports: [...a.ports, ...added] };
}

function byCreation(a: ConfigObject, b: ConfigObject): number {
  return compare(a.metadata.creationTimestamp ?? '', b.metadata.creationTimestamp ?? '')
    || compare(a.metadata.namespace ?? '', b.metadata.namespace ?? '')
    || compare(a.metadata.name, b.metadata.name);
}

function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * The events that take a reader from `before` to `after`: `services` for
 * hosts whose service definition appeared, vanished or changed; `endpoints`
 * for the other hosts whose endpoints changed. A workload change that touches
 * no service's endpoints (e.g. an unselected WorkloadEntry) is announced as
 * an `endpoints` event with no hostnames, so Pilot refreshes proxies' view of
 * their own workload without pushing anything else.
 */
export function diffStates(before: RegistryState, after: RegistryState): RegistryEvent[] {
  const events: RegistryEvent[] = [];
  const servicesChanged = new Set<string>();
  if (before.services !== after.services) {
    const old = new Map(before.services.map((s) => [`${s.hostname}\u0000${s.namespace}`, s]));
    for (const s of after.services) {
      const key = `${s.hostname}\u0000${s.namespace}`;
      if (old.get(key) !== s) servicesChanged.add(s.hostname);
      old.delete(key);
    }
    for (const s of old.values()) servicesChanged.add(s.hostname);
  }
  const endpointsChanged = new Set<string>();
  for (const [hostname, eps] of after.endpointsByHost) if (before.endpointsByHost.get(hostname) !== eps) endpointsChanged.add(hostname);
  for (const hostname of before.endpointsByHost.keys()) if (!after.endpointsByHost.has(hostname)) endpointsChanged.add(hostname);
  for (const hostname of servicesChanged) endpointsChanged.delete(hostname);

  if (servicesChanged.size > 0) events.push({ kind: 'services', hostnames: [...servicesChanged].sort() });
  if (endpointsChanged.size > 0) events.push({ kind: 'endpoints', hostnames: [...endpointsChanged].sort() });
  else if (events.length === 0 && before.workloads !== after.workloads) events.push({ kind: 'endpoints', hostnames: [] });
  return events;
}
