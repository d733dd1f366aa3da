// The local platform adapter, the embedded default: services and workloads
// from Galley's snapshots (ServiceEntry, WorkloadEntry, WorkloadGroup) plus
// workloads that register themselves live and keep themselves alive with
// heartbeats. Kubernetes Services are not its job (the Kubernetes adapter's).

import type { ConfigObject, MeshConfig, WorkloadGroupSpec } from '../../api/index.ts';
import { istioKinds, istioTypeUrl } from '../../api/index.ts';
import type { ConfigSnapshot } from '../../galley/index.ts';
import type { RegistryEvent, Service, ServiceEndpoint, ServiceRegistry, WorkloadInstance } from '../model/index.ts';
import type { RegistryClock } from './clock.ts';
import { systemRegistryClock } from './clock.ts';
import { RegistryError, RegistryErrorCode } from './errors.ts';
import { LiveRegistrations } from './live-registrations.ts';
import type { RegistrationAuthorizer, WorkloadRegistration } from './registration.ts';
import { allowAllRegistrations, checkRegistration, mergeWithGroup } from './registration.ts';
import type { RegistryState } from './registry-state.ts';
import { EMPTY_STATE, RegistryStateBuilder, diffStates } from './registry-state.ts';

/** Anything that streams Galley snapshots: SnapshotDistributor, GalleyClient. Calls the listener with the current snapshot (if any) and every later one. */
export interface SnapshotSource {
  subscribe(listener: (snapshot: ConfigSnapshot) => void): () => void;
}

/** The part of a logger the registry uses; a pino Logger fits. */
export interface RegistryLogger {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

const silent: RegistryLogger = { debug() {}, warn() {}, error() {} };

export interface LocalRegistryOptions {
  readonly snapshots: SnapshotSource;
  /** Only trustDomain is read: it makes the SPIFFE identities of endpoints. Default `cluster.local`. */
  readonly meshConfig?: Pick<MeshConfig, 'trustDomain'>;
  /** The cluster's DNS suffix. ServiceEntry hosts are used as written (Istio does not expand them); exposed for callers that build names. Default `cluster.local`. */
  readonly domainSuffix?: string;
  /** The adapter's name in Service.registry / WorkloadInstance.registry. Default `local`. */
  readonly name?: string;
  readonly clock?: RegistryClock;
  /** No heartbeat for this long: the workload turns UNHEALTHY. Default 15 s. */
  readonly unhealthyAfterMs?: number;
  /** No heartbeat for this long: the workload is removed. Default 60 s; at least unhealthyAfterMs. */
  readonly removeAfterMs?: number;
  readonly authorizer?: RegistrationAuthorizer;
  readonly log?: RegistryLogger;
}

/** What register() returns: the registered workload's own way to heartbeat and leave. */
export interface RegistrationHandle {
  readonly name: string;
  readonly namespace: string;
  /** Same as LocalRegistry.heartbeat for this workload (already authorized at registration). */
  heartbeat(): boolean;
  unregister(): boolean;
}

function typeUrl(kind: string): string {
  const def = istioKinds.get('networking.istio.io', kind);
  if (!def) throw new Error(`kind ${kind} is not registered`);
  return istioTypeUrl(def);
}

const SERVICE_ENTRY = typeUrl('ServiceEntry');
const WORKLOAD_ENTRY = typeUrl('WorkloadEntry');
const WORKLOAD_GROUP = typeUrl('WorkloadGroup');

/**
 * Contract (beyond ServiceRegistry's): a config change that only moves
 * endpoints (WorkloadEntries, inline endpoints, heartbeat health) emits
 * `{ kind: 'endpoints' }` for the hosts it touches; a change to any service
 * (including the set of identities behind it, which the SAN checks use)
 * emits `{ kind: 'services' }`. Registrations are kept in memory only: they
 * vanish with the process, as the workloads re-register on reconnect.
 */
export class LocalRegistry implements ServiceRegistry {
  readonly name: string;
  readonly domainSuffix: string;
  private readonly source: SnapshotSource;
  private readonly authorizer: RegistrationAuthorizer;
  private readonly log: RegistryLogger;
  private readonly builder: RegistryStateBuilder;
  private readonly live: LiveRegistrations;
  private readonly listeners = new Set<(event: RegistryEvent) => void>();
  private state: RegistryState = EMPTY_STATE;
  private snapshot: ConfigSnapshot | undefined;
  private unsubscribe: (() => void) | undefined;
  private running = false;
  private stopped = false;

  constructor(options: LocalRegistryOptions) {
    this.name = options.name ?? 'local';
    this.domainSuffix = options.domainSuffix ?? 'cluster.local';
    this.source = options.snapshots;
    this.authorizer = options.authorizer ?? allowAllRegistrations;
    this.log = options.log ?? silent;
    this.builder = new RegistryStateBuilder({ registry: this.name, trustDomain: options.meshConfig?.trustDomain ?? 'cluster.local' });
    const unhealthyAfterMs = options.unhealthyAfterMs ?? 15_000;
    const removeAfterMs = options.removeAfterMs ?? 60_000;
    if (removeAfterMs < unhealthyAfterMs) throw new RangeError(`removeAfterMs (${removeAfterMs}) must be at least unhealthyAfterMs (${unhealthyAfterMs})`);
    this.live = new LiveRegistrations({
      registry: this.name,
      clock: options.clock ?? systemRegistryClock,
      unhealthyAfterMs,
      removeAfterMs,
      onChange: () => this.rebuild(),
    });
  }

  services(): readonly Service[] {
    return this.state.services;
  }

  endpoints(hostname: string): readonly ServiceEndpoint[] {
    return this.state.endpointsByHost.get(hostname) ?? EMPTY_ENDPOINTS;
  }

  workloads(): readonly WorkloadInstance[] {
    return this.state.workloads;
  }

  onChange(listener: (event: RegistryEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves with the first snapshot's state loaded; a source that has none yet is waited for. */
  run(): Promise<void> {
    if (this.stopped) return Promise.reject(new RegistryError(RegistryErrorCode.STOPPED, `registry ${this.name} was stopped`));
    if (this.unsubscribe) return Promise.reject(new Error(`registry ${this.name} is already running`));
    return new Promise((resolve) => {
      this.unsubscribe = this.source.subscribe((snapshot) => {
        this.onSnapshot(snapshot);
        if (!this.running && !this.stopped) {
          this.running = true;
          resolve();
        }
      });
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.running = false;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.live.stop();
    this.listeners.clear();
  }

  /**
   * Adds (or replaces) a live workload. `group` names a WorkloadGroup in the
   * registration's namespace whose template fills the gaps. The authorizer
   * sees the merged registration. Throws RegistryError:
   * INVALID_REGISTRATION, UNKNOWN_GROUP, UNAUTHORIZED, CONFLICT, STOPPED.
   */
  register(registration: WorkloadRegistration, callerIdentity?: string): RegistrationHandle {
    if (this.stopped) throw new RegistryError(RegistryErrorCode.STOPPED, `registry ${this.name} was stopped`);
    checkRegistration(registration);
    const { namespace, name } = registration;
    let group: WorkloadGroupSpec | undefined;
    if (registration.group !== undefined) {
      group = this.snapshot?.get(WORKLOAD_GROUP, namespace, registration.group)?.spec as WorkloadGroupSpec | undefined;
      if (!group) throw new RegistryError(RegistryErrorCode.UNKNOWN_GROUP, `registration of workload ${namespace}/${name}: WorkloadGroup ${namespace}/${registration.group} does not exist`);
    }
    const merged = mergeWithGroup(registration, group);
    this.authorizer.authorize(merged, callerIdentity);
    const existing = this.live.get(namespace, name);
    if (existing) this.authorizer.authorize(existing, callerIdentity);
    if (this.snapshot?.get(WORKLOAD_ENTRY, namespace, name)) {
      throw new RegistryError(RegistryErrorCode.CONFLICT, `registration of workload ${namespace}/${name}: a WorkloadEntry ${namespace}/${name} exists; pick another name`);
    }
    this.live.put(merged);
    this.log.debug({ namespace, name, address: merged.address }, 'workload registered');
    return {
      name,
      namespace,
      heartbeat: () => this.live.get(namespace, name) === merged && this.live.heartbeat(namespace, name),
      unregister: () => this.live.get(namespace, name) === merged && this.live.delete(namespace, name),
    };
  }

  /** Keeps a live workload alive (and healthy again); false when it is not registered, so the caller registers again. */
  heartbeat(name: string, namespace: string, callerIdentity?: string): boolean {
    const existing = this.live.get(namespace, name);
    if (!existing) return false;
    this.authorizer.authorize(existing, callerIdentity);
    return this.live.heartbeat(namespace, name);
  }

  /** Removes a live workload now (a graceful shutdown); false when it was not registered. */
  unregister(name: string, namespace: string, callerIdentity?: string): boolean {
    const existing = this.live.get(namespace, name);
    if (!existing) return false;
    this.authorizer.authorize(existing, callerIdentity);
    return this.live.delete(namespace, name);
  }

  private onSnapshot(snapshot: ConfigSnapshot): void {
    const previous = this.snapshot;
    this.snapshot = snapshot;
    const changed = snapshot.changedTypes(previous);
    if (previous && !changed.includes(SERVICE_ENTRY) && !changed.includes(WORKLOAD_ENTRY)) return;
    this.rebuild();
  }

  private rebuild(): void {
    if (this.stopped) return;
    const before = this.state;
    const objects = (typeUrl: string): readonly ConfigObject[] => this.snapshot?.objects(typeUrl) ?? [];
    this.state = this.builder.build({ serviceEntries: objects(SERVICE_ENTRY), workloadEntries: objects(WORKLOAD_ENTRY), registered: this.live.workloads() }, before);
    // Before run() resolves the state is the initial one: nobody is told.
    if (!this.running) return;
    for (const event of diffStates(before, this.state)) this.emit(event);
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

const EMPTY_ENDPOINTS: readonly ServiceEndpoint[] = Object.freeze([]);
