// A gateway's listeners (LDS): one `0.0.0.0_PORT` per Gateway server port.
// HTTP servers share one chain with RDS `http.PORT`; HTTPS servers terminate
// TLS (SDS secret named by credentialName, or the mesh certificate for
// ISTIO_MUTUAL) in a chain per server chosen by SNI; TLS PASSTHROUGH servers
// forward by SNI from VirtualService TLS routes; TCP servers use TCP routes.

import type { ProxyNode } from '../model/index.ts';
import type { PushContext } from '../push-context.ts';
import { socketAddress, tcpProxyFilter } from './envoy-values.ts';
import { hostsIntersect } from './hosts.ts';
import { httpConnectionManager, tlsInspector } from './filters.ts';
import { BLACKHOLE_CLUSTER, listenerName } from './names.ts';
import type { RouteContext } from './route-builder.ts';
import type { GatewayServerRef } from './route-config-builder.ts';
import { serverRouteName } from './route-config-builder.ts';
import { firstTcpRoute, l4Clusters, tlsRoutes } from './sidecar-listeners.ts';
import type { BuiltListener } from './sidecar-listeners.ts';
import { gatewayDownstreamTransportSocket } from './tls.ts';
import { telemetryFilters, withNetworkTelemetry } from './telemetry-filters.ts';

const HTTP_PROTOCOLS = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB', 'HTTPS']);

/** Every server of every Gateway that selects this proxy. */
export function gatewayServers(push: PushContext, proxy: ProxyNode): GatewayServerRef[] {
  return push.gatewaysFor(proxy).flatMap((gateway) => (gateway.spec.servers ?? []).map((server) => ({ gateway, server })));
}

function sniNames(hosts: readonly string[]): string[] | undefined {
  const names = hosts.map((h) => (h.includes('/') ? h.slice(h.indexOf('/') + 1) : h));
  return names.includes('*') ? undefined : [...new Set(names)];
}

export function buildGatewayListeners(push: PushContext, proxy: ProxyNode): BuiltListener[] {
  const byPort = new Map<number, GatewayServerRef[]>();
  for (const ref of gatewayServers(push, proxy)) {
    const list = byPort.get(ref.server.port.number) ?? [];
    list.push(ref);
    byPort.set(ref.server.port.number, list);
  }
  const out: BuiltListener[] = [];
  const telemetry = telemetryFilters(push, proxy, 'gateway');
  const tcpFilters = (statPrefix: string, cluster: Parameters<typeof tcpProxyFilter>[1]): Record<string, unknown>[] => withNetworkTelemetry(telemetry, [tcpProxyFilter(statPrefix, cluster)]);
  for (const [port, refs] of [...byPort.entries()].sort(([a], [b]) => a - b)) {
    const chains: Record<string, unknown>[] = [];
    const used = new Set<string>();
    let tls = false;
    const addChain = (match: Record<string, unknown> | undefined, chain: Record<string, unknown>): void => {
      const key = JSON.stringify(match ?? {});
      if (used.has(key)) return; // Envoy rejects duplicate matches; the first server keeps it, as Istio does
      used.add(key);
      chains.push(match ? { filter_chain_match: match, ...chain } : chain);
    };
    for (const ref of refs) {
      const { server, gateway } = ref;
      const protocol = server.port.protocol.toUpperCase();
      const mode = server.tls?.mode ?? 'PASSTHROUGH';
      const terminated = server.tls !== undefined && !server.tls.httpsRedirect && mode !== 'PASSTHROUGH' && mode !== 'AUTO_PASSTHROUGH';
      const statPrefix = `outbound_0.0.0.0_${port}`;
      const gwName = `${gateway.namespace}/${gateway.name}`;
      const ctx: RouteContext = { push, proxy, gateway: gwName, port };
      if (HTTP_PROTOCOLS.has(protocol) && (terminated || !server.tls || server.tls.httpsRedirect)) {
        const hcm = httpConnectionManager({ statPrefix, rds: serverRouteName(ref), useRemoteAddress: true, telemetry });
        if (terminated) {
          tls = true;
          const names = sniNames(server.hosts);
          addChain(names ? { server_names: names } : {}, { transport_socket: gatewayDownstreamTransportSocket(server.tls!, true), filters: [hcm] });
        } else {
          addChain(undefined, { filters: [hcm] });
        }
        continue;
      }
      const vss = push.virtualServicesFor(proxy, gwName).filter((vs) => vs.hosts.some((h) => server.hosts.some((sh) => hostsIntersect(h, sh.includes('/') ? sh.slice(sh.indexOf('/') + 1) : sh))));
      if (server.tls && !terminated) {
        // PASSTHROUGH: the client's TLS goes through untouched; SNI picks the upstream.
        tls = true;
        for (const vs of vss) for (const r of tlsRoutes(ctx, vs)) addChain({ server_names: r.sni }, { filters: tcpFilters(statPrefix, r.clusters) });
        continue;
      }
      const tcp = vss.map((vs) => ({ vs, r: firstTcpRoute(ctx, vs) })).find((x) => x.r);
      const clusters = tcp ? l4Clusters(ctx, tcp.r!, tcp.vs.namespace) : [];
      const chain: Record<string, unknown> = { filters: tcpFilters(statPrefix, clusters.length > 0 ? clusters : BLACKHOLE_CLUSTER) };
      if (terminated) {
        tls = true;
        chain.transport_socket = gatewayDownstreamTransportSocket(server.tls!, false);
        const names = sniNames(server.hosts);
        addChain(names ? { server_names: names } : {}, chain);
      } else {
        addChain(undefined, chain);
      }
    }
    const bind = refs[0]!.server.bind || '0.0.0.0';
    const name = listenerName(bind, port);
    const value: Record<string, unknown> = { name, address: socketAddress(bind, port), filter_chains: chains, traffic_direction: 'OUTBOUND' };
    if (tls) value.listener_filters = [tlsInspector()];
    out.push({ name, value });
  }
  return out;
}

/** The route config names a gateway's HTTP servers use. */
export function gatewayRouteNames(push: PushContext, proxy: ProxyNode): string[] {
  const names = new Set<string>();
  for (const ref of gatewayServers(push, proxy)) {
    const protocol = ref.server.port.protocol.toUpperCase();
    const mode = ref.server.tls?.mode;
    if (HTTP_PROTOCOLS.has(protocol) && mode !== 'PASSTHROUGH' && mode !== 'AUTO_PASSTHROUGH') names.add(serverRouteName(ref));
    else if (HTTP_PROTOCOLS.has(protocol) && ref.server.tls?.httpsRedirect) names.add(serverRouteName(ref));
  }
  return [...names].sort();
}
