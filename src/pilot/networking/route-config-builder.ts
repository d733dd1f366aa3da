// Route configurations (RDS): per port for sidecars (`9080`), per gateway
// server port for routers (`http.8080`), per dialled target for proxyless
// gRPC (`reviews.default.svc.cluster.local:9080`). Virtual hosts carry every
// name a client may use for the service; domains never repeat within one
// configuration (Envoy rejects that).

import type { ProxyNode, Service } from '../model/index.ts';
import { isHttpProtocol } from '../model/index.ts';
import type { PushContext, ResolvedGateway, ResolvedVirtualService } from '../push-context.ts';
import { MESH_GATEWAY } from '../push-context.ts';
import { bool } from './envoy-values.ts';
import { hostAliases, hostMatches, hostsIntersect } from './hosts.ts';
import { gatewayRouteName, grpcTargetName, PASSTHROUGH_CLUSTER } from './names.ts';
import { CORS_FILTER, defaultRoute, translateVirtualService } from './route-builder.ts';
import type { RouteContext } from './route-builder.ts';
import { effectivePolicy, hashPolicies } from './traffic-policy.ts';

/** The first (oldest) VirtualService for a service host: an exact host beats a wildcard. */
export function virtualServiceFor(vss: readonly ResolvedVirtualService[], hostname: string): ResolvedVirtualService | undefined {
  return vss.find((vs) => vs.hosts.includes(hostname)) ?? vss.find((vs) => vs.hosts.some((h) => hostMatches(h, hostname)));
}

function domainsFor(push: PushContext, proxy: ProxyNode, service: Service, port: number, withPort: boolean): string[] {
  const names = [...hostAliases(service.hostname, proxy.namespace, push.domainSuffix), ...service.addresses];
  return withPort ? names.flatMap((n) => [n, `${n}:${port}`]) : names;
}

function serviceRoutes(ctx: RouteContext, vss: readonly ResolvedVirtualService[], service: Service): Record<string, unknown>[] {
  const vs = virtualServiceFor(vss, service.hostname);
  const routes = vs ? translateVirtualService(ctx, vs) : [];
  if (routes.length > 0) return routes;
  const dr = ctx.push.destinationRule(ctx.proxy.namespace, service.hostname);
  return [defaultRoute(service.hostname, ctx.port, { hashPolicy: hashPolicies(effectivePolicy(dr?.spec, ctx.port, '').loadBalancer) })];
}

function dedupe(domains: string[], used: Set<string>): string[] {
  const out: string[] = [];
  for (const d of domains) {
    if (used.has(d)) continue;
    used.add(d);
    out.push(d);
  }
  return out;
}

/** A sidecar's route configuration for one outbound HTTP port. */
export function buildSidecarRouteConfig(push: PushContext, proxy: ProxyNode, port: number, services: readonly Service[] = push.servicesFor(proxy)): Record<string, unknown> {
  const ctx: RouteContext = { push, proxy, gateway: MESH_GATEWAY, port };
  const vss = push.virtualServicesFor(proxy, MESH_GATEWAY);
  const used = new Set<string>();
  const virtualHosts: Record<string, unknown>[] = [];
  for (const service of services) {
    const sp = service.ports.find((p) => p.port === port);
    if (!sp || !isHttpProtocol(sp.protocol)) continue;
    const domains = dedupe(domainsFor(push, proxy, service, port, true), used);
    if (domains.length === 0) continue;
    virtualHosts.push({ name: `${service.hostname}:${port}`, domains, routes: serviceRoutes(ctx, vss, service), include_request_attempt_count: true });
  }
  // Unknown hosts: on to their original destination (ALLOW_ANY) or refused (REGISTRY_ONLY), as Istio does.
  if (push.outboundTrafficPolicy(proxy) === 'ALLOW_ANY') {
    virtualHosts.push({ name: 'allow_any', domains: ['*'], routes: [{ name: 'allow_any', match: { prefix: '/' }, route: { cluster: PASSTHROUGH_CLUSTER, timeout: { seconds: 0 } } }], include_request_attempt_count: true });
  } else {
    virtualHosts.push({ name: 'block_all', domains: ['*'], routes: [{ name: 'block_all', match: { prefix: '/' }, direct_response: { status: 502 } }], include_request_attempt_count: true });
  }
  return { name: String(port), virtual_hosts: virtualHosts, validate_clusters: bool(false) };
}

/** The VirtualServices whose rules a sidecar's route configuration for `port` uses (at most one per HTTP service on the port). */
export function sidecarRouteVirtualServices(push: PushContext, proxy: ProxyNode, port: number, services: readonly Service[] = push.servicesFor(proxy)): ResolvedVirtualService[] {
  const vss = push.virtualServicesFor(proxy, MESH_GATEWAY);
  const used = new Set<ResolvedVirtualService>();
  for (const service of services) {
    const sp = service.ports.find((p) => p.port === port);
    if (!sp || !isHttpProtocol(sp.protocol)) continue;
    const vs = virtualServiceFor(vss, service.hostname);
    if (vs) used.add(vs);
  }
  return [...used];
}

/** Server hosts without their `namespace/` part; `*` when the server takes any. */
function serverHosts(hosts: readonly string[]): string[] {
  return hosts.map((h) => (h.includes('/') ? h.slice(h.indexOf('/') + 1) : h));
}

export interface GatewayServerRef {
  readonly gateway: ResolvedGateway;
  readonly server: NonNullable<ResolvedGateway['spec']['servers']>[number];
}

/** The route config name a gateway server's HCM uses. */
export function serverRouteName(ref: GatewayServerRef): string {
  const s = ref.server;
  const terminated = s.tls && s.tls.mode !== 'PASSTHROUGH' && s.tls.mode !== 'AUTO_PASSTHROUGH' && !s.tls.httpsRedirect;
  return terminated
    ? gatewayRouteName('https', s.port.number, { portName: s.port.name, gateway: ref.gateway.name, namespace: ref.gateway.namespace })
    : gatewayRouteName('http', s.port.number);
}

/** A gateway's route configuration: every server that uses this route name, merged. */
export function buildGatewayRouteConfig(push: PushContext, proxy: ProxyNode, name: string, refs: readonly GatewayServerRef[]): Record<string, unknown> {
  const servers = refs.filter((r) => serverRouteName(r) === name);
  const port = servers[0]?.server.port.number ?? 0;
  const byHost = new Map<string, { routes: Record<string, unknown>[]; requireTls: boolean }>();
  for (const { gateway, server } of servers) {
    const gwName = `${gateway.namespace}/${gateway.name}`;
    const ctx: RouteContext = { push, proxy, gateway: gwName, port };
    for (const vs of push.virtualServicesFor(proxy, gwName)) {
      for (const vsHost of vs.hosts) {
        for (const sh of serverHosts(server.hosts)) {
          if (!hostsIntersect(vsHost, sh)) continue;
          // The narrower of the two names is what the virtual host serves.
          const host = hostMatches(sh, vsHost) ? vsHost : sh;
          let entry = byHost.get(host);
          if (!entry) {
            entry = { routes: [], requireTls: Boolean(server.tls?.httpsRedirect) };
            byHost.set(host, entry);
          }
          // Gateways merge the rules of every VirtualService for a host, oldest first.
          if (!entry.routes.some((r) => (r as { vs?: string }).vs === `${vs.namespace}/${vs.name}`)) {
            for (const r of translateVirtualService(ctx, vs)) entry.routes.push(Object.assign(r, { vs: `${vs.namespace}/${vs.name}` }));
          }
        }
      }
    }
  }
  const virtualHosts: Record<string, unknown>[] = [];
  const used = new Set<string>();
  for (const [host, entry] of [...byHost.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const domains = dedupe(host === '*' ? ['*'] : [host, `${host}:${port}`], used);
    if (domains.length === 0 || entry.routes.length === 0) continue;
    const vh: Record<string, unknown> = {
      name: `${host}:${port}`,
      domains,
      routes: entry.routes.map(({ vs: _vs, ...r }) => r),
      include_request_attempt_count: true,
    };
    if (entry.requireTls) vh.require_tls = 'ALL';
    virtualHosts.push(vh);
  }
  if (virtualHosts.length === 0) {
    virtualHosts.push({ name: `blackhole:${port}`, domains: ['*'], routes: [{ name: 'default', match: { prefix: '/' }, direct_response: { status: 404 } }], include_request_attempt_count: true });
  }
  return { name, virtual_hosts: virtualHosts, validate_clusters: bool(false) };
}

/** Proxyless gRPC: one route config per dialled `host:port`, with the router's features gRPC implements. */
export function buildGrpcRouteConfig(push: PushContext, proxy: ProxyNode, service: Service, port: number): Record<string, unknown> {
  const ctx: RouteContext = { push, proxy, gateway: MESH_GATEWAY, port };
  const routes = serviceRoutes(ctx, push.virtualServicesFor(proxy, MESH_GATEWAY), service).map((r) => {
    const { typed_per_filter_config: tpfc, decorator: _d, ...rest } = r as Record<string, unknown> & { typed_per_filter_config?: Record<string, unknown> };
    // gRPC has no CORS filter and rejects config for filters it does not know.
    if (tpfc) {
      const { [CORS_FILTER]: _cors, ...others } = tpfc;
      if (Object.keys(others).length > 0) return { ...rest, typed_per_filter_config: others };
    }
    return rest;
  });
  const name = grpcTargetName(service.hostname, port);
  return { name, virtual_hosts: [{ name, domains: domainsFor(push, proxy, service, port, true), routes }] };
}
