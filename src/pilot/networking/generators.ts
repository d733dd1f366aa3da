// The XdsGenerator per type URL (LDS, RDS, CDS, EDS). Each serves all three
// kinds of client: sidecars, gateways (ProxyNode.type `router`) and
// proxyless gRPC (generator `grpc`), choosing the builders for the client.

import { TypeUrl } from '../../xds/index.ts';
import type { GenerateRequest, ProxyNode, Service, XdsGenerator, XdsResource } from '../model/index.ts';
import type { PushContext, ResolvedVirtualService } from '../push-context.ts';
import { DESTINATION_RULES_DEP, MESH_GATEWAY, SERVICES_DEP, VIRTUAL_SERVICE_SELECTION_DEP, virtualServiceDep } from '../push-context.ts';
import { buildGrpcCluster, buildInboundClusters, buildOutboundClusters, buildSpecialClusters, clusterPorts, inboundPorts, subsetsOf } from './cluster-builder.ts';
import { buildGatewayListeners, gatewayRouteNames, gatewayServers } from './gateway-listeners.ts';
import { buildGrpcListeners, grpcTargets } from './grpc-listeners.ts';
import { buildLoadAssignment, isProxyDependent } from './load-assignment.ts';
import { parseClusterName } from './names.ts';
import { buildGatewayRouteConfig, buildGrpcRouteConfig, buildSidecarRouteConfig, sidecarRouteVirtualServices } from './route-config-builder.ts';
import type { ConfigKey } from './xds-cache.ts';
import { inboundSecurityKey } from './security/policies.ts';
import { buildSidecarInboundListener, buildSidecarListeners, buildSidecarOutboundListeners, sidecarHttpPorts } from './sidecar-listeners.ts';
import { buildNoCaptureListeners, declaresNoCapture, isNoCapture, noCaptureInboundClusters, withoutOriginalDst } from './no-capture-listeners.ts';
import { effectivePolicy, subsetLabels } from './traffic-policy.ts';
import { mixerClusters, withMixerListeners } from './policy/mixer-wiring.ts';
import { telemetryKey } from './telemetry-filters.ts';

export function isGrpcClient(proxy: ProxyNode): boolean {
  return proxy.generator === 'grpc';
}

function wanted<T extends { name: string }>(items: readonly T[], names: readonly string[] | undefined): T[] {
  if (!names) return [...items];
  const set = new Set(names);
  return items.filter((i) => set.has(i.name));
}

// ---- per-push memos ------------------------------------------------------------
//
// A push context is immutable, so what a generator builds from it for one
// "kind" of proxy can be shared by every proxy of that kind until the next
// push. Without this, a full push rebuilt ~1000 clusters, ~1000 load
// assignments and every route config once per proxy (about 30 ms a proxy at
// 1000 services: a minute for 2000 proxies; see bench/pilot-scale-bench.ts).
// Shared values are never mutated; the ADS server also recognizes them by
// identity and skips re-serializing them (ResourceCache).

const memos = new WeakMap<PushContext, Map<string, unknown>>();

function memo<T>(push: PushContext, key: string, build: () => T): T {
  let m = memos.get(push);
  if (!m) {
    m = new Map();
    memos.set(push, m);
  }
  if (m.has(key)) return m.get(key) as T;
  const value = build();
  m.set(key, value);
  return value;
}

/**
 * What a sidecar's outbound config (clusters, routes) depends on besides the
 * push: its namespace (visibility, DestinationRule lookup, sourceNamespace,
 * short host names), its Sidecar resource (egress hosts, outbound policy) and,
 * only if a visible VirtualService matches on sourceLabels, its labels.
 */
function sidecarScopeKey(push: PushContext, proxy: ProxyNode): string {
  const sidecar = push.sidecarFor(proxy);
  const base = `${proxy.namespace}|${sidecar ? `${sidecar.namespace}/${sidecar.name}` : '-'}`;
  const bySourceLabels = memo(push, `sourceLabels|${base}`, () => push.virtualServicesFor(proxy, MESH_GATEWAY).some(usesSourceLabels));
  if (!bySourceLabels) return base;
  const labels = Object.entries(proxy.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `${base}|${JSON.stringify(labels)}`;
}

function usesSourceLabels(vs: ResolvedVirtualService): boolean {
  const spec = vs.spec as { http?: { match?: { sourceLabels?: unknown }[] }[]; tcp?: { match?: { sourceLabels?: unknown }[] }[]; tls?: { match?: { sourceLabels?: unknown }[] }[] };
  for (const rules of [spec.http, spec.tcp, spec.tls]) for (const rule of rules ?? []) for (const m of rule.match ?? []) if (m.sourceLabels) return true;
  return false;
}

/** The outbound clusters of a sidecar, shared by the sidecars of one scope when none of them depends on the proxy itself (locality LB). */
function sidecarOutboundClusters(push: PushContext, proxy: ProxyNode): readonly XdsResource[] {
  const key = `cds|${sidecarScopeKey(push, proxy)}`;
  const shared = memo(push, key, () => {
    const built = buildOutboundClusters(push, proxy);
    return built.every((c) => c.cacheKey !== undefined) ? built : undefined;
  });
  return shared ?? buildOutboundClusters(push, proxy);
}

export class ListenerGenerator implements XdsGenerator<PushContext> {
  readonly typeUrl = TypeUrl.Listener;

  generate(proxy: ProxyNode, push: PushContext, request: GenerateRequest): XdsResource[] {
    const built = this.#build(proxy, push, request);
    // Mixer's filters, when the push has Mixer config (policy/mixer-wiring.ts); proxyless gRPC has none.
    return isGrpcClient(proxy) ? built : withMixerListeners(push, proxy, built);
  }

  #build(proxy: ProxyNode, push: PushContext, request: GenerateRequest): XdsResource[] {
    if (isGrpcClient(proxy)) return buildGrpcListeners(push, proxy, request.names);
    if (proxy.type === 'router') return wanted(buildGatewayListeners(push, proxy), request.names);
    if (proxy.type !== 'sidecar') return wanted(buildSidecarListeners(push, proxy), request.names);
    // Without capture (several sidecars on one host): per-proxy listeners on their own addresses.
    if (isNoCapture(proxy)) return wanted(buildNoCaptureListeners(push, proxy), request.names);
    // Shared per push: the outbound listeners per sidecar scope, virtualInbound per set of inbound ports.
    // The telemetry filters can differ by workload (a Telemetry with a selector): part of both keys.
    const telemetry = telemetryKey(push, proxy);
    const outbound = memo(push, `lds-out|${sidecarScopeKey(push, proxy)}|${telemetry}`, () => buildSidecarOutboundListeners(push, proxy));
    const inbound = memo(push, `lds-in|${JSON.stringify(inboundPorts(push, proxy))}|${inboundSecurityKey(push, proxy)}|${telemetry}`, () => buildSidecarInboundListener(push, proxy));
    return wanted([...outbound, inbound], request.names);
  }
}

/**
 * What a sidecar route config depends on besides the VirtualServices it
 * uses: the services (virtual hosts, destination ports), DestinationRules
 * (hash policies of default routes) and which VirtualService each host
 * selects. The scope key covers the proxy's namespace, Sidecar and labels.
 */
const ROUTE_CONFIG_DEPS: readonly ConfigKey[] = [SERVICES_DEP, DESTINATION_RULES_DEP, VIRTUAL_SERVICE_SELECTION_DEP];

export class RouteGenerator implements XdsGenerator<PushContext> {
  readonly typeUrl = TypeUrl.RouteConfiguration;

  generate(proxy: ProxyNode, push: PushContext, request: GenerateRequest): XdsResource[] {
    return this.#build(proxy, push, request);
  }

  #build(proxy: ProxyNode, push: PushContext, request: GenerateRequest): XdsResource[] {
    if (isGrpcClient(proxy)) {
      return grpcTargets(push, proxy, request.names).map(({ name, service, port }) => ({ name, value: { ...buildGrpcRouteConfig(push, proxy, service, port), name } }));
    }
    if (proxy.type === 'router') {
      const refs = gatewayServers(push, proxy);
      const known = new Set(gatewayRouteNames(push, proxy));
      return (request.names ?? [...known]).filter((n) => known.has(n)).map((name) => ({ name, value: buildGatewayRouteConfig(push, proxy, name, refs) }));
    }
    const scope = proxy.type === 'sidecar' ? sidecarScopeKey(push, proxy) : undefined;
    const ports = scope === undefined ? new Set(sidecarHttpPorts(push, proxy).map(String)) : memo(push, `rds-ports|${scope}`, () => new Set(sidecarHttpPorts(push, proxy).map(String)));
    let services: Service[] | undefined;
    const build = (name: string): XdsResource => ({ name, value: buildSidecarRouteConfig(push, proxy, Number(name), (services ??= push.servicesFor(proxy))) });
    // Sidecar route configs are kept across pushes (xds-cache.ts): a
    // VirtualService change rebuilds only those that take rules from it.
    const deps = (name: string): ConfigKey[] => [...ROUTE_CONFIG_DEPS, ...sidecarRouteVirtualServices(push, proxy, Number(name), (services ??= push.servicesFor(proxy))).map(virtualServiceDep)];
    return (request.names ?? [...ports]).filter((n) => ports.has(n)).map((name) => (scope === undefined ? build(name) : push.xdsCache.getOrBuild(`rds|${name}|${scope}`, () => deps(name), () => build(name))));
  }
}

export class ClusterGenerator implements XdsGenerator<PushContext> {
  readonly typeUrl = TypeUrl.Cluster;

  generate(proxy: ProxyNode, push: PushContext, request: GenerateRequest): XdsResource[] {
    return this.#build(proxy, push, request);
  }

  #build(proxy: ProxyNode, push: PushContext, request: GenerateRequest): XdsResource[] {
    if (isGrpcClient(proxy)) return wanted(grpcClusters(push, proxy), request.names);
    const out = [...memo(push, 'cds|special', () => [...buildSpecialClusters(push), ...mixerClusters(push)]), ...(proxy.type === 'sidecar' ? sidecarOutboundClusters(push, proxy) : buildOutboundClusters(push, proxy))];
    if (proxy.type === 'sidecar') out.push(...(isNoCapture(proxy) ? noCaptureInboundClusters(buildInboundClusters(push, proxy), proxy) : buildInboundClusters(push, proxy)));
    return wanted(declaresNoCapture(proxy) ? withoutOriginalDst(out) : out, request.names);
  }
}

function grpcClusters(push: PushContext, proxy: ProxyNode): XdsResource[] {
  const out: XdsResource[] = [];
  for (const service of push.servicesFor(proxy)) {
    const dr = push.destinationRule(proxy.namespace, service.hostname);
    for (const port of clusterPorts(service)) for (const subset of subsetsOf(dr)) out.push(buildGrpcCluster(push, proxy, service, port, subset, dr));
  }
  return out;
}

/**
 * EDS. Names are cluster names; without names, every EDS cluster the proxy
 * has. On the endpoint fast path (`full: false`) only clusters of the
 * changed hosts are built.
 */
export class EndpointGenerator implements XdsGenerator<PushContext> {
  readonly typeUrl = TypeUrl.ClusterLoadAssignment;

  generate(proxy: ProxyNode, push: PushContext, request: GenerateRequest): XdsResource[] {
    return this.#build(proxy, push, request);
  }

  #build(proxy: ProxyNode, push: PushContext, request: GenerateRequest): XdsResource[] {
    const names = request.names ?? this.#allNames(proxy, push);
    const changed = request.full ? undefined : request.changedHosts;
    const out: XdsResource[] = [];
    for (const name of names) {
      const parsed = parseClusterName(name);
      if (!parsed || parsed.direction !== 'outbound') continue;
      if (changed && !changed.has(parsed.hostname)) continue;
      const service = push.service(parsed.hostname);
      if (!service) continue;
      const dr = push.destinationRule(proxy.namespace, service.hostname);
      const policy = effectivePolicy(dr?.spec, parsed.port, parsed.subset);
      const ruleKey = dr ? `${dr.namespace}/${dr.name}` : '-';
      const cacheKey = isProxyDependent(policy, push.mesh) ? undefined : `eds/${name}/${ruleKey}@${push.version}`;
      const build = (): XdsResource => {
        // An unknown subset has no endpoints, but the client still gets an (empty) answer for it.
        const labels = subsetLabels(dr?.spec, parsed.subset);
        const value = labels
          ? buildLoadAssignment({ clusterName: name, endpoints: push.endpoints(service.hostname), port: parsed.port, labels, policy, proxy, mesh: push.mesh })
          : { cluster_name: name, endpoints: [] };
        return { name, value, cacheKey };
      };
      // Same cacheKey, same value: built once per push for every proxy.
      out.push(cacheKey === undefined ? build() : memo(push, cacheKey, build));
    }
    return out;
  }

  #allNames(proxy: ProxyNode, push: PushContext): string[] {
    if (isGrpcClient(proxy)) return grpcClusters(push, proxy).map((c) => c.name);
    return (proxy.type === 'sidecar' ? sidecarOutboundClusters(push, proxy) : buildOutboundClusters(push, proxy)).filter((c) => c.value.type === 'EDS').map((c) => c.name);
  }
}

/** The generators by type URL, for the ADS server. */
export function createGenerators(): Map<string, XdsGenerator<PushContext>> {
  const list: XdsGenerator<PushContext>[] = [new ListenerGenerator(), new RouteGenerator(), new ClusterGenerator(), new EndpointGenerator()];
  return new Map(list.map((g) => [g.typeUrl, g]));
}
