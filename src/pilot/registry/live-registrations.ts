// Live-registered workloads and their heartbeat deadlines, as Istio's
// WorkloadGroup auto-registration with health checks behaves: a workload that
// stops heartbeating turns UNHEALTHY after `unhealthyAfterMs`, and is removed
// after `removeAfterMs` (the cleanup grace period), both counted from its last
// heartbeat. One timer per workload; a heartbeat only records the time, and
// the timer re-arms itself when it fires early, so heartbeats cost no timer churn.

import { deepFreeze } from '../../common/index.ts';
import type { HealthStatus, WorkloadInstance } from '../model/index.ts';
import type { RegistryClock } from './clock.ts';
import type { WorkloadRegistration } from './registration.ts';
import { registrationWorkload } from './registration.ts';

export interface LiveRegistrationsOptions {
  readonly registry: string;
  readonly clock: RegistryClock;
  readonly unhealthyAfterMs: number;
  readonly removeAfterMs: number;
  /** Called after a workload was added, removed or changed health. */
  readonly onChange: () => void;
}

interface Entry {
  readonly registration: WorkloadRegistration;
  lastSeen: number;
  health: HealthStatus;
  timer: unknown;
  workload: WorkloadInstance;
}

export class LiveRegistrations {
  private readonly options: LiveRegistrationsOptions;
  private readonly entries = new Map<string, Entry>();
  private cached: readonly WorkloadInstance[] | undefined;

  constructor(options: LiveRegistrationsOptions) {
    this.options = options;
  }

  /** The registration as stored (merged with its group), or undefined. */
  get(namespace: string, name: string): WorkloadRegistration | undefined {
    return this.entries.get(`${namespace}/${name}`)?.registration;
  }

  /** Adds or replaces a workload; it starts healthy with a fresh deadline. */
  put(registration: WorkloadRegistration): void {
    const key = `${registration.namespace}/${registration.name}`;
    const previous = this.entries.get(key);
    if (previous) this.options.clock.clearTimeout(previous.timer);
    const entry: Entry = {
      registration,
      lastSeen: this.options.clock.now(),
      health: 'HEALTHY',
      timer: undefined,
      workload: deepFreeze(registrationWorkload(registration, this.options.registry, 'HEALTHY')),
    };
    this.entries.set(key, entry);
    this.arm(entry);
    this.changed();
  }

  /** Records a heartbeat; false when the workload is not registered (it must register again). */
  heartbeat(namespace: string, name: string): boolean {
    const entry = this.entries.get(`${namespace}/${name}`);
    if (!entry) return false;
    entry.lastSeen = this.options.clock.now();
    if (entry.health !== 'HEALTHY') {
      // The pending timer is the removal deadline; the next one is sooner.
      this.options.clock.clearTimeout(entry.timer);
      this.setHealth(entry, 'HEALTHY');
      this.arm(entry);
      this.changed();
    }
    return true;
  }

  delete(namespace: string, name: string): boolean {
    const key = `${namespace}/${name}`;
    const entry = this.entries.get(key);
    if (!entry) return false;
    this.options.clock.clearTimeout(entry.timer);
    this.entries.delete(key);
    this.changed();
    return true;
  }

  /** Current workloads, a frozen array that is replaced on every change. */
  workloads(): readonly WorkloadInstance[] {
    this.cached ??= Object.freeze([...this.entries.values()].map((e) => e.workload));
    return this.cached;
  }

  /** Cancels every timer; the workloads stay listed but no deadline fires any more. */
  stop(): void {
    for (const entry of this.entries.values()) this.options.clock.clearTimeout(entry.timer);
    for (const entry of this.entries.values()) entry.timer = undefined;
  }

  private arm(entry: Entry): void {
    const { clock, unhealthyAfterMs, removeAfterMs } = this.options;
    const due = entry.lastSeen + (entry.health === 'HEALTHY' ? unhealthyAfterMs : removeAfterMs);
    entry.timer = clock.setTimeout(() => this.check(entry), Math.max(0, due - clock.now()));
  }

  private check(entry: Entry): void {
    entry.timer = undefined;
    const key = `${entry.registration.namespace}/${entry.registration.name}`;
    if (this.entries.get(key) !== entry) return;
    const idle = this.options.clock.now() - entry.lastSeen;
    if (idle >= this.options.removeAfterMs) {
      this.entries.delete(key);
      this.changed();
      return;
    }
    if (idle >= this.options.unhealthyAfterMs && entry.health === 'HEALTHY') {
      this.setHealth(entry, 'UNHEALTHY');
      this.arm(entry);
      this.changed();
      return;
    }
    this.arm(entry);
  }

  private setHealth(entry: Entry, health: HealthStatus): void {
    entry.health = health;
    entry.workload = Object.freeze({ ...entry.workload, health });
  }

  private changed(): void {
    this.cached = undefined;
    this.options.onChange();
  }
}
