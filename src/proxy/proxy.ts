// The sidecar proxy assembled: stats, clusters, routes, listeners, admin.
// Config enters only through the apply* methods, which decode and validate a
// whole update before touching live state: a rejected update (the NACK text
// is the thrown error's message) leaves the last good config serving.

import type { Logger } from '../common/index.ts';
import { silentLogger } from '../common/index.ts';
import type { AdminServer } from './admin/admin-server.ts';
import { startAdmin } from './admin/admin-server.ts';
import type { DecodedBootstrap } from './bootstrap.ts';
import type { ClusterConfig } from './config/cluster-config.ts';
import { decodeCluster, decodeLoadAssignment } from './config/cluster-config.ts';
import type { ListenerConfig } from './config/listener-config.ts';
import { decodeListener } from './config/listener-config.ts';
import type { RouteTable } from './config/route-config.ts';
import { decodeRouteConfiguration } from './config/route-config.ts';
import { socketAddress } from './config/values.ts';
import { defaultExtensions } from './extensions.ts';
import { ListenerManager } from './listener-manager.ts';
import type { ExtensionRegistry, FactoryContext, RouteConfigProvider } from './registry.ts';
import { StatsStore } from './stats.ts';
import { ClusterManager } from './upstream/cluster-manager.ts';
import { AdsClient } from './xds/ads-client.ts';
import { DeltaAdsClient } from './xds/delta-ads-client.ts';
import { configError } from './errors.ts';
import { SecretManager } from './secrets/secret-manager.ts';
import { SdsClusterClients } from './secrets/sds-client.ts';
import { withTransportSocket } from './transport-sockets/transport-socket-config.ts';
import type { Clock } from './clock.ts';
import { realClock } from './clock.ts';

type D = Record<string, any>;

export interface ProxyOptions {
  readonly bootstrap: DecodedBootstrap;
  readonly registry?: ExtensionRegistry;
  readonly logger?: Logger;
  /** How long start() waits for the first CDS and LDS responses (Envoy: 15s). */
  readonly initialFetchTimeoutMs?: number;
  /** Time for retries, outlier detection, health checks and rate limits; a ManualClock in tests. */
  readonly clock?: Clock;
}

export interface RouteInfo {
  readonly table: RouteTable;
  readonly raw: unknown;
  readonly version: string | undefined;
  readonly lastUpdated: Date;
}

export class Proxy {
  readonly stats = new StatsStore();
  readonly clusters: ClusterManager;
  readonly listeners: ListenerManager;
  readonly bootstrap: DecodedBootstrap;
  readonly logger: Logger;
  readonly startedAt = Date.now();
  readonly routes = new Map<string, RouteInfo>();
  /** Static and SDS secrets for TLS (secrets/secret-manager.ts). */
  readonly secrets = new SecretManager(this.stats);
  admin: AdminServer | undefined;
  ads: AdsClient | DeltaAdsClient | undefined;
  state: 'INITIALIZING' | 'LIVE' | 'DRAINING' = 'INITIALIZING';
  private readonly context: FactoryContext;
  /** SDS streams to separate secret servers (Istio's `sds-grpc` cluster). */
  private readonly sdsClusters: SdsClusterClients;
  private readonly onStop: Array<() => void> = [];
  private quitRequested!: () => void;
  /** Resolves when /quitquitquit asks the process to exit. */
  readonly quit: Promise<void> = new Promise((r) => (this.quitRequested = r));

  private constructor(options: ProxyOptions) {
    this.bootstrap = options.bootstrap;
    this.logger = options.logger ?? silentLogger();
    this.clusters = new ClusterManager(this.stats, options.clock ?? realClock);
    this.listeners = new ListenerManager(this.stats);
    this.sdsClusters = new SdsClusterClients(this.secrets, this.clusters, this.bootstrap.node ?? {}, this.logger);
    this.addStopHook(() => this.sdsClusters.close());
    const routes: RouteConfigProvider = { get: (name) => this.routes.get(name)?.table };
    this.context = { clusters: this.clusters, stats: this.stats, routes, registry: options.registry ?? defaultExtensions(), clock: options.clock ?? realClock, secrets: this.secrets, listenerHandoff: this.listeners, node: this.bootstrap.node ?? {} };
    this.secrets.onClusterNames = (cluster, names) => this.sdsClusters.subscribe(cluster, names);
  }

  /** Starts from a decoded bootstrap: static clusters, then static listeners, then admin. */
  static async start(options: ProxyOptions): Promise<Proxy> {
    const proxy = new Proxy(options);
    try {
      const sr: D = options.bootstrap.static_resources ?? {};
      proxy.secrets.setStatic(sr.secrets ?? []);
      proxy.applyClusters(sr.clusters ?? [], undefined, true);
      await proxy.clusters.initialized();
      await proxy.applyListeners(sr.listeners ?? [], undefined, true);
      const ads = proxy.adsTarget();
      if (ads) {
        const clientOptions = { target: ads.target, node: options.bootstrap.node ?? {}, logger: proxy.logger };
        const client = ads.delta ? new DeltaAdsClient(proxy, clientOptions) : new AdsClient(proxy, clientOptions);
        proxy.ads = client;
        proxy.addStopHook(() => client.stop());
        client.start();
        // Envoy's init manager: wait for the first CDS and LDS, at most initial_fetch_timeout.
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([client.initialized, new Promise<void>((r) => (timer = setTimeout(r, options.initialFetchTimeoutMs ?? 15_000)))]);
        clearTimeout(timer);
      }
      const admin: D | null = options.bootstrap.admin;
      if (admin?.address) {
        const { address, port } = socketAddress(admin.address, 'Bootstrap.admin.address');
        proxy.admin = await startAdmin(proxy, address, port);
      }
      proxy.state = 'LIVE';
      proxy.logger.info({ listeners: proxy.listeners.all().map((l) => `${l.config.name}@${l.config.address}:${l.boundPort}`), admin: proxy.admin?.port }, 'proxy ready');
      return proxy;
    } catch (err) {
      await proxy.stop();
      throw err;
    }
  }

  /** host:port of the ADS server in dynamic_resources.ads_config, if any. */
  private adsTarget(): { target: string; delta: boolean } | undefined {
    const ads: D | null = this.bootstrap.dynamic_resources?.ads_config;
    if (!ads) return undefined;
    const path = 'Bootstrap.dynamic_resources.ads_config';
    if (ads.api_type !== 'GRPC' && ads.api_type !== 'DELTA_GRPC') throw configError(`${path}.api_type`, `${ads.api_type} is not supported (GRPC or DELTA_GRPC)`);
    const delta = ads.api_type === 'DELTA_GRPC';
    const svc: D | undefined = ads.grpc_services?.[0];
    if (!svc) throw configError(`${path}.grpc_services`, 'one gRPC service is required');
    if (svc.target_specifier === 'google_grpc') return { target: String(svc.google_grpc.target_uri).replace(/^dns:\/\/\//, ''), delta };
    const name: string = svc.envoy_grpc?.cluster_name;
    const cluster = this.clusters.get(name);
    if (!cluster) throw configError(`${path}.grpc_services[0].envoy_grpc.cluster_name`, `no static cluster "${name}"`);
    const host = cluster.pickHost();
    if (!host) throw configError(`${path}.grpc_services[0].envoy_grpc.cluster_name`, `static cluster "${name}" has no endpoints`);
    return { target: `${host.address}:${host.port}`, delta };
  }

  /** Decodes and applies a full set of clusters (CDS state of the world). Throws without changing anything when one is invalid. */
  applyClusters(resources: readonly D[], version: string | undefined, isStatic = false): ClusterConfig[] {
    const configs = resources.map((c, i) => withTransportSocket(decodeCluster(c, isStatic ? `static_resources.clusters[${i}]` : 'Cluster'), c, this.context));
    const seen = new Set<string>();
    for (const c of configs) {
      if (seen.has(c.name)) throw new Error(`Cluster "${c.name}": duplicate cluster name`);
      seen.add(c.name);
    }
    this.clusters.update(configs, version, isStatic);
    return configs;
  }

  /** Decodes and applies a full set of listeners (LDS state of the world). */
  async applyListeners(resources: readonly D[], version: string | undefined, isStatic = false): Promise<ListenerConfig[]> {
    const configs: ListenerConfig[] = [];
    try {
      for (const [i, l] of resources.entries()) configs.push(decodeListener(l, this.context, isStatic ? `static_resources.listeners[${i}]` : 'Listener'));
      const names = new Set<string>();
      for (const c of configs) {
        if (names.has(c.name)) throw new Error(`Listener "${c.name}": duplicate listener name`);
        names.add(c.name);
      }
      await this.listeners.update(configs, version, isStatic);
    } catch (err) {
      for (const c of configs) c.filter.close();
      throw err;
    }
    return configs;
  }

  /** Applies RouteConfigurations (RDS); each replaces the table of its name. */
  applyRoutes(resources: readonly D[], version: string | undefined): void {
    const registry = this.context.registry;
    const tables = resources.map((rc) => ({ table: decodeRouteConfiguration(rc, 'RouteConfiguration', (t, c, p) => registry.validatePerRoute(t, c, p)), raw: rc }));
    for (const { table, raw } of tables) this.routes.set(table.name, { table, raw, version, lastUpdated: new Date() });
  }

  /** Applies SDS Secrets received over ADS; a bad one rejects the whole response. */
  applySecrets(resources: readonly D[], version: string): void {
    this.secrets.apply({ kind: 'ads' }, resources, version);
  }

  /** Applies ClusterLoadAssignments (EDS). */
  applyEndpoints(resources: readonly D[]): void {
    const las = resources.map((cla) => decodeLoadAssignment(cla, `ClusterLoadAssignment "${cla.cluster_name ?? ''}"`));
    for (const la of las) this.clusters.applyLoadAssignment(la);
  }

  /** Admin /drain_listeners. */
  drainListeners(options: { graceful: boolean; inboundOnly: boolean }): void {
    this.listeners.drainListeners(options);
  }

  requestQuit(): void {
    this.quitRequested();
  }

  /** The port a listener is bound to (useful with port 0). */
  listenerPort(name: string): number | undefined {
    return this.listeners.get(name)?.boundPort;
  }

  /** Registers cleanup to run on stop (e.g. the xDS client). */
  addStopHook(fn: () => void): void {
    this.onStop.push(fn);
  }

  async stop(): Promise<void> {
    this.state = 'DRAINING';
    for (const fn of this.onStop) fn();
    await this.admin?.close();
    await this.listeners.close();
    this.clusters.close();
  }
}
