// Envoy's priority and locality layer above the per-host-set load balancers.
// Hosts are grouped by priority; each priority's health is
// min(100, overprovisioning_factor * healthy / total) and load spills from
// the best priority to the next as health drops. A priority whose healthy
// share is below the panic threshold (when total health is under 100) routes
// to all of its hosts; when every priority panics, load follows host counts.
// With locality-weighted LB, a priority first picks a locality by
// load_balancing_weight x locality health, then a host in it.
// Built once per host-set or health change; picking allocates nothing.

import type { LbPolicy } from '../config/cluster-config.ts';
import type { Host } from './host.ts';
import type { LoadBalancer } from './load-balancer.ts';
import { createLoadBalancer } from './load-balancer.ts';
import type { HashLoadBalancer } from './hash-lb.ts';
import { createHashLoadBalancer } from './hash-lb.ts';

export interface PriorityLbOptions {
  readonly policy: LbPolicy;
  readonly panicThresholdPercent: number;
  readonly overprovisioningFactor: number;
  readonly localityWeighted: boolean;
  readonly ringMinSize: number;
  readonly ringMaxSize: number;
  readonly maglevTableSize: number;
  readonly random?: () => number;
}

export const DEFAULT_PRIORITY_LB_OPTIONS: Omit<PriorityLbOptions, 'policy'> = {
  panicThresholdPercent: 50,
  overprovisioningFactor: 140,
  localityWeighted: false,
  ringMinSize: 1024,
  ringMaxSize: 8 * 1024 * 1024,
  maglevTableSize: 65537,
};

/** Picks among one set of hosts, with or without a request hash. */
interface Picker {
  pick(hash: number | undefined, attempt: number): Host | undefined;
}

function picker(policy: LbPolicy, hosts: readonly Host[], o: PriorityLbOptions): Picker {
  if (policy === 'RING_HASH' || policy === 'MAGLEV') {
    const lb: HashLoadBalancer = createHashLoadBalancer(policy, hosts, o);
    return lb;
  }
  const lb: LoadBalancer = createLoadBalancer(policy, hosts, o.random);
  return { pick: () => lb.pick() };
}

interface Locality {
  readonly weight: number;
  readonly lb: Picker;
}

/** Smooth weighted round robin over localities (like Envoy's EDF scheduler). */
class LocalityPicker implements Picker {
  private readonly localities: readonly Locality[];
  private readonly current: Float64Array;
  private readonly total: number;

  constructor(localities: readonly Locality[]) {
    this.localities = localities;
    this.current = new Float64Array(localities.length);
    this.total = localities.reduce((s, l) => s + l.weight, 0);
  }

  pick(hash: number | undefined, attempt: number): Host | undefined {
    if (this.total <= 0) return undefined;
    let best = 0;
    for (let i = 0; i < this.localities.length; i++) {
      this.current[i] += this.localities[i].weight;
      if (this.current[i] > this.current[best]) best = i;
    }
    this.current[best] -= this.total;
    return this.localities[best].lb.pick(hash, attempt);
  }
}

interface Level {
  readonly priority: number;
  readonly total: number;
  readonly healthy: number;
  /** Picker over healthy hosts, and over all hosts for panic mode. */
  readonly healthyLb: Picker;
  readonly allLb: Picker;
}

export class PriorityLoadBalancer {
  private readonly levels: readonly Level[];
  /** Cumulative load per level in percent (last one 100). */
  private readonly cumulative: Float64Array;
  private readonly panic: readonly boolean[];
  private readonly random: () => number;
  /** Per-priority load in percent, for tests and admin. */
  readonly priorityLoad: readonly number[];
  /** Whether any priority that receives load is in panic mode. */
  readonly inPanic: boolean;

  constructor(hosts: readonly Host[], options: PriorityLbOptions) {
    this.random = options.random ?? Math.random;
    const byPriority = new Map<number, Host[]>();
    for (const h of hosts) {
      let list = byPriority.get(h.priority);
      if (!list) byPriority.set(h.priority, (list = []));
      list.push(h);
    }
    const of = options.overprovisioningFactor;
    this.levels = [...byPriority.keys()].sort((a, b) => a - b).map((priority) => {
      const all = byPriority.get(priority)!;
      const healthy = all.filter((h) => h.healthy);
      return { priority, total: all.length, healthy: healthy.length, healthyLb: this.levelPicker(all, true, options), allLb: this.levelPicker(all, false, options) };
    });
    const health = this.levels.map((l) => (l.total === 0 ? 0 : Math.min(100, Math.floor((l.healthy * of) / l.total))));
    const totalHealth = Math.min(100, health.reduce((s, h) => s + h, 0));
    const panic = this.levels.map((l) => totalHealth < 100 && l.total > 0 && (100 * l.healthy) / l.total < options.panicThresholdPercent);
    let load: number[];
    if (this.levels.length > 0 && panic.every(Boolean)) {
      // Total panic: spread by host counts, every priority routing to all its hosts.
      const hostsTotal = this.levels.reduce((s, l) => s + l.total, 0);
      load = this.levels.map((l) => (100 * l.total) / hostsTotal);
    } else if (totalHealth === 0) {
      load = this.levels.map(() => 0);
    } else {
      let remaining = 100;
      load = health.map((h) => {
        const share = Math.min(remaining, (h * 100) / totalHealth);
        remaining -= share;
        return share;
      });
    }
    this.priorityLoad = load;
    this.panic = panic;
    this.inPanic = panic.some((p, i) => p && load[i] > 0);
    this.cumulative = new Float64Array(load.length);
    let acc = 0;
    load.forEach((l, i) => (this.cumulative[i] = acc += l));
  }

  private levelPicker(all: readonly Host[], healthyOnly: boolean, o: PriorityLbOptions): Picker {
    const eligible = healthyOnly ? all.filter((h) => h.healthy) : all;
    if (!o.localityWeighted) return picker(o.policy, eligible, o);
    const byLocality = new Map<string, Host[]>();
    for (const h of all) {
      let list = byLocality.get(h.locality);
      if (!list) byLocality.set(h.locality, (list = []));
      list.push(h);
    }
    const localities: Locality[] = [];
    for (const list of byLocality.values()) {
      const weight = list[0].localityWeight;
      const usable = healthyOnly ? list.filter((h) => h.healthy) : list;
      if (weight <= 0 || usable.length === 0) continue;
      // Envoy: effective weight = locality weight x min(1, overprovisioning x healthy / total).
      const availability = healthyOnly ? Math.min(1, (o.overprovisioningFactor / 100) * (usable.length / list.length)) : 1;
      localities.push({ weight: weight * availability, lb: picker(o.policy, usable, o) });
    }
    return new LocalityPicker(localities);
  }

  /**
   * A host for a request: the priority by load (by the hash when there is
   * one, so a hashed request sticks), then a host within it.
   */
  pick(hash?: number, attempt = 0): Host | undefined {
    const n = this.levels.length;
    if (n === 0) return undefined;
    const r = hash === undefined ? this.random() * 100 : (hash % 10_000) / 100;
    let i = 0;
    while (i < n - 1 && r >= this.cumulative[i]) i++;
    if (this.cumulative[n - 1] === 0) return undefined;
    const level = this.levels[i];
    return this.panic[i] ? level.allLb.pick(hash, attempt) : level.healthyLb.pick(hash, attempt);
  }
}
