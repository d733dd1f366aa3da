// One sidecar process: the agent and the proxy of one workload (or of a
// gateway), assembled here because the runtime is the one layer allowed to
// hold both (DESIGN: agent and proxy depend on xds and common only).
//
// Start order: the control plane's addresses, the trust bundle and a
// bootstrap token (runtime API) -> a key and a certificate (SecretManager,
// CSR to Citadel) -> the proxy from a generated bootstrap, with `default` and
// `ROOTCA` handed to it in-process -> its first complete config (every
// listener the node metadata asks for) -> the app, with Kubernetes-style
// service variables -> registration once the app accepts connections ->
// heartbeats. Stop order: unregister (no new inbound traffic), the app gets
// the signal, outbound keeps flowing until it is gone, then the proxy stops.
//
// Mode no capture: every listener binds its own address: outbound
// 127.0.0.1:<port per service>, inbound <workload loopback IP>:<service port>.
// Mode capture (`options.capture`, set by src/runtime/capture/): the process
// runs inside the workload's network namespace as uid/gid 1337; Pilot sends
// Istio's virtualOutbound 15001 / virtualInbound 15006, the proxy reads
// SO_ORIGINAL_DST, and the DNS proxy on 127.0.0.1:15053 answers mesh names
// with their VIPs. The runtime outside the namespace did the loopback-only
// runtime API calls (info, services, bootstrap tokens) and starts the app.

import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import type { Logger } from '../../common/index.ts';
import { spiffeId } from '../../common/index.ts';
import { CaClient, RegistrationClient, SecretManager } from '../../agent/index.ts';
import { DnsProxy, originalDestination, originalDestinationSupport } from '../../agent/capture/index.ts';
import type { NameTable, Upstream } from '../../agent/capture/index.ts';
import { setOriginalDstResolver } from '../../proxy/index.ts';
import type { WorkloadSecret } from '../../agent/index.ts';
import { Proxy, decodeJson, parseBootstrap } from '../../proxy/index.ts';
import { TypeUrl } from '../../xds/index.ts';
import type { AppExit, AppProcess } from './app-process.ts';
import { startApp } from './app-process.ts';
import { ControlPlaneClient, serviceEntryFor } from './control-plane-client.ts';
import { forwardGatewayCredentials } from './gateway-credentials.ts';
import type { DeclaredPort, MeshServiceInfo, RuntimeInfo } from './control-plane-client.ts';
import { canBind, freePort, randomLoopbackIp, serviceEnvPrefix } from './local-addresses.ts';

/** The proxy's SDS source for the workload secrets (Pilot's config names the `sds-grpc` cluster). */
const SDS_CLUSTER = 'sds-grpc';

/** What the runtime outside a captured workload's namespace hands its sidecar (src/runtime/capture/). */
export interface SidecarCapture {
  /** The namespace's address on the mesh bridge: the workload address. */
  readonly address: string;
  /** The control plane's addresses as reachable from the namespace. */
  readonly info: RuntimeInfo;
  readonly services: readonly MeshServiceInfo[];
  readonly bootstrapToken: () => Promise<string>;
  /** DNS proxy table: mesh names -> VIPs. */
  readonly names: NameTable;
  readonly dnsUpstreams: readonly Upstream[];
  /** DNS proxy port (default 15053). */
  readonly dnsPort?: number;
}

export interface SidecarOptions {
  /** URL of the control plane's config API (it serves the runtime API too). */
  readonly controlPlane: string;
  /** `sidecar` for a workload, `router` for a gateway. */
  readonly type: 'sidecar' | 'router';
  /** The app (service) name: label `app`, the ServiceEntry's name. */
  readonly service: string;
  readonly version?: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  /** The service port clients use (e.g. 9080); none for a client-only job or a gateway. */
  readonly servicePort?: number;
  /**
   * A gateway's Service ports (Istio's istio-egressgateway: http2 80, https 443),
   * declared with `ensureServiceEntry` as a ServiceEntry NAME selecting the
   * gateway's labels. The gateway listens on its Gateways' ports itself (no
   * targetPort), so a Service port is the port a Gateway server names.
   */
  readonly servicePorts?: readonly DeclaredPort[];
  /** The port the app listens on (127.0.0.1); a free one by default. */
  readonly appPort?: number;
  readonly labels?: Readonly<Record<string, string>>;
  /** Workload (pod) name; `<service>-<version>-<random>` by default. */
  readonly workloadName?: string;
  readonly locality?: string;
  /** Declare the service to Pilot as a ServiceEntry when none exists (mesh run does; mesh up applies them itself). */
  readonly ensureServiceEntry?: boolean;
  /** The app and its arguments; none for a gateway. */
  readonly command?: readonly string[];
  /** Extra environment for the app. */
  readonly env?: Readonly<Record<string, string>>;
  /** Prefix of the app's output lines. */
  readonly logPrefix?: string;
  /** Hostnames to wait for in Pilot's registry before computing the app's environment (mesh up declares them). */
  readonly waitForServices?: readonly string[];
  /** How long to wait for the control plane to answer (default 30 s; mesh up starts sidecars alongside it). */
  readonly controlPlaneWaitMs?: number;
  /** How long to wait for the first complete config (default 15 s). */
  readonly configTimeoutMs?: number;
  /** Capture mode (inside the workload namespace); absent: no capture. */
  readonly capture?: SidecarCapture;
  /** Requested workload certificate lifetime in seconds (the CSR's validity_duration); absent or 0: the CA's default. */
  readonly certTtlSeconds?: number;
  readonly log: Logger;
}

export interface SidecarStatus {
  readonly workloadName: string;
  readonly ip: string;
  readonly spiffeId: string;
  readonly outboundPorts: Readonly<Record<string, number>>;
  readonly appPort?: number;
  readonly appEnv: Readonly<Record<string, string>>;
  readonly adminPort?: number;
  /** Istio's stats port (15090 in Istio): Envoy's and Istio's metrics on /stats/prometheus, for Prometheus to scrape. */
  readonly statsPort?: number;
}

/** Istio's name for the listener that serves /stats/prometheus (and of the cluster it forwards to, the admin API). */
export const PROMETHEUS_STATS = 'prometheus_stats';
/** Istio's stats port, used inside a captured workload's own network namespace. */
export const ISTIO_STATS_PORT = 15090;

export class Sidecar {
  readonly options: SidecarOptions;
  private proxy: Proxy | undefined;
  private secrets: SecretManager | undefined;
  private caClient: CaClient | undefined;
  private registration: RegistrationClient | undefined;
  private app: AppProcess | undefined;
  private stopping = false;
  private dns: DnsProxy | undefined;
  private stopCredentials: (() => void) | undefined;
  status: SidecarStatus | undefined;

  constructor(options: SidecarOptions) {
    this.options = options;
  }

  /** Everything up to (not including) the app: certificate, proxy, first complete config. */
  async start(): Promise<SidecarStatus> {
    const o = this.options;
    const log = o.log;
    if (o.capture) return this.startCaptured(o.capture);
    const cp = new ControlPlaneClient(o.controlPlane);
    const waitMs = o.controlPlaneWaitMs ?? 30_000;
    const info = await retry(() => cp.info(), waitMs);
    let ip = randomLoopbackIp();
    if (!(await canBind(ip))) {
      log.warn({ ip }, 'cannot bind a private loopback address; using 127.0.0.1 (Pilot cannot tell workloads on it apart)');
      ip = '127.0.0.1';
    }
    const domain = 'cluster.local';
    const declared = declaredService(o);
    if (declared) {
      const path = `/apis/networking.istio.io/v1/namespaces/${o.namespace}/serviceentries/${o.service}`;
      if (!(await cp.exists(path))) await cp.apply([serviceEntryFor(o.service, o.namespace, declared.ports, domain, [], declared.selector)]);
    }
    const version = o.version ?? 'v1';
    const workloadName = o.workloadName ?? `${o.service}-${version}-${randomBytes(3).toString('hex')}`;
    const labels = workloadLabels(o, version);

    // Outbound: a local port per service port in the mesh, and the app's environment for them.
    const outboundPorts: Record<string, number> = {};
    const appEnv: Record<string, string> = {};
    if (o.type === 'sidecar') {
      const wanted = o.waitForServices ?? [];
      const services = await retry(async () => {
        const list = await cp.services();
        const missing = wanted.filter((h) => !list.some((s) => s.hostname === h));
        if (missing.length > 0) throw new Error(`services not declared yet: ${missing.join(', ')}`);
        return list;
      }, waitMs);
      for (const s of services) {
        const ports = s.ports.filter((p) => p.protocol !== 'UDP');
        for (const p of ports) outboundPorts[`${s.hostname}:${p.port}`] = await freePort();
        const m = new RegExp(`^([^.]+)\\.${o.namespace}\\.svc\\.`).exec(s.hostname);
        if (!m || ports.length === 0) continue;
        const prefix = serviceEnvPrefix(m[1]!);
        appEnv[`${prefix}_SERVICE_HOST`] = '127.0.0.1';
        appEnv[`${prefix}_SERVICE_PORT`] = String(outboundPorts[`${s.hostname}:${ports[0]!.port}`]);
        for (const p of ports) if (p.name) appEnv[`${prefix}_SERVICE_PORT_${serviceEnvPrefix(p.name)}`] = String(outboundPorts[`${s.hostname}:${p.port}`]);
      }
    }
    const appPort = o.type === 'sidecar' && o.command?.length ? (o.appPort ?? (await freePort())) : undefined;
    const inboundPorts: Record<string, number> = o.servicePort !== undefined && appPort !== undefined ? { [String(o.servicePort)]: appPort } : {};

    // Identity: a key made here, a certificate from Citadel.
    const id = spiffeId({ trustDomain: info.trustDomain, namespace: o.namespace, serviceAccount: o.serviceAccount });
    this.caClient = new CaClient({ address: info.caAddress, rootCertsPem: info.trustBundlePem });
    this.secrets = new SecretManager({ spiffeId: id, caClient: this.caClient, bootstrapToken: () => cp.bootstrapToken(o.namespace, o.serviceAccount), ...(o.certTtlSeconds ? { ttlSeconds: o.certTtlSeconds } : {}), log: log.child({ scope: 'agent.certificates' }) });
    await this.secrets.start();

    const adminPort = await freePort(ip);
    // Stats on port 0: several sidecars share the host, so each learns its own (status, ready line).
    const bootstrap = buildBootstrap({ o, ip, workloadName, labels, info, outboundPorts, inboundPorts, adminPort, statsPort: 0, domain });
    this.proxy = await Proxy.start({ bootstrap: parseBootstrap(JSON.stringify(bootstrap), 'generated bootstrap'), logger: log.child({ scope: 'proxy' }), initialFetchTimeoutMs: o.configTimeoutMs ?? 15_000 });
    const proxy = this.proxy;
    const install = (secret: WorkloadSecret): void => proxy.secrets.apply({ kind: 'cluster', cluster: SDS_CLUSTER }, secretResources(secret), String(secret.version));
    install(this.secrets.current()!);
    this.secrets.subscribe(install);
    // A gateway's credentialName secrets come from the control plane, through the agent (gateway-credentials.ts).
    if (o.type === 'router') this.stopCredentials = forwardGatewayCredentials({ proxy, sdsCluster: SDS_CLUSTER, address: info.caAddress, workloadSecret: () => this.secrets!.current()!, log: log.child({ scope: 'agent.credentials' }) });
    await this.waitForConfig(Object.values(outboundPorts).map((p) => `127.0.0.1_${p}`));

    const registrationPorts: Record<string, number> = o.servicePort !== undefined ? { http: o.servicePort } : {};
    this.registration = new RegistrationClient({
      address: info.caAddress,
      registration: { name: workloadName, namespace: o.namespace, address: ip, ports: registrationPorts, labels, serviceAccount: o.serviceAccount, ...(o.locality ? { locality: o.locality } : {}) },
      credential: () => {
        const s = this.secrets!.current()!;
        return { kind: 'certificate', certChainPem: s.certChainPem, privateKeyPem: s.privateKeyPem, rootCertPem: s.rootCertPem };
      },
      log: log.child({ scope: 'agent.registration' }),
    });
    const statsPort = proxy.listenerPort(PROMETHEUS_STATS);
    this.status = { workloadName, ip, spiffeId: id, outboundPorts, ...(appPort !== undefined ? { appPort } : {}), appEnv, adminPort: proxy.admin?.port, statsPort };
    log.info({ workload: `${o.namespace}/${workloadName}`, mode: 'no-capture', ip, spiffeId: id, outbound: Object.keys(outboundPorts).length, appPort, admin: `${ip}:${proxy.admin?.port}`, stats: `${ip}:${statsPort}` }, 'sidecar ready: config and certificate in place');
    return this.status;
  }

  /**
   * Capture mode: the workload address is the namespace's, no per-service
   * ports (iptables sends everything to 15001/15006), the app serves on
   * 127.0.0.1:<service port>, the DNS proxy answers mesh names. A gateway
   * (router) in its own namespace has no capture rules: it listens on its
   * Gateways' ports on the namespace address and its DNS proxy is the
   * namespace's nameserver itself (`dnsPort` 53).
   */
  private async startCaptured(c: SidecarCapture): Promise<SidecarStatus> {
    const o = this.options;
    const log = o.log;
    const support = originalDestinationSupport();
    if (support.ok) setOriginalDstResolver(originalDestination);
    else log.warn({ reason: support.reason }, 'SO_ORIGINAL_DST unavailable: captured connections keep their local address');
    const domain = 'cluster.local';
    const version = o.version ?? 'v1';
    const workloadName = o.workloadName ?? `${o.service}-${version}-${randomBytes(3).toString('hex')}`;
    const labels = workloadLabels(o, version);
    this.dns = new DnsProxy({ namespace: o.namespace, domain, upstreams: c.dnsUpstreams, port: c.dnsPort ?? 15053 });
    this.dns.setNames(c.names);
    const dnsAddress = await this.dns.start();
    const id = spiffeId({ trustDomain: c.info.trustDomain, namespace: o.namespace, serviceAccount: o.serviceAccount });
    this.caClient = new CaClient({ address: c.info.caAddress, rootCertsPem: c.info.trustBundlePem });
    this.secrets = new SecretManager({ spiffeId: id, caClient: this.caClient, bootstrapToken: c.bootstrapToken, ...(o.certTtlSeconds ? { ttlSeconds: o.certTtlSeconds } : {}), log: log.child({ scope: 'agent.certificates' }) });
    await this.secrets.start();
    const adminPort = 15000;
    const bootstrap = buildBootstrap({ o, ip: c.address, workloadName, labels, info: c.info, outboundPorts: {}, inboundPorts: {}, adminPort, adminAddress: '127.0.0.1', statsPort: ISTIO_STATS_PORT, domain, capture: true });
    this.proxy = await Proxy.start({ bootstrap: parseBootstrap(JSON.stringify(bootstrap), 'generated bootstrap'), logger: log.child({ scope: 'proxy' }), initialFetchTimeoutMs: o.configTimeoutMs ?? 15_000 });
    const proxy = this.proxy;
    const install = (secret: WorkloadSecret): void => proxy.secrets.apply({ kind: 'cluster', cluster: SDS_CLUSTER }, secretResources(secret), String(secret.version));
    install(this.secrets.current()!);
    this.secrets.subscribe(install);
    // A gateway in its namespace: no capture listeners, its Gateways' ports; credentialName secrets as on the host.
    if (o.type === 'router') this.stopCredentials = forwardGatewayCredentials({ proxy, sdsCluster: SDS_CLUSTER, address: c.info.caAddress, workloadSecret: () => this.secrets!.current()!, log: log.child({ scope: 'agent.credentials' }) });
    await this.waitForConfig(o.type === 'router' ? [] : ['virtualOutbound', 'virtualInbound']);
    this.registration = new RegistrationClient({
      address: c.info.caAddress,
      registration: { name: workloadName, namespace: o.namespace, address: c.address, ports: o.servicePort !== undefined ? { http: o.servicePort } : {}, labels, serviceAccount: o.serviceAccount, ...(o.locality ? { locality: o.locality } : {}) },
      credential: () => {
        const s = this.secrets!.current()!;
        return { kind: 'certificate', certChainPem: s.certChainPem, privateKeyPem: s.privateKeyPem, rootCertPem: s.rootCertPem };
      },
      log: log.child({ scope: 'agent.registration' }),
    });
    const statsPort = proxy.listenerPort(PROMETHEUS_STATS);
    this.status = { workloadName, ip: c.address, spiffeId: id, outboundPorts: {}, ...(o.servicePort !== undefined ? { appPort: o.servicePort } : {}), appEnv: {}, adminPort: proxy.admin?.port, statsPort };
    log.info({ workload: `${o.namespace}/${workloadName}`, mode: 'capture', ip: c.address, spiffeId: id, dns: `${dnsAddress.address}:${dnsAddress.port}`, admin: `127.0.0.1:${proxy.admin?.port}`, stats: `${c.address}:${statsPort}` }, 'sidecar ready: config and certificate in place');
    return this.status;
  }

  /** Capture mode: replaces the DNS proxy's table (services declared later). */
  setNames(names: NameTable): void {
    this.dns?.setNames(names);
  }

  /** Capture mode (the app runs beside the sidecar): registers once 127.0.0.1:port accepts, unless stopping first. */
  async registerWhenServing(port: number | undefined): Promise<void> {
    if (port !== undefined) {
      while (!this.stopping && !(await canConnect(port))) await new Promise((r) => setTimeout(r, 50));
    }
    if (this.stopping) return;
    await this.registration!.start();
  }

  /** Unregisters (no new inbound traffic); the proxy keeps serving. */
  async unregister(): Promise<void> {
    this.stopping = true;
    await this.registration?.stop();
  }

  /** Starts the app (if any) and registers the workload once it serves; resolves when the app exits (a gateway: never, until stop()). */
  async run(): Promise<AppExit> {
    const o = this.options;
    const status = this.status!;
    if (!o.command?.length) {
      await this.registration!.start();
      return new Promise(() => undefined);
    }
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...status.appEnv,
      ...(status.appPort !== undefined ? { PORT: String(status.appPort), HOST: '127.0.0.1' } : {}),
      SERVICE_VERSION: o.version ?? 'v1',
      POD_NAME: status.workloadName,
      POD_NAMESPACE: o.namespace,
      SERVICE_ACCOUNT: o.serviceAccount,
      ...o.env,
    };
    this.app = startApp(o.command, env, o.logPrefix ?? '');
    const app = this.app;
    void (async () => {
      if (status.appPort !== undefined && !(await waitForPort(status.appPort, app))) return;
      if (this.stopping || app.child.exitCode !== null) return;
      await this.registration!.start().catch((err: unknown) => o.log.error({ err: (err as Error).message }, 'registration failed; the workload gets no inbound traffic'));
    })();
    return app.exited;
  }

  /** Forwards a signal to the app (stop order: unregister first, outbound keeps flowing until the app exits). */
  async signal(sig: NodeJS.Signals): Promise<void> {
    this.stopping = true;
    await this.registration?.stop();
    this.app?.signal(sig);
  }

  /** Unregisters, drains and stops the proxy and the certificate rotation. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.registration?.stop();
    this.app?.signal('SIGTERM');
    if (this.app) await this.app.exited;
    this.stopCredentials?.();
    this.secrets?.stop();
    this.caClient?.close();
    await this.proxy?.stop();
    await this.dns?.close();
  }

  /** The first complete config: every outbound listener the metadata asked for exists (the ADS client has CDS and LDS). */
  private async waitForConfig(listeners: readonly string[]): Promise<void> {
    const proxy = this.proxy!;
    const deadline = Date.now() + (this.options.configTimeoutMs ?? 15_000);
    for (;;) {
      const missing = listeners.filter((n) => !proxy.listeners.get(n));
      if (missing.length === 0 && proxy.state === 'LIVE') return;
      if (Date.now() > deadline) throw new Error(`the proxy has no complete config after ${this.options.configTimeoutMs ?? 15_000} ms: missing listeners ${missing.join(', ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Istio's labels of a sidecar's workload; a gateway's are `app` and its own (`istio: ingressgateway`). */
function workloadLabels(o: SidecarOptions, version: string): Record<string, string> {
  return o.type === 'sidecar'
    ? { app: o.service, version, 'security.istio.io/tlsMode': 'istio', 'service.istio.io/canonical-name': o.service, 'service.istio.io/canonical-revision': version, ...o.labels }
    : { app: o.service, ...o.labels };
}

/**
 * The Service the runtime declares for a workload with `ensureServiceEntry`:
 * a sidecar's one HTTP service port (selecting app=NAME), or a gateway's
 * `servicePorts` (selecting its labels); undefined when there is none.
 */
export function declaredService(o: SidecarOptions): { ports: number | readonly DeclaredPort[]; selector: Record<string, string> } | undefined {
  if (!o.ensureServiceEntry) return undefined;
  if (o.type === 'router') return o.servicePorts?.length ? { ports: o.servicePorts, selector: workloadLabels(o, o.version ?? 'v1') } : undefined;
  return o.servicePort !== undefined ? { ports: o.servicePort, selector: { app: o.service } } : undefined;
}

/** Calls `fn` until it resolves, every 100 ms, for at most `timeoutMs`; then rejects with its last error. */
async function retry<T>(fn: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function secretResources(secret: WorkloadSecret): Record<string, unknown>[] {
  return [
    decodeJson(TypeUrl.Secret, { name: 'default', tls_certificate: { certificate_chain: { inline_string: secret.certChainPem }, private_key: { inline_string: secret.privateKeyPem } } }, 'Secret default'),
    decodeJson(TypeUrl.Secret, { name: 'ROOTCA', validation_context: { trusted_ca: { inline_string: secret.rootCertPem } } }, 'Secret ROOTCA'),
  ] as Record<string, unknown>[];
}

interface BootstrapInput {
  readonly o: SidecarOptions;
  readonly ip: string;
  readonly workloadName: string;
  readonly labels: Record<string, string>;
  readonly info: RuntimeInfo;
  readonly outboundPorts: Record<string, number>;
  readonly inboundPorts: Record<string, number>;
  readonly adminPort: number;
  /** Admin listen address (default: the workload address). */
  readonly adminAddress?: string;
  /** Port of the stats listener (0: any); absent: no stats listener. */
  readonly statsPort?: number;
  readonly domain: string;
  /** Capture mode: INTERCEPTION_MODE REDIRECT, no per-port metadata. */
  readonly capture?: boolean;
}

/** The Envoy v3 bootstrap of the sidecar: Istio's node id and metadata, ADS to Pilot. */
export function buildBootstrap(b: BootstrapInput): Record<string, unknown> {
  const { o, ip } = b;
  const [xdsHost, xdsPort] = splitHostPort(b.info.xdsAddress);
  const metadata: Record<string, unknown> = {
    NAMESPACE: o.namespace,
    LABELS: b.labels,
    INSTANCE_IPS: ip,
    WORKLOAD_NAME: `${o.service}-${o.version ?? 'v1'}`,
    NAME: b.workloadName,
    SERVICE_ACCOUNT: o.serviceAccount,
    CLUSTER_ID: 'Kubernetes',
    ISTIO_VERSION: 'mesh',
  };
  // No capture: the gateway too has no original destinations. Capture: Istio's REDIRECT (a gateway's namespace has no rules).
  metadata.INTERCEPTION_MODE = b.capture && o.type === 'sidecar' ? 'REDIRECT' : 'NONE';
  if (o.type === 'sidecar' && !b.capture) {
    metadata.OUTBOUND_PORTS = b.outboundPorts;
    metadata.INBOUND_PORTS = b.inboundPorts;
  }
  return {
    node: {
      id: `${o.type}~${ip}~${b.workloadName}.${o.namespace}~${o.namespace}.svc.${b.domain}`,
      cluster: `${o.service}.${o.namespace}`,
      metadata,
      ...(o.locality ? { locality: localityOf(o.locality) } : {}),
    },
    admin: { address: { socket_address: { address: b.adminAddress ?? ip, port_value: b.adminPort } } },
    dynamic_resources: {
      ads_config: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }] },
      cds_config: { ads: {}, resource_api_version: 'V3' },
      lds_config: { ads: {}, resource_api_version: 'V3' },
    },
    static_resources: {
      clusters: [staticCluster('xds-grpc', xdsHost, xdsPort, '1s'), ...(b.statsPort !== undefined ? [staticCluster(PROMETHEUS_STATS, b.adminAddress ?? ip, b.adminPort, '0.250s')] : [])],
      ...(b.statsPort !== undefined ? { listeners: [prometheusStatsListener(b.capture ? '0.0.0.0' : ip, b.statsPort)] } : {}),
    },
  };
}

function staticCluster(name: string, address: string, port: number, connectTimeout: string): Record<string, unknown> {
  return { name, type: 'STATIC', connect_timeout: connectTimeout, load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address, port_value: port } } } }] }] } };
}

/**
 * Istio's stats listener, as in its bootstrap: only /stats/prometheus, forwarded
 * to the admin API, so Prometheus can scrape the proxy without reaching the
 * admin's other (mutating) endpoints. Capture mode binds 0.0.0.0 inside the
 * namespace, as Istio does (the iptables rules leave 15090 uncaptured).
 */
function prometheusStatsListener(address: string, port: number): Record<string, unknown> {
  const hcm = {
    '@type': TypeUrl.HttpConnectionManager,
    codec_type: 'AUTO',
    stat_prefix: 'stats',
    route_config: { virtual_hosts: [{ name: 'backend', domains: ['*'], routes: [{ match: { prefix: '/stats/prometheus' }, route: { cluster: PROMETHEUS_STATS } }] }] },
    http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': TypeUrl.Router } }],
  };
  return {
    name: PROMETHEUS_STATS,
    address: { socket_address: { address, port_value: port } },
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm }] }],
  };
}

function localityOf(text: string): Record<string, string> {
  const [region = '', zone = '', subzone = ''] = text.split('/');
  return { region, zone, sub_zone: subzone };
}

function splitHostPort(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i), Number(address.slice(i + 1))];
}

function canConnect(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Resolves true once 127.0.0.1:port accepts a connection, false if the app exits first. */
async function waitForPort(port: number, app: AppProcess): Promise<boolean> {
  let exited = false;
  void app.exited.then(() => (exited = true));
  while (!exited) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}
