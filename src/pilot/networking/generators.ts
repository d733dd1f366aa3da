// The XdsGenerator per type URL (LDS, RDS, CDS, EDS). Each serves all three
// kinds of client: sidecars, gateways (ProxyNode.type `router`) and
// proxyless gRPC (generator `grpc`), choosing the builders for the client.

import { TypeUrl } from '../../xds/index.ts';
import type { GenerateRequest, ProxyNode, XdsGenerator, XdsResource } from '../model/index.ts';
import type { PushContext } from '../push-context.ts';
import { buildGrpcCluster, buildInboundClusters, buildOutboundClusters, buildSpecialClusters, clusterPorts, subsetsOf } from './cluster-builder.ts';
import { buildGatewayListeners, gatewayRouteNames, gatewayServers } from './gateway-listeners.ts';
import { buildGrpcListeners, grpcTargets } from './grpc-listeners.ts';
import { buildLoadAssignment, isProxyDependent } from './load-assignment.ts';
import { parseClusterName } from './names.ts';
import { buildGatewayRouteConfig, buildGrpcRouteConfig, buildSidecarRouteConfig } from './route-config-builder.ts';
import { buildSidecarListeners, sidecarHttpPorts } from './sidecar-listeners.ts';
import { effectivePolicy, subsetLabels } from './traffic-policy.ts';

export function isGrpcClient(proxy: ProxyNode): boolean {
  return proxy.generator === 'grpc';
}

function wanted<T extends { name: string }>(items: readonly T[], names: readonly string[] | undefined): T[] {
  if (!names) return [...items];
  const set = new Set(names);
  return items.filter((i) => set.has(i.name));
}

export class ListenerGenerator implements XdsGenerator<PushContext> {
  readonly typeUrl = TypeUrl.Listener;

  generate(proxy: ProxyNode, push: PushContext, request: GenerateRequest): XdsResource[] {
    return this.#build(proxy, push, request);
  }

  #build(proxy: ProxyNode, push: PushContext, request: GenerateRequest): XdsResource[] {
    if (isGrpcClient(proxy)) return buildGrpcListeners(push, proxy, request.names);
    const all = proxy.type === 'router' ? buildGatewayListeners(push, proxy) : buildSidecarListeners(push, proxy);
    return wanted(all, request.names);
  }
}

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
    const ports = new Set(sidecarHttpPorts(push, proxy).map(String));
    const services = push.servicesFor(proxy);
    return (request.names ?? [...ports]).filter((n) => ports.has(n)).map((name) => ({ name, value: buildSidecarRouteConfig(push, proxy, Number(name), services) }));
  }
}

export class ClusterGenerator implements XdsGenerator<PushContext> {
  readonly typeUrl = TypeUrl.Cluster;

  generate(proxy: ProxyNode, push: PushContext, request: GenerateRequest): XdsResource[] {
    return this.#build(proxy, push, request);
  }

  #build(proxy: ProxyNode, push: PushContext, request: GenerateRequest): XdsResource[] {
    if (isGrpcClient(proxy)) return wanted(grpcClusters(push, proxy), request.names);
    const out = [...buildSpecialClusters(push), ...buildOutboundClusters(push, proxy)];
    if (proxy.type === 'sidecar') out.push(...buildInboundClusters(push, proxy));
    return wanted(out, request.names);
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
      // An unknown subset has no endpoints, but the client still gets an (empty) answer for it.
      const labels = subsetLabels(dr?.spec, parsed.subset);
      const value = labels
        ? buildLoadAssignment({ clusterName: name, endpoints: push.endpoints(service.hostname), port: parsed.port, labels, policy, proxy, mesh: push.mesh })
        : { cluster_name: name, endpoints: [] };
      const ruleKey = dr ? `${dr.namespace}/${dr.name}` : '-';
      const cacheKey = isProxyDependent(policy, push.mesh) ? undefined : `eds/${name}/${ruleKey}@${push.version}`;
      out.push({ name, value, cacheKey });
    }
    return out;
  }

  #allNames(proxy: ProxyNode, push: PushContext): string[] {
    if (isGrpcClient(proxy)) return grpcClusters(push, proxy).map((c) => c.name);
    return buildOutboundClusters(push, proxy).filter((c) => c.value.type === 'EDS').map((c) => c.name);
  }
}

/** The generators by type URL, for the ADS server. */
export function createGenerators(): Map<string, XdsGenerator<PushContext>> {
  const list: XdsGenerator<PushContext>[] = [new ListenerGenerator(), new RouteGenerator(), new ClusterGenerator(), new EndpointGenerator()];
  return new Map(list.map((g) => [g.typeUrl, g]));
}
