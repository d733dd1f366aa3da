// A sidecar's listeners (LDS): `virtualOutbound` (15001) hands captured
// connections to the per-port listeners by original destination; one
// `0.0.0.0_PORT` listener per outbound port (HTTP through RDS, TCP and TLS
// through tcp_proxy with VirtualService TCP/TLS routes); `virtualInbound`
// (15006) with a filter chain per workload port, mTLS or plaintext.

import type { ProxyNode, Service } from '../model/index.ts';
import { isHttpProtocol } from '../model/index.ts';
import type { PushContext, ResolvedVirtualService } from '../push-context.ts';
import { MESH_GATEWAY } from '../push-context.ts';
import { bool, seconds, socketAddress, tcpProxyFilter, u32 } from './envoy-values.ts';
import { hostMatches, labelsMatch } from './hosts.ts';
import { clusterPorts, inboundPorts } from './cluster-builder.ts';
import { httpConnectionManager, originalDst, tlsInspector } from './filters.ts';
import {
  BLACKHOLE_CLUSTER,
  INBOUND_PASSTHROUGH_CLUSTER,
  inboundClusterName,
  listenerName,
  outboundClusterName,
  PASSTHROUGH_CLUSTER,
  VIRTUAL_INBOUND_LISTENER,
  VIRTUAL_OUTBOUND_LISTENER,
} from './names.ts';
import { destinationCluster } from './route-builder.ts';
import type { RouteContext } from './route-builder.ts';
import { istioDownstreamTransportSocket } from './tls.ts';
import { virtualServiceFor } from './route-config-builder.ts';
import { inboundSecurity } from './security/inbound-security.ts';
import { telemetryFilters, withNetworkTelemetry } from './telemetry-filters.ts';

export const OUTBOUND_CAPTURE_PORT = 15001;
export const INBOUND_CAPTURE_PORT = 15006;

export interface BuiltListener {
  readonly name: string;
  readonly value: Record<string, unknown>;
}

type L4Route = NonNullable<ResolvedVirtualService['spec']['tcp']>[number];
type L4Match = NonNullable<L4Route['match']>[number];

function l4MatchApplies(ctx: RouteContext, m: L4Match, vsNamespace: string): boolean {
  if (m.port !== undefined && m.port !== ctx.port) return false;
  if (m.sourceLabels && !labelsMatch(m.sourceLabels, ctx.proxy.labels)) return false;
  if (m.sourceNamespace && m.sourceNamespace !== ctx.proxy.namespace) return false;
  if (m.gateways?.length) {
    const gws = m.gateways.map((g) => (g === MESH_GATEWAY || g.includes('/') ? g : `${vsNamespace}/${g}`));
    if (!gws.includes(ctx.gateway)) return false;
  }
  return true;
}

/** Weighted clusters of an L4 route (TCP or TLS), for tcp_proxy. */
export function l4Clusters(ctx: RouteContext, route: L4Route, namespace: string): { name: string; weight: number }[] {
  const dests = (route.route ?? []).filter((d) => d.destination && ((route.route?.length ?? 0) === 1 || (d.weight ?? 0) > 0));
  return dests.map((d) => ({ name: destinationCluster(ctx, d.destination!, namespace).cluster, weight: d.weight ?? 100 }));
}

/** The first TCP rule of a VirtualService that applies here (no match list applies always). */
export function firstTcpRoute(ctx: RouteContext, vs: ResolvedVirtualService): L4Route | undefined {
  return (vs.spec.tcp ?? []).find((r) => !r.match?.length || r.match.some((m) => l4MatchApplies(ctx, m, vs.namespace)));
}

/** TLS rules that apply here, as (SNI hosts, clusters) pairs. */
export function tlsRoutes(ctx: RouteContext, vs: ResolvedVirtualService): { sni: string[]; clusters: { name: string; weight: number }[] }[] {
  const out: { sni: string[]; clusters: { name: string; weight: number }[] }[] = [];
  for (const r of vs.spec.tls ?? []) {
    const matches = (r.match ?? []).filter((m) => l4MatchApplies(ctx, m, vs.namespace));
    const sni = [...new Set(matches.flatMap((m) => m.sniHosts ?? []))];
    const clusters = l4Clusters(ctx, r, vs.namespace);
    if (sni.length > 0 && clusters.length > 0) out.push({ sni, clusters });
  }
  return out;
}

function vipMatch(service: Service): Record<string, unknown> | undefined {
  const ranges = service.addresses.map((a) => ({ address_prefix: a, prefix_len: u32(a.includes(':') ? 128 : 32) }));
  return ranges.length > 0 ? { prefix_ranges: ranges } : undefined;
}

function outboundPortListener(push: PushContext, proxy: ProxyNode, port: number, services: readonly Service[], vss: readonly ResolvedVirtualService[]): BuiltListener {
  const name = listenerName('0.0.0.0', port);
  const ctx: RouteContext = { push, proxy, gateway: MESH_GATEWAY, port };
  const chains: Record<string, unknown>[] = [];
  const usedMatches = new Set<string>();
  const addChain = (match: Record<string, unknown> | undefined, chain: Record<string, unknown>): void => {
    const key = JSON.stringify(match ?? {});
    if (usedMatches.has(key)) return; // Envoy rejects two chains with one match; the first service keeps it
    usedMatches.add(key);
    chains.push(match ? { filter_chain_match: match, ...chain } : chain);
  };
  let tls = false;
  const telemetry = telemetryFilters(push, proxy, 'outbound');
  const tcpFilters = (statPrefix: string, cluster: Parameters<typeof tcpProxyFilter>[1]): Record<string, unknown>[] => withNetworkTelemetry(telemetry, [tcpProxyFilter(statPrefix, cluster)]);
  const hasHttp = services.some((s) => isHttpProtocol(s.ports.find((p) => p.port === port)!.protocol));
  for (const service of services) {
    const sp = service.ports.find((p) => p.port === port)!;
    if (isHttpProtocol(sp.protocol)) continue;
    const vs = virtualServiceFor(vss, service.hostname);
    const statPrefix = outboundClusterName(port, '', service.hostname);
    // TLS routes pick the upstream by SNI; everything else by destination address.
    for (const r of vs ? tlsRoutes(ctx, vs) : []) {
      const sni = r.sni.filter((h) => hostMatches(h, service.hostname) || vs!.hosts.some((vh) => hostMatches(vh, h)));
      if (sni.length === 0) continue;
      tls = true;
      addChain({ ...vipMatch(service), server_names: sni }, { filters: tcpFilters(statPrefix, r.clusters) });
    }
    const tcpRoute = vs ? firstTcpRoute(ctx, vs) : undefined;
    const clusters = tcpRoute ? l4Clusters(ctx, tcpRoute, vs!.namespace) : [{ name: statPrefix, weight: 100 }];
    const match = vipMatch(service);
    if (!match && hasHttp) continue; // the port's default chain belongs to HTTP
    addChain(match, { filters: tcpFilters(statPrefix, clusters.length > 0 ? clusters : BLACKHOLE_CLUSTER) });
  }
  if (hasHttp) {
    addChain(undefined, { filters: [httpConnectionManager({ statPrefix: `outbound_0.0.0.0_${port}`, rds: String(port), telemetry })] });
  }
  const value: Record<string, unknown> = {
    name,
    address: socketAddress('0.0.0.0', port),
    filter_chains: chains,
    // Reached through virtualOutbound's original-destination hand-off, never bound itself.
    bind_to_port: bool(false),
    traffic_direction: 'OUTBOUND',
  };
  if (tls) value.listener_filters = [tlsInspector()];
  return { name, value };
}

function virtualOutbound(push: PushContext, proxy: ProxyNode): BuiltListener {
  const cluster = push.outboundTrafficPolicy(proxy) === 'ALLOW_ANY' ? PASSTHROUGH_CLUSTER : BLACKHOLE_CLUSTER;
  // Counted too, as Istio does: egress shows up under PassthroughCluster (or BlackHoleCluster).
  const filters = withNetworkTelemetry(telemetryFilters(push, proxy, 'outbound'), [tcpProxyFilter(cluster, cluster)]);
  return {
    name: VIRTUAL_OUTBOUND_LISTENER,
    value: {
      name: VIRTUAL_OUTBOUND_LISTENER,
      address: socketAddress('0.0.0.0', OUTBOUND_CAPTURE_PORT),
      use_original_dst: bool(true),
      traffic_direction: 'OUTBOUND',
      filter_chains: [{ name: `${VIRTUAL_OUTBOUND_LISTENER}-catchall-tcp`, filters }],
    },
  };
}

/** Inbound: per workload port a mutual-TLS chain and a plaintext one (Istio's PERMISSIVE mode), then passthrough. */
function virtualInbound(push: PushContext, proxy: ProxyNode): BuiltListener {
  const chains: Record<string, unknown>[] = [];
  const security = inboundSecurity(push, proxy);
  const telemetry = telemetryFilters(push, proxy, 'inbound');
  for (const { port, servicePort } of inboundPorts(push, proxy)) {
    const cluster = inboundClusterName(port);
    const http = isHttpProtocol(servicePort.protocol);
    const filters = http
      ? [httpConnectionManager({
        statPrefix: `inbound_0.0.0.0_${port}`,
        inbound: true,
        securityFilters: security.httpFilters,
        telemetry,
        routeConfig: {
          name: cluster,
          virtual_hosts: [{
            name: `inbound|http|${port}`,
            domains: ['*'],
            routes: [{ name: 'default', match: { prefix: '/' }, route: { cluster, timeout: seconds(0), max_stream_duration: { max_stream_duration: seconds(0), grpc_timeout_header_max: seconds(0) } }, decorator: { operation: `${cluster}/*` } }],
          }],
          validate_clusters: bool(false),
        },
      })]
      : withNetworkTelemetry(telemetry, [...security.tcpFilters, tcpProxyFilter(cluster, cluster)]);
    // PeerAuthentication: STRICT serves only mTLS, DISABLE only plaintext (whatever the bytes), PERMISSIVE both.
    const mode = security.mtlsMode(port);
    if (mode !== 'DISABLE') {
      chains.push({
        name: `${cluster}-mtls`,
        filter_chain_match: { destination_port: u32(port), transport_protocol: 'tls' },
        transport_socket: istioDownstreamTransportSocket(http ? ['h2', 'http/1.1'] : []),
        filters,
      });
    }
    if (mode === 'PERMISSIVE') chains.push({ name: cluster, filter_chain_match: { destination_port: u32(port), transport_protocol: 'raw_buffer' }, filters });
    if (mode === 'DISABLE') chains.push({ name: cluster, filter_chain_match: { destination_port: u32(port) }, filters });
  }
  chains.push({ name: `${VIRTUAL_INBOUND_LISTENER}-catchall-tcp`, filters: withNetworkTelemetry(telemetry, [tcpProxyFilter(INBOUND_PASSTHROUGH_CLUSTER, INBOUND_PASSTHROUGH_CLUSTER)]) });
  return {
    name: VIRTUAL_INBOUND_LISTENER,
    value: {
      name: VIRTUAL_INBOUND_LISTENER,
      address: socketAddress('0.0.0.0', INBOUND_CAPTURE_PORT),
      listener_filters: [originalDst(), tlsInspector()],
      traffic_direction: 'INBOUND',
      filter_chains: chains,
    },
  };
}

/** Outbound ports of the visible services, each with the services on it. */
export function outboundPorts(services: readonly Service[]): Map<number, Service[]> {
  const byPort = new Map<number, Service[]>();
  for (const s of services) {
    for (const p of clusterPorts(s)) {
      const list = byPort.get(p.port) ?? [];
      list.push(s);
      byPort.set(p.port, list);
    }
  }
  return new Map([...byPort.entries()].sort(([a], [b]) => a - b));
}

export function buildSidecarListeners(push: PushContext, proxy: ProxyNode): BuiltListener[] {
  return [...buildSidecarOutboundListeners(push, proxy), buildSidecarInboundListener(push, proxy)];
}

/** virtualOutbound and the outbound port listeners: they depend on the proxy's namespace, Sidecar and (for sourceLabels matches) labels only. */
export function buildSidecarOutboundListeners(push: PushContext, proxy: ProxyNode): BuiltListener[] {
  const services = push.servicesFor(proxy);
  const vss = push.virtualServicesFor(proxy, MESH_GATEWAY);
  const out = [virtualOutbound(push, proxy)];
  for (const [port, list] of outboundPorts(services)) out.push(outboundPortListener(push, proxy, port, list, vss));
  return out;
}

/** virtualInbound: depends on the proxy only through inboundPorts(push, proxy) and inboundSecurityKey(push, proxy). */
export function buildSidecarInboundListener(push: PushContext, proxy: ProxyNode): BuiltListener {
  return virtualInbound(push, proxy);
}

/** The HTTP ports a sidecar has route configs for. */
export function sidecarHttpPorts(push: PushContext, proxy: ProxyNode): number[] {
  const ports = new Set<number>();
  for (const s of push.servicesFor(proxy)) for (const p of s.ports) if (isHttpProtocol(p.protocol)) ports.add(p.port);
  return [...ports].sort((a, b) => a - b);
}
