// Listeners of a sidecar that runs without traffic capture (Istio's
// interception mode NONE), as the mesh runtime starts them several to a host:
// nothing is redirected, so every listener binds its own address.
//
// Node metadata contract (sent by the sidecar, see docs/runtime.md):
//   INTERCEPTION_MODE: "NONE"
//   OUTBOUND_PORTS: { "<service host>:<service port>": <local port>, ... }
//     one listener `127.0.0.1_<local port>` per entry, bound to 127.0.0.1,
//     whose only destination is that service port: HTTP routes come from the
//     service's VirtualServices with the virtual host's domains set to `*`
//     (the app calls 127.0.0.1:<local port>, so its Host header names no
//     service); TCP goes through tcp_proxy to the service's cluster or TCP route.
//   INBOUND_PORTS: { "<workload port>": <app port>, ... }
//     the inbound listener of each workload port binds the proxy's first
//     instance IP on that port (`<ip>_<port>`, the filter chains of
//     virtualInbound for that port: mTLS and/or plaintext, security filters),
//     and `inbound|<port>||` delivers to the app on 127.0.0.1:<app port>.
// Without INTERCEPTION_MODE NONE nothing here applies.

import type { ProxyNode, Service, ServicePort } from '../model/index.ts';
import { isHttpProtocol } from '../model/index.ts';
import type { PushContext } from '../push-context.ts';
import { MESH_GATEWAY } from '../push-context.ts';
import type { BuiltCluster } from './cluster-builder.ts';
import { socketAddress, tcpProxyFilter } from './envoy-values.ts';
import { httpConnectionManager, tlsInspector } from './filters.ts';
import { telemetryFilters, withNetworkTelemetry } from './telemetry-filters.ts';
import { BLACKHOLE_CLUSTER, listenerName, outboundClusterName } from './names.ts';
import type { RouteContext } from './route-builder.ts';
import { buildSidecarRouteConfig, virtualServiceFor } from './route-config-builder.ts';
import type { BuiltListener } from './sidecar-listeners.ts';
import { buildSidecarInboundListener, firstTcpRoute, l4Clusters } from './sidecar-listeners.ts';

export const INTERCEPTION_MODE_KEY = 'INTERCEPTION_MODE';
export const OUTBOUND_PORTS_KEY = 'OUTBOUND_PORTS';
export const INBOUND_PORTS_KEY = 'INBOUND_PORTS';

/** True for a sidecar that declared interception mode NONE. */
export function isNoCapture(proxy: ProxyNode): boolean {
  return proxy.type === 'sidecar' && proxy.metadata[INTERCEPTION_MODE_KEY] === 'NONE';
}

function portMap(value: unknown): Map<string, number> {
  const out = new Map<string, number>();
  if (!value || typeof value !== 'object' || Array.isArray(value)) return out;
  for (const [k, v] of Object.entries(value)) {
    const n = typeof v === 'number' ? v : Number(v);
    if (Number.isInteger(n) && n > 0 && n < 65536) out.set(k, n);
  }
  return out;
}

/** OUTBOUND_PORTS as (host, service port, local port) entries; malformed entries are skipped. */
export function outboundPortEntries(proxy: ProxyNode): { host: string; port: number; localPort: number }[] {
  const out: { host: string; port: number; localPort: number }[] = [];
  for (const [key, localPort] of portMap(proxy.metadata[OUTBOUND_PORTS_KEY])) {
    const colon = key.lastIndexOf(':');
    const port = Number(key.slice(colon + 1));
    if (colon <= 0 || !Number.isInteger(port)) continue;
    out.push({ host: key.slice(0, colon), port, localPort });
  }
  return out.sort((a, b) => a.localPort - b.localPort);
}

/** INBOUND_PORTS: workload port -> app port. */
export function inboundAppPorts(proxy: ProxyNode): Map<number, number> {
  const out = new Map<number, number>();
  for (const [k, v] of portMap(proxy.metadata[INBOUND_PORTS_KEY])) if (Number.isInteger(Number(k))) out.set(Number(k), v);
  return out;
}

function outboundListener(push: PushContext, proxy: ProxyNode, service: Service, sp: ServicePort, localPort: number): BuiltListener {
  const name = listenerName('127.0.0.1', localPort);
  const statPrefix = outboundClusterName(sp.port, '', service.hostname);
  let filters: Record<string, unknown>[];
  const telemetry = telemetryFilters(push, proxy, 'outbound');
  if (isHttpProtocol(sp.protocol)) {
    const rc = buildSidecarRouteConfig(push, proxy, sp.port, [service]) as { virtual_hosts: Record<string, unknown>[] };
    // Only the service's own virtual host, for any Host header.
    const vhosts = rc.virtual_hosts.filter((vh) => vh.name === `${service.hostname}:${sp.port}`).map((vh) => ({ ...vh, domains: ['*'] }));
    filters = [httpConnectionManager({ statPrefix: `outbound_127.0.0.1_${localPort}`, routeConfig: { ...rc, name, virtual_hosts: vhosts }, telemetry })];
  } else {
    const ctx: RouteContext = { push, proxy, gateway: MESH_GATEWAY, port: sp.port };
    const vs = virtualServiceFor(push.virtualServicesFor(proxy, MESH_GATEWAY), service.hostname);
    const tcp = vs ? firstTcpRoute(ctx, vs) : undefined;
    const clusters = tcp ? l4Clusters(ctx, tcp, vs!.namespace) : [{ name: statPrefix, weight: 100 }];
    filters = withNetworkTelemetry(telemetry, [tcpProxyFilter(statPrefix, clusters.length > 0 ? clusters : BLACKHOLE_CLUSTER)]);
  }
  return { name, value: { name, address: socketAddress('127.0.0.1', localPort), filter_chains: [{ filters }], traffic_direction: 'OUTBOUND' } };
}

/** The inbound listeners: virtualInbound's chains for each workload port, each on its own bound address. */
function inboundListeners(push: PushContext, proxy: ProxyNode): BuiltListener[] {
  const ip = proxy.ipAddresses[0] ?? '127.0.0.1';
  const virtual = buildSidecarInboundListener(push, proxy).value as { filter_chains: Record<string, unknown>[] };
  const byPort = new Map<number, Record<string, unknown>[]>();
  for (const chain of virtual.filter_chains) {
    const match = chain.filter_chain_match as { destination_port?: { value: number } } | undefined;
    const port = match?.destination_port?.value;
    if (port === undefined) continue; // the passthrough catch-all: nothing is captured here
    const list = byPort.get(port) ?? [];
    list.push(chain);
    byPort.set(port, list);
  }
  const out: BuiltListener[] = [];
  for (const [port, chains] of [...byPort.entries()].sort(([a], [b]) => a - b)) {
    const name = listenerName(ip, port);
    out.push({ name, value: { name, address: socketAddress(ip, port), listener_filters: [tlsInspector()], traffic_direction: 'INBOUND', filter_chains: chains } });
  }
  return out;
}

/** Every listener of a no-capture sidecar. */
export function buildNoCaptureListeners(push: PushContext, proxy: ProxyNode): BuiltListener[] {
  const visible = new Map(push.servicesFor(proxy).map((s) => [s.hostname, s]));
  const out: BuiltListener[] = [];
  for (const { host, port, localPort } of outboundPortEntries(proxy)) {
    const service = visible.get(host);
    const sp = service?.ports.find((p) => p.port === port);
    if (!service || !sp || sp.protocol === 'UDP') continue; // unknown (yet): the listener comes with the service
    out.push(outboundListener(push, proxy, service, sp, localPort));
  }
  return [...out, ...inboundListeners(push, proxy)];
}

/** True for any proxy (sidecar or gateway) that declared interception mode NONE. */
export function declaresNoCapture(proxy: ProxyNode): boolean {
  return proxy.metadata[INTERCEPTION_MODE_KEY] === 'NONE';
}

/**
 * Without capture there is no original destination to forward to: the
 * ORIGINAL_DST clusters (PassthroughCluster, InboundPassthroughClusterIpv4,
 * passthrough services) are left out, so a proxy without SO_ORIGINAL_DST
 * support is not handed clusters it cannot use.
 */
export function withoutOriginalDst<T extends { value: Record<string, unknown> }>(clusters: readonly T[]): T[] {
  return clusters.filter((c) => c.value.type !== 'ORIGINAL_DST');
}

/** Inbound clusters pointed at the app's own port (INBOUND_PORTS) instead of the workload port. */
export function noCaptureInboundClusters(clusters: readonly BuiltCluster[], proxy: ProxyNode): BuiltCluster[] {
  const appPorts = inboundAppPorts(proxy);
  return clusters.map((c) => {
    const port = Number(c.name.split('|')[1]);
    const appPort = appPorts.get(port);
    if (appPort === undefined) return c;
    const value = { ...c.value, load_assignment: { cluster_name: c.name, endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress('127.0.0.1', appPort) } }] }] } };
    return { name: c.name, value };
  });
}
