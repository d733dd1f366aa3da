// PushContext: one immutable, indexed view of everything config generation
// reads (config snapshot, registry services and endpoints, mesh config) at
// one push version. Generators only query it; a change builds a new one.
//
// Config hosts are resolved here once (`reviews` in namespace `default` ->
// `reviews.default.svc.cluster.local`), so later code compares FQDNs only.

import type { ConfigObject, DestinationRuleSpec, GatewaySpec, MeshConfig, SidecarSpec, VirtualServiceSpec } from '../api/index.ts';
import type { ConfigSnapshot } from '../galley/index.ts';
import type { ProxyNode, PushContextLike, Service, ServiceEndpoint } from './model/index.ts';
import { hostMatches, isVisible, labelsMatch, resolveHost } from './networking/hosts.ts';
import type { ConfigKey } from './networking/xds-cache.ts';
import { XdsCache } from './networking/xds-cache.ts';

export const VIRTUAL_SERVICE_TYPE = 'networking.istio.io/v1/VirtualService';
export const DESTINATION_RULE_TYPE = 'networking.istio.io/v1/DestinationRule';
export const GATEWAY_TYPE = 'networking.istio.io/v1/Gateway';
export const SIDECAR_TYPE = 'networking.istio.io/v1/Sidecar';

/** Config kinds that reach a push context only through the service registry (as services and endpoints). */
const REGISTRY_INPUT_TYPES: ReadonlySet<string> = new Set(['networking.istio.io/v1/ServiceEntry', 'networking.istio.io/v1/WorkloadEntry']);

/** Cache dependencies (xds-cache.ts) on the set of services, of DestinationRules, and on which VirtualService applies to which host. */
export const SERVICES_DEP: ConfigKey = 'Service/*';
export const DESTINATION_RULES_DEP: ConfigKey = 'DestinationRule/*';
export const VIRTUAL_SERVICE_SELECTION_DEP: ConfigKey = 'VirtualService/*';

/** The cache dependency on one VirtualService's rules. */
export function virtualServiceDep(vs: { readonly namespace: string; readonly name: string }): ConfigKey {
  return `VirtualService/${vs.namespace}/${vs.name}`;
}

/** The gateway name that means "the sidecars of the mesh". */
export const MESH_GATEWAY = 'mesh';

export interface PushContextOptions {
  readonly snapshot: ConfigSnapshot;
  readonly services: readonly Service[];
  readonly endpoints: (hostname: string) => readonly ServiceEndpoint[];
  readonly mesh: MeshConfig;
  readonly version: string;
  /** DNS suffix of Kubernetes-style hosts; default `cluster.local`. */
  readonly domainSuffix?: string;
  /** Mixer's gRPC address (host:port) for the sidecars' policy/telemetry filters; none: no Mixer filters. */
  readonly mixerAddress?: string;
  /** The push context this one follows: its cached resources are kept where nothing they depend on changed. */
  readonly previous?: PushContext;
}

/** A VirtualService with its hosts, gateways and destination hosts resolved to FQDNs / `ns/name`. */
export interface ResolvedVirtualService {
  readonly name: string;
  readonly namespace: string;
  readonly hosts: readonly string[];
  /** `mesh` or `namespace/name`; `[mesh]` when the object names none. */
  readonly gateways: readonly string[];
  readonly spec: VirtualServiceSpec;
  readonly exportTo: readonly string[];
  /** Creation order decides which of two rules for one host wins (older first). */
  readonly order: number;
}

export interface ResolvedDestinationRule {
  readonly name: string;
  readonly namespace: string;
  readonly host: string;
  readonly spec: DestinationRuleSpec;
  readonly exportTo: readonly string[];
}

export interface ResolvedGateway {
  readonly name: string;
  readonly namespace: string;
  readonly spec: GatewaySpec;
}

export interface ResolvedSidecar {
  readonly name: string;
  readonly namespace: string;
  readonly spec: SidecarSpec;
}

/** Parsed `namespace/host` of a Sidecar egress listener. */
interface EgressHost {
  readonly namespace: string;
  readonly host: string;
}

export class PushContext implements PushContextLike {
  readonly version: string;
  readonly mesh: MeshConfig;
  readonly domainSuffix: string;
  readonly snapshot: ConfigSnapshot;
  /** Mixer's gRPC address (host:port), when the control plane hosts one. */
  readonly mixerAddress: string | undefined;
  /** All services sorted by hostname. */
  readonly services: readonly Service[];
  readonly virtualServices: readonly ResolvedVirtualService[];
  readonly destinationRules: readonly ResolvedDestinationRule[];
  readonly gateways: readonly ResolvedGateway[];
  readonly sidecars: readonly ResolvedSidecar[];
  /** Generated resources shared across pushes, keyed by their dependencies (see xds-cache.ts). */
  readonly xdsCache: XdsCache;
  readonly #byHost: ReadonlyMap<string, Service>;
  readonly #endpoints: (hostname: string) => readonly ServiceEndpoint[];
  readonly #endpointCache = new Map<string, readonly ServiceEndpoint[]>();
  readonly #vsByGateway: ReadonlyMap<string, readonly ResolvedVirtualService[]>;
  readonly #drByNamespace: ReadonlyMap<string, readonly ResolvedDestinationRule[]>;
  readonly #vsByName: ReadonlyMap<string, ResolvedVirtualService>;

  constructor(options: PushContextOptions) {
    this.version = options.version;
    this.mesh = options.mesh;
    this.domainSuffix = options.domainSuffix ?? 'cluster.local';
    this.snapshot = options.snapshot;
    this.mixerAddress = options.mixerAddress;
    this.services = [...options.services].sort((a, b) => compare(a.hostname, b.hostname));
    this.#byHost = new Map(this.services.map((s) => [s.hostname, s]));
    this.#endpoints = options.endpoints;

    const vss = options.snapshot.objects(VIRTUAL_SERVICE_TYPE).map((o, i) => this.#resolveVirtualService(o as ConfigObject<VirtualServiceSpec>, i));
    vss.sort((a, b) => a.order - b.order);
    this.virtualServices = vss;
    this.#vsByName = new Map(vss.map((v) => [`${v.namespace}/${v.name}`, v]));
    const byGateway = new Map<string, ResolvedVirtualService[]>();
    for (const vs of vss) {
      if (vs.hosts.length === 0) continue; // delegates are reached only through their parent
      for (const gw of vs.gateways) {
        const list = byGateway.get(gw) ?? [];
        list.push(vs);
        byGateway.set(gw, list);
      }
    }
    this.#vsByGateway = byGateway;

    this.destinationRules = mergeDestinationRules(options.snapshot.objects(DESTINATION_RULE_TYPE).map((o) => {
      const obj = o as ConfigObject<DestinationRuleSpec>;
      const ns = obj.metadata.namespace ?? '';
      return { name: obj.metadata.name, namespace: ns, host: resolveHost(obj.spec.host, ns, this.domainSuffix), spec: obj.spec, exportTo: obj.spec.exportTo ?? [] };
    }));
    const drs = new Map<string, ResolvedDestinationRule[]>();
    for (const dr of this.destinationRules) {
      const list = drs.get(dr.namespace) ?? [];
      list.push(dr);
      drs.set(dr.namespace, list);
    }
    this.#drByNamespace = drs;

    this.gateways = options.snapshot.objects(GATEWAY_TYPE).map((o) => ({ name: o.metadata.name, namespace: o.metadata.namespace ?? '', spec: o.spec as GatewaySpec }));
    this.sidecars = options.snapshot.objects(SIDECAR_TYPE).map((o) => ({ name: o.metadata.name, namespace: o.metadata.namespace ?? '', spec: o.spec as SidecarSpec }));
    this.xdsCache = options.previous ? options.previous.xdsCache.derive(this.#changesSince(options.previous)) : new XdsCache();
    Object.freeze(this);
  }

  /**
   * The cache dependencies invalidated from `previous` to this push context
   * (Istio's ConfigsUpdated, worked out from the inputs themselves rather
   * than trusted from the caller): changed services, DestinationRules, and
   * VirtualServices by name, or by selection when a VirtualService appeared,
   * vanished, or changed its hosts, gateways or exportTo (then which one a
   * host selects may change). Any other kind of change clears everything.
   */
  #changesSince(previous: PushContext): ReadonlySet<ConfigKey> | 'all' {
    if (previous.mesh !== this.mesh || previous.domainSuffix !== this.domainSuffix || previous.mixerAddress !== this.mixerAddress) return 'all';
    const cleared = new Set<ConfigKey>();
    if (previous.services.length !== this.services.length || previous.services.some((s, i) => s !== this.services[i])) cleared.add(SERVICES_DEP);
    for (const typeUrl of this.snapshot.changedTypes(previous.snapshot)) {
      if (REGISTRY_INPUT_TYPES.has(typeUrl)) continue; // compared above, as services; endpoints are never cached across pushes
      if (typeUrl === DESTINATION_RULE_TYPE) cleared.add(DESTINATION_RULES_DEP);
      else if (typeUrl === VIRTUAL_SERVICE_TYPE) this.#virtualServiceChanges(previous, cleared);
      else return 'all';
    }
    return cleared;
  }

  #virtualServiceChanges(previous: PushContext, cleared: Set<ConfigKey>): void {
    for (const key of new Set([...previous.#vsByName.keys(), ...this.#vsByName.keys()])) {
      const before = previous.#vsByName.get(key);
      const after = this.#vsByName.get(key);
      if (before?.spec === after?.spec) continue;
      if (before && after && sameSelection(before, after)) cleared.add(virtualServiceDep(after));
      else cleared.add(VIRTUAL_SERVICE_SELECTION_DEP);
    }
  }

  #resolveVirtualService(obj: ConfigObject<VirtualServiceSpec>, index: number): ResolvedVirtualService {
    const ns = obj.metadata.namespace ?? '';
    const spec = obj.spec;
    const gateways = (spec.gateways ?? []).map((g) => (g === MESH_GATEWAY || g.includes('/') ? g : `${ns}/${g}`));
    const created = Date.parse(obj.metadata.creationTimestamp ?? '');
    return {
      name: obj.metadata.name,
      namespace: ns,
      hosts: (spec.hosts ?? []).map((h) => resolveHost(h, ns, this.domainSuffix)),
      gateways: gateways.length > 0 ? gateways : [MESH_GATEWAY],
      spec,
      exportTo: spec.exportTo ?? [],
      // Objects without a timestamp keep snapshot order (namespace/name) after timestamped ones.
      order: (Number.isFinite(created) ? created : 8.64e15) + index * 1e-6,
    };
  }

  /** Resolves a host written in config of `namespace`. */
  resolve(host: string, namespace: string): string {
    return resolveHost(host, namespace, this.domainSuffix);
  }

  service(hostname: string): Service | undefined {
    return this.#byHost.get(hostname);
  }

  /** Endpoints of a host, memoized for the life of this push. */
  endpoints(hostname: string): readonly ServiceEndpoint[] {
    let eps = this.#endpointCache.get(hostname);
    if (!eps) {
      eps = this.#endpoints(hostname);
      this.#endpointCache.set(hostname, eps);
    }
    return eps;
  }

  /** The Sidecar resource that applies to a proxy: its own by selector, else its namespace's, else the root namespace's. */
  sidecarFor(proxy: ProxyNode): ResolvedSidecar | undefined {
    const inNs = this.sidecars.filter((s) => s.namespace === proxy.namespace);
    const selected = inNs.find((s) => s.spec.workloadSelector?.labels && labelsMatch(s.spec.workloadSelector.labels, proxy.labels));
    if (selected) return selected;
    return inNs.find((s) => !s.spec.workloadSelector)
      ?? this.sidecars.find((s) => s.namespace === this.mesh.rootNamespace && !s.spec.workloadSelector);
  }

  #egressHosts(proxy: ProxyNode): EgressHost[] | undefined {
    const sidecar = this.sidecarFor(proxy);
    const egress = sidecar?.spec.egress;
    if (!sidecar || !egress || egress.length === 0) return undefined;
    const out: EgressHost[] = [];
    for (const listener of egress) {
      for (const h of listener.hosts ?? []) {
        const slash = h.indexOf('/');
        const ns = slash < 0 ? '*' : h.slice(0, slash);
        out.push({ namespace: ns === '.' ? sidecar.namespace : ns, host: slash < 0 ? h : h.slice(slash + 1) });
      }
    }
    return out;
  }

  /** ALLOW_ANY or REGISTRY_ONLY for this proxy: its Sidecar overrides the mesh. */
  outboundTrafficPolicy(proxy: ProxyNode): 'ALLOW_ANY' | 'REGISTRY_ONLY' {
    return this.sidecarFor(proxy)?.spec.outboundTrafficPolicy?.mode ?? this.mesh.outboundTrafficPolicy.mode;
  }

  /** Services a proxy may reach: exported to its namespace, and within its Sidecar's egress hosts. */
  servicesFor(proxy: ProxyNode): Service[] {
    const egress = this.#egressHosts(proxy);
    return this.services.filter((s) => {
      if (!isVisible(s.exportTo, this.mesh.defaultServiceExportTo, s.namespace, proxy.namespace)) return false;
      return !egress || egress.some((e) => (e.namespace === '*' || e.namespace === s.namespace) && hostMatches(e.host, s.hostname));
    });
  }

  /**
   * VirtualServices bound to a gateway (`mesh` for sidecars) and visible to
   * the proxy's namespace, oldest first. For sidecars the Sidecar egress
   * hosts narrow them too.
   */
  virtualServicesFor(proxy: ProxyNode, gateway: string): ResolvedVirtualService[] {
    const list = this.#vsByGateway.get(gateway) ?? [];
    const egress = gateway === MESH_GATEWAY ? this.#egressHosts(proxy) : undefined;
    return list.filter((vs) => {
      if (!isVisible(vs.exportTo, this.mesh.defaultVirtualServiceExportTo, vs.namespace, proxy.namespace)) return false;
      return !egress || vs.hosts.some((h) => egress.some((e) => (e.namespace === '*' || e.namespace === vs.namespace) && hostMatches(e.host, h)));
    });
  }

  /** A delegate VirtualService by `namespace/name`. */
  delegate(namespace: string, name: string): ResolvedVirtualService | undefined {
    const vs = this.#vsByName.get(`${namespace}/${name}`);
    return vs && vs.hosts.length === 0 ? vs : undefined;
  }

  /**
   * Istio's DestinationRule lookup for traffic from a proxy in `proxyNamespace`
   * to `hostname`: a rule in the proxy's namespace, else one exported from
   * the service's namespace, else one exported from the root namespace. Within
   * a namespace the most specific host wins (exact, then longest wildcard).
   */
  destinationRule(proxyNamespace: string, hostname: string): ResolvedDestinationRule | undefined {
    const service = this.#byHost.get(hostname);
    const order = [proxyNamespace];
    if (service && !order.includes(service.namespace)) order.push(service.namespace);
    if (!order.includes(this.mesh.rootNamespace)) order.push(this.mesh.rootNamespace);
    for (const ns of order) {
      const candidates = (this.#drByNamespace.get(ns) ?? []).filter((dr) =>
        hostMatches(dr.host, hostname) && (ns === proxyNamespace || isVisible(dr.exportTo, this.mesh.defaultDestinationRuleExportTo, dr.namespace, proxyNamespace)));
      if (candidates.length === 0) continue;
      return candidates.sort((a, b) => specificity(b.host) - specificity(a.host))[0];
    }
    return undefined;
  }

  /** Gateways whose selector matches a gateway proxy's labels; one without a selector applies to every gateway. */
  gatewaysFor(proxy: ProxyNode): ResolvedGateway[] {
    return this.gateways.filter((g) => labelsMatch(g.spec.selector, proxy.labels));
  }

  #byAddress: Map<string, ServiceEndpoint[]> | undefined;

  /** Every endpoint by workload address, in service order (what the scan in inboundEndpoints yields). */
  #endpointsByAddress(): Map<string, ServiceEndpoint[]> {
    if (this.#byAddress) return this.#byAddress;
    const index = new Map<string, ServiceEndpoint[]>();
    for (const s of this.services) {
      for (const ep of this.endpoints(s.hostname)) {
        const list = index.get(ep.workload.address);
        if (list) list.push(ep);
        else index.set(ep.workload.address, [ep]);
      }
    }
    this.#byAddress = index;
    return index;
  }

  /** Endpoints on this proxy's own addresses: what its inbound side serves. */
  inboundEndpoints(proxy: ProxyNode): ServiceEndpoint[] {
    const ips = new Set(proxy.ipAddresses);
    if (proxy.workload) ips.add(proxy.workload.address);
    // One address (the usual sidecar): an index built once per push instead of a scan of every endpoint per proxy.
    if (ips.size === 1) return [...(this.#endpointsByAddress().get(ips.values().next().value!) ?? [])];
    const out: ServiceEndpoint[] = [];
    for (const s of this.services) {
      for (const ep of this.endpoints(s.hostname)) if (ips.has(ep.workload.address)) out.push(ep);
    }
    return out;
  }
}

/**
 * Istio merges DestinationRules of one namespace for one host: subsets are
 * added up (a repeated name keeps the first), and the first rule with a
 * top-level traffic policy supplies it. Objects arrive in snapshot order.
 */
function mergeDestinationRules(rules: ResolvedDestinationRule[]): ResolvedDestinationRule[] {
  const byKey = new Map<string, ResolvedDestinationRule>();
  for (const dr of rules) {
    const key = `${dr.namespace}/${dr.host}`;
    const prev = byKey.get(key);
    if (!prev) {
      byKey.set(key, dr);
      continue;
    }
    const names = new Set((prev.spec.subsets ?? []).map((x) => x.name));
    const subsets = [...(prev.spec.subsets ?? []), ...(dr.spec.subsets ?? []).filter((x) => !names.has(x.name))];
    byKey.set(key, { ...prev, spec: { ...prev.spec, trafficPolicy: prev.spec.trafficPolicy ?? dr.spec.trafficPolicy, subsets } });
  }
  return [...byKey.values()];
}

/** Whether two versions of a VirtualService apply to the same hosts (so only their rules differ). */
function sameSelection(a: ResolvedVirtualService, b: ResolvedVirtualService): boolean {
  const same = (x: readonly string[], y: readonly string[]): boolean => x.length === y.length && x.every((v, i) => v === y[i]);
  return a.hosts.length > 0 && same(a.hosts, b.hosts) && same(a.gateways, b.gateways) && same(a.exportTo, b.exportTo) && a.order === b.order;
}

function specificity(host: string): number {
  return host.startsWith('*') ? host.length : 10_000 + host.length;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function buildPushContext(options: PushContextOptions): PushContext {
  return new PushContext(options);
}
