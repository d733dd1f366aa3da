// Pilot as one module of the control plane: it follows Galley's snapshots and
// the service registry, builds an immutable push context on every change, and
// hands it to the ADS server, which debounces and pushes to every proxy.
// Registry events that only move endpoints take the EDS fast path.

import type * as grpc from '@grpc/grpc-js';
import type { MeshConfig } from '../api/index.ts';
import { istioTypeUrl, secretKind } from '../api/index.ts';
import type { Registry } from '../common/index.ts';
import type { ConfigSnapshot } from '../galley/index.ts';
import type { ProxyNode, ServiceRegistry } from './model/index.ts';
import { TypeUrl } from '../xds/index.ts';
import { buildPushContext, createGenerators } from './networking/index.ts';
import { VIRTUAL_SERVICE_TYPE } from './push-context.ts';
import type { PushContext } from './networking/index.ts';
import { AggregateRegistry, LocalRegistry } from './registry/index.ts';
import type { RegistrationAuthorizer, SnapshotSource } from './registry/index.ts';
import { createPilotDebugHandler, defaultResolveProxy, PilotXdsServer } from './xds-server/index.ts';
import type { DebugHandler, PilotLogger } from './xds-server/index.ts';

/** Config kinds the local registry turns into services and endpoints (and its own push events). */
const REGISTRY_TYPES: ReadonlySet<string> = new Set(['networking.istio.io/v1/ServiceEntry', 'networking.istio.io/v1/WorkloadEntry']);
const SECRET_TYPE = istioTypeUrl(secretKind);

/** What a VirtualService change can affect. */
const ROUTE_TYPES: ReadonlySet<string> = new Set([TypeUrl.Listener, TypeUrl.RouteConfiguration]);

export interface PilotOptions {
  /** Galley's snapshots (in-process SnapshotDistributor or a GalleyClient). */
  readonly snapshots: SnapshotSource & { current(): ConfigSnapshot | undefined };
  readonly meshConfig: MeshConfig;
  /** Extra platform adapters (etcd, Kubernetes); the local one is always there. */
  readonly registries?: readonly ServiceRegistry[];
  readonly log?: PilotLogger;
  readonly metrics?: Registry;
  readonly debounceMs?: number;
  readonly maxDebounceMs?: number;
  /** Who may register live workloads (default: anyone; the control plane passes a SpiffeRegistrationAuthorizer). */
  readonly registrationAuthorizer?: RegistrationAuthorizer;
  /** Mixer's gRPC address (host:port): with Mixer config, sidecars get check/quota/report filters calling it. */
  readonly mixerAddress?: string;
}

export class Pilot {
  readonly local: LocalRegistry;
  readonly registry: AggregateRegistry;
  readonly xds: PilotXdsServer<PushContext>;
  private readonly options: PilotOptions;
  private version = 0;
  /** The push context built last: the next one keeps its cached resources where nothing they depend on changed. */
  private lastPush: PushContext | undefined;
  private unsubscribers: (() => void)[] = [];
  /** The MeshConfig in force: options.meshConfig until updateMeshConfig replaces it. */
  #mesh: MeshConfig;

  constructor(options: PilotOptions) {
    this.options = options;
    this.#mesh = options.meshConfig;
    this.local = new LocalRegistry({ snapshots: options.snapshots, meshConfig: options.meshConfig, log: options.log, ...(options.registrationAuthorizer ? { authorizer: options.registrationAuthorizer } : {}) });
    this.registry = new AggregateRegistry({ registries: [this.local, ...(options.registries ?? [])], log: options.log });
    this.xds = new PilotXdsServer<PushContext>({
      generators: createGenerators(),
      initialPush: this.buildPush(),
      resolveProxy: (node) => this.withWorkload(defaultResolveProxy(node)),
      log: options.log,
      metrics: options.metrics,
      debounceMs: options.debounceMs,
      maxDebounceMs: options.maxDebounceMs,
    });
  }

  register(server: grpc.Server): void {
    this.xds.register(server);
  }

  /** Loads the registries, then pushes on every config or registry change. */
  async start(): Promise<void> {
    await this.registry.run();
    this.xds.push({ full: true, push: this.buildPush(), reason: 'start' });
    let first = true;
    let previous: ConfigSnapshot | undefined;
    this.unsubscribers.push(
      this.options.snapshots.subscribe((snapshot) => {
        const before = previous;
        previous = snapshot;
        // subscribe() delivers the current snapshot at once; start() already pushed it.
        if (first) {
          first = false;
          return;
        }
        // ServiceEntries and WorkloadEntries reach proxies through the local
        // registry, which diffs them and emits `services` (a full push) or
        // `endpoints` (the EDS fast path) below. A full push here as well would
        // turn every WorkloadEntry change into a mesh-wide full push (seconds
        // at 1000 services x 2000 proxies instead of an EDS-only push).
        const changed = before ? snapshot.changedTypes(before) : undefined;
        // Secrets reach gateways over SDS (credentials/credential-server.ts), never through generated xDS.
        if (!changed || !changed.every((t) => REGISTRY_TYPES.has(t) || t === SECRET_TYPE)) {
          // VirtualServices only shape listeners and routes: clusters and
          // endpoints are not regenerated for them (Istio's cdsNeedsPush/edsNeedsPush).
          const routesOnly = changed !== undefined && changed.length > 0 && changed.every((t) => t === VIRTUAL_SERVICE_TYPE);
          this.xds.push({ full: true, push: this.buildPush(), reason: 'config', ...(routesOnly ? { types: ROUTE_TYPES } : {}) });
        }
        // Galley debounced this snapshot already (and the local registry's
        // events for it came in the same turn): no second quiet period.
        this.xds.pushPendingNow();
      }),
      this.registry.onChange((event) => {
        const push = this.buildPush();
        if (event.kind === 'services') this.xds.push({ full: true, push, reason: 'services' });
        else this.xds.push({ full: false, push, changedHosts: new Set(event.hostnames), reason: 'endpoints' });
      }),
    );
  }

  get meshConfig(): MeshConfig {
    return this.#mesh;
  }

  /**
   * A new (validated) MeshConfig, as istiod gets when the mesh ConfigMap
   * changes: every proxy gets a full push built from it (outbound traffic
   * policy, defaults, telemetry providers). The local registry keeps the
   * trust domain it started with (workload identities do not change under
   * running workloads).
   */
  updateMeshConfig(mesh: MeshConfig): void {
    if (mesh === this.#mesh) return;
    this.#mesh = mesh;
    this.xds.push({ full: true, push: this.buildPush(), reason: 'mesh' });
    this.xds.pushPendingNow();
  }

  debugHandler(): DebugHandler {
    return createPilotDebugHandler(this.xds);
  }

  async stop(): Promise<void> {
    for (const unsubscribe of this.unsubscribers) unsubscribe();
    this.unsubscribers = [];
    this.xds.close();
    await this.registry.stop();
  }

  private buildPush(): PushContext {
    const snapshot = this.options.snapshots.current();
    if (!snapshot) throw new Error('Pilot needs a config snapshot before it can build a push context');
    this.version += 1;
    this.lastPush = buildPushContext({
      snapshot,
      services: this.registry.services(),
      endpoints: (hostname) => this.registry.endpoints(hostname),
      mesh: this.#mesh,
      version: `${snapshot.version}.${this.version}`,
      ...(this.options.mixerAddress ? { mixerAddress: this.options.mixerAddress } : {}),
      ...(this.lastPush ? { previous: this.lastPush } : {}),
    });
    return this.lastPush;
  }

  // The proxy's own workload (labels, ports) decides its inbound listeners and sourceLabels matches.
  private withWorkload(proxy: ProxyNode): ProxyNode {
    const workload = this.registry.workloads().find((w) => w.namespace === proxy.namespace && proxy.ipAddresses.includes(w.address));
    return workload ? { ...proxy, workload, labels: { ...workload.labels, ...proxy.labels } } : proxy;
  }
}
