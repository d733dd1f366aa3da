// `mesh control-plane`: one process hosting the control plane, like istiod.
// It holds Galley (the config store, durable or a watched directory; the config
// API the CLI talks to; snapshot distribution in-process and over gRPC), Pilot
// (service registry and the xDS ADS server on 15010), Mixer (policy and
// telemetry: ext_authz, RLS and ALS on 9091), Citadel (the CA and its CSR
// signing service on 15012) and the monitoring endpoint with Pilot's /debug pages.

import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';
import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { Gauge, Counter } from 'prom-client';
import { defaultMeshConfig, istioKinds, parseMeshConfig } from '../api/index.ts';
import type { MeshConfig } from '../api/index.ts';
import { readFile } from 'node:fs/promises';
import type { Logger, Registry } from '../common/index.ts';
import { createLogger } from '../common/index.ts';
import { createProcessRegistry } from '../common/metrics.ts';
import type { ConfigSnapshot, ConfigStore } from '../galley/index.ts';
import { createHttpApiServer, DirectorySource, DurableStore, GalleyDistributionServer, SnapshotDistributor } from '../galley/index.ts';
import { Citadel } from '../citadel/index.ts';
import { Mixer } from '../mixer/index.ts';
import { CredentialServer, Pilot, SpiffeRegistrationAuthorizer } from '../pilot/index.ts';
import { createMonitoringServer } from './monitoring-server.ts';
import { RegistrationServer } from './registration-server.ts';
import { createRuntimeApiHandler } from './runtime-api.ts';
import { MeshConfigWatcher } from './mesh-config-watcher.ts';

export interface ControlPlaneOptions {
  /** Directory of the durable store (used unless configDir is given). */
  readonly dataDir: string;
  /** Serve config from a watched directory of YAML files instead of the durable store (read-only). */
  readonly configDir?: string;
  readonly listenAddress: string;
  /** Config API (HTTP) port; 0 picks a free one. */
  readonly apiPort: number;
  /**
   * A listening socket for the config API, inherited from the parent (mesh up
   * binds the port itself, so it knows the address before this process starts
   * and two meshes cannot both take 15080); replaces apiPort.
   */
  readonly apiListenFd?: number;
  /** Prometheus /metrics and /ready port. */
  readonly monitoringPort: number;
  /** Galley distribution (xDS transport, gRPC) port. */
  readonly galleyPort: number;
  /** Pilot's ADS (xDS v3, plaintext gRPC) port, Istio's 15010. */
  readonly xdsPort: number;
  /** Mixer's gRPC port (ext_authz Check, RLS ShouldRateLimit, ALS reports), Istio's 9091. */
  readonly mixerPort: number;
  /** Citadel's CSR signing service (gRPC over TLS), Istio's 15012. */
  readonly caPort: number;
  /** A plugged-in CA in Istio's cacerts layout; a self-signed root in the data dir otherwise. */
  readonly caCertsDir?: string;
  /**
   * A MeshConfig YAML file (trust domain, root namespace, outbound policy, ...); Istio's defaults otherwise.
   * Watched: a valid change reaches Pilot (a full push); an invalid one is logged and the old config kept.
   */
  readonly meshConfigFile?: string;
  readonly debounceMs?: number;
  readonly log?: Logger;
}

export interface ControlPlanePorts {
  readonly api: number;
  readonly monitoring: number;
  readonly galley: number;
  readonly xds: number;
  readonly mixer: number;
  readonly ca: number;
}

export class ControlPlane {
  readonly store: ConfigStore;
  readonly distributor: SnapshotDistributor;
  readonly pilot: Pilot;
  readonly mixer: Mixer;
  readonly citadel: Citadel;
  readonly ports: ControlPlanePorts;
  readonly metrics: Registry;
  private readonly closers: (() => Promise<void>)[];

  private constructor(store: ConfigStore, distributor: SnapshotDistributor, pilot: Pilot, mixer: Mixer, citadel: Citadel, ports: ControlPlanePorts, metrics: Registry, closers: (() => Promise<void>)[]) {
    this.store = store;
    this.distributor = distributor;
    this.pilot = pilot;
    this.mixer = mixer;
    this.citadel = citadel;
    this.ports = ports;
    this.metrics = metrics;
    this.closers = closers;
  }

  /** The MeshConfig in force (the watched file's last valid content). */
  get meshConfig(): MeshConfig {
    return this.pilot.meshConfig;
  }

  static async start(options: ControlPlaneOptions): Promise<ControlPlane> {
    const log = options.log ?? createLogger('control-plane');
    const metrics = createProcessRegistry();
    const closers: (() => Promise<void>)[] = [];
    const ready = new Set<string>();
    try {
      // An invalid MeshConfig stops the start with the errors: serving on a misread one would be worse.
      const meshConfig = options.meshConfigFile ? parseMeshConfig(await readFile(options.meshConfigFile, 'utf8')) : defaultMeshConfig();
      log.info({ trustDomain: meshConfig.trustDomain, rootNamespace: meshConfig.rootNamespace, file: options.meshConfigFile }, 'mesh config loaded');
      const store: ConfigStore = options.configDir
        ? await DirectorySource.open({ dir: options.configDir, registry: istioKinds, log: (line: string) => log.warn({ source: options.configDir }, line) })
        : await DurableStore.open(options.dataDir);
      closers.push(() => store.close());
      log.info({ store: store.name, dir: options.configDir ?? options.dataDir, revision: store.revision() }, 'config store open');

      const distributor = new SnapshotDistributor({ store, registry: istioKinds, debounceMs: options.debounceMs ?? 100 });
      await distributor.start();
      closers.push(async () => distributor.stop());
      registerGalleyMetrics(metrics, distributor);

      const changes = new Counter({ name: 'galley_config_changes_total', help: 'Config objects changed through the API, by action', labelNames: ['action'], registers: [metrics] });
      // Pilot starts after the API; its debug pages are reachable through the API port too, for the CLI.
      const debugHandlers: ((req: IncomingMessage, res: ServerResponse) => boolean)[] = [];
      const api = createHttpApiServer({ store, registry: istioKinds, log: log.child({ scope: 'galley.api' }), onChange: (action) => changes.inc({ action }), extraHandlers: debugHandlers });
      const apiPort = await listen(api, options.apiListenFd !== undefined ? { fd: options.apiListenFd } : options.apiPort, options.listenAddress);
      closers.push(() => closeHttp(api));
      ready.add('api');

      const grpcServer = new grpc.Server();
      new GalleyDistributionServer({ distributor, registry: istioKinds, log: log.child({ scope: 'galley.distribution' }) }).register(grpcServer);
      const galleyPort = await bindGrpc(grpcServer, `${options.listenAddress}:${options.galleyPort}`);
      closers.push(() => new Promise<void>((resolve) => grpcServer.tryShutdown(() => resolve())));
      ready.add('galley');

      // Mixer first: Pilot points the sidecars' policy and telemetry filters at its address.
      const mixer = new Mixer({ snapshots: distributor, metrics, rootNamespace: meshConfig.rootNamespace, log: log.child({ scope: 'mixer' }) });
      await mixer.start();
      closers.push(() => mixer.stop());
      const mixerServer = new grpc.Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024 });
      mixer.register(mixerServer);
      const mixerPort = await bindGrpc(mixerServer, `${options.listenAddress}:${options.mixerPort}`);
      closers.push(() => new Promise<void>((resolve) => mixerServer.tryShutdown(() => resolve())));
      ready.add('mixer');

      // Live registrations (src/runtime/registration-server.ts) must come from the workload's own identity.
      const registrationAuthorizer = new SpiffeRegistrationAuthorizer(meshConfig.trustDomain, meshConfig.trustDomainAliases);
      const pilot = new Pilot({ snapshots: distributor, meshConfig, log: log.child({ scope: 'pilot' }), metrics, registrationAuthorizer, mixerAddress: `${connectAddress(options.listenAddress)}:${mixerPort}` });
      await pilot.start();
      closers.push(() => pilot.stop());
      debugHandlers.push(pilot.debugHandler());
      const xdsServer = new grpc.Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024, 'grpc.keepalive_time_ms': 30_000 });
      pilot.register(xdsServer);
      const xdsPort = await bindGrpc(xdsServer, `${options.listenAddress}:${options.xdsPort}`);
      closers.push(() => new Promise<void>((resolve) => xdsServer.tryShutdown(() => resolve())));
      ready.add('pilot');
      if (options.meshConfigFile) {
        // Pilot reads the new config on every push; Citadel, Mixer and the
        // registration checks keep trustDomain and rootNamespace from the start.
        const watcher = new MeshConfigWatcher({ file: options.meshConfigFile, initial: meshConfig, log: log.child({ scope: 'mesh-config' }), onChange: (mesh) => pilot.updateMeshConfig(mesh) });
        await watcher.reload(); // a change between the first read and the watch is not lost
        watcher.start();
        closers.push(() => watcher.close());
      }

      // The CA port asks for a client certificate without requiring one: a
      // workload's first CSR carries a bootstrap token, renewals its current cert.
      const citadel = new Citadel({ dataDir: options.dataDir, caCertsDir: options.caCertsDir, trustDomain: meshConfig.trustDomain, log: log.child({ scope: 'citadel' }), metrics });
      await citadel.start();
      closers.push(() => citadel.stop());
      const caServer = new grpc.Server();
      citadel.register(caServer);
      // Workload registration shares the CA port: the same TLS, the same credentials (bootstrap token or workload certificate).
      new RegistrationServer({ registry: pilot.local, citadel, log: log.child({ scope: 'registration' }) }).register(caServer);
      // Gateway credentials (credentialName) need a verified identity too: istiod serves them on its TLS port.
      const credentials = new CredentialServer({ snapshots: distributor, trustDomain: meshConfig.trustDomain, log: log.child({ scope: 'pilot.credentials' }) });
      credentials.register(caServer);
      const caPort = await new Promise<number>((resolve, reject) => caServer.bindAsync(`${options.listenAddress}:${options.caPort}`, citadel.serverCredentials(), (err, port) => (err ? reject(err) : resolve(port))));
      closers.push(() => new Promise<void>((resolve) => caServer.tryShutdown(() => resolve())));
      // Runs before the shutdown above: open credential streams would keep tryShutdown waiting.
      closers.push(async () => credentials.close());
      ready.add('citadel');
      // The runtime's loopback path (bootstrap tokens, addresses, services) on the config API port.
      debugHandlers.push(createRuntimeApiHandler({ pilot, citadel, listenAddress: options.listenAddress, ports: () => ({ xds: xdsPort, ca: caPort, api: apiPort }) }));

      const monitoring = createMonitoringServer({ registry: metrics, notReady: () => ['api', 'galley', 'pilot', 'mixer', 'citadel'].filter((c) => !ready.has(c)), debugHandlers: [pilot.debugHandler()] });
      const monitoringPort = await listen(monitoring, options.monitoringPort, options.listenAddress);
      closers.push(() => closeHttp(monitoring));

      const ports = { api: apiPort, monitoring: monitoringPort, galley: galleyPort, xds: xdsPort, mixer: mixerPort, ca: caPort };
      log.info({ ...ports, address: options.listenAddress }, 'control plane ready');
      return new ControlPlane(store, distributor, pilot, mixer, citadel, ports, metrics, closers);
    } catch (err) {
      for (const close of closers.reverse()) await close().catch(() => undefined);
      throw err;
    }
  }

  async stop(): Promise<void> {
    for (const close of [...this.closers].reverse()) await close();
  }
}

function registerGalleyMetrics(registry: Registry, distributor: SnapshotDistributor): void {
  const objects = new Gauge({ name: 'galley_config_objects', help: 'Config objects in the current snapshot, by Istio type URL', labelNames: ['type'], registers: [registry] });
  const version = new Gauge({ name: 'galley_snapshot_version', help: 'Version of the current config snapshot', registers: [registry] });
  distributor.subscribe((snapshot: ConfigSnapshot) => {
    version.set(snapshot.version);
    objects.reset();
    for (const type of snapshot.typeUrls()) objects.set({ type }, snapshot.objects(type).length);
  });
}

/** An address a sidecar can dial for a listen address (a wildcard listen is reached on loopback). */
function connectAddress(listen: string): string {
  if (listen === '0.0.0.0' || listen === '') return '127.0.0.1';
  if (listen === '::' || listen === '[::]') return '::1';
  return listen;
}

function bindGrpc(server: grpc.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))));
}

/** Listens on `host:port`, or on an inherited listening socket (`{ fd }`); the port it got. */
async function listen(server: HttpServer, port: number | { fd: number }, host: string): Promise<number> {
  if (typeof port === 'number') server.listen(port, host);
  else server.listen(port);
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err as Error))]);
  const address = server.address();
  return typeof address === 'object' && address ? address.port : 0;
}

function closeHttp(server: HttpServer): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
