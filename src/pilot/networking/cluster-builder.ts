// Clusters (CDS) as Istio builds them: one outbound cluster per service port
// plus one per DestinationRule subset, the passthrough/blackhole specials,
// and inbound clusters for the workload's own ports.

import type { ProxyNode, Service, ServicePort } from '../model/index.ts';
import { isHttpProtocol } from '../model/index.ts';
import type { PushContext, ResolvedDestinationRule } from '../push-context.ts';
import { adsConfigSource, duration, seconds, socketAddress, struct } from './envoy-values.ts';
import { buildLoadAssignment, isProxyDependent } from './load-assignment.ts';
import {
  BLACKHOLE_CLUSTER,
  INBOUND_PASSTHROUGH_CLUSTER,
  inboundClusterName,
  istioSni,
  outboundClusterName,
  PASSTHROUGH_CLUSTER,
} from './names.ts';
import { upstreamTransportSocket } from './tls.ts';
import { TLS_MODE_KEY } from './load-assignment.ts';
import { circuitBreakers, connectionFields, effectivePolicy, loadBalancerFields, outlierDetectionFields } from './traffic-policy.ts';

export interface BuiltCluster {
  readonly name: string;
  readonly value: Record<string, unknown>;
  /** Set when the cluster depends on the service, its rule and the push version only. */
  readonly cacheKey?: string;
}

/** Ports of a service that get clusters: UDP has no Envoy cluster here. */
export function clusterPorts(service: Service): readonly ServicePort[] {
  return service.ports.filter((p) => p.protocol !== 'UDP');
}

/** The subsets of a cluster family: `''` (the default cluster) then each subset of the rule. */
export function subsetsOf(dr: ResolvedDestinationRule | undefined): string[] {
  return ['', ...(dr?.spec.subsets ?? []).map((s) => s.name)];
}

function httpKind(port: ServicePort): 'none' | 'http1' | 'http2' {
  if (port.protocol === 'HTTP2' || port.protocol === 'GRPC' || port.protocol === 'GRPC-WEB') return 'http2';
  return isHttpProtocol(port.protocol) ? 'http1' : 'none';
}

function sans(service: Service, trustDomain: string): string[] {
  return service.serviceAccounts.map((sa) => (sa.startsWith('spiffe://') ? sa : `spiffe://${trustDomain}/ns/${service.namespace}/sa/${sa}`));
}

/** One outbound cluster of an Envoy proxy (sidecar or gateway). */
export function buildOutboundCluster(push: PushContext, proxy: ProxyNode, service: Service, port: ServicePort, subset: string, dr: ResolvedDestinationRule | undefined): BuiltCluster | undefined {
  const name = outboundClusterName(port.port, subset, service.hostname);
  const policy = effectivePolicy(dr?.spec, port.port, subset);
  const cluster: Record<string, unknown> = { name };
  const lb = loadBalancerFields(policy.loadBalancer, policy.outlierDetection, push.mesh);
  const passthrough = policy.loadBalancer?.simple === 'PASSTHROUGH' || service.resolution === 'NONE';
  if (passthrough) {
    cluster.type = 'ORIGINAL_DST';
    lb.lb_policy = 'CLUSTER_PROVIDED';
    delete lb.ring_hash_lb_config;
    delete lb.maglev_lb_config;
  } else if (service.resolution === 'DNS' || service.resolution === 'DNS_ROUND_ROBIN') {
    if (service.hostname.includes('*')) return undefined; // nothing to resolve
    cluster.type = service.resolution === 'DNS' ? 'STRICT_DNS' : 'LOGICAL_DNS';
    cluster.dns_lookup_family = 'V4_ONLY';
    cluster.dns_refresh_rate = duration(push.mesh.dnsRefreshRate) ?? seconds(60);
    cluster.respect_dns_ttl = true;
  } else {
    cluster.type = 'EDS';
    cluster.eds_cluster_config = { service_name: name, eds_config: adsConfigSource() };
  }
  Object.assign(cluster, connectionFields(policy.connectionPool, push.mesh, httpKind(port)), lb);
  cluster.circuit_breakers = circuitBreakers(policy.connectionPool);
  const outlier = outlierDetectionFields(policy.outlierDetection);
  if (outlier) cluster.outlier_detection = outlier;
  const socket = upstreamTransportSocket(policy.tls, { sni: istioSni(port.port, subset, service.hostname), sans: sans(service, push.mesh.trustDomain), http2: httpKind(port) === 'http2' });
  if (socket) cluster.transport_socket = socket;
  else if (push.mesh.enableAutoMtls && !service.meshExternal && cluster.type === 'EDS') {
    // Auto mTLS: endpoints whose workload runs a sidecar (EDS metadata
    // tlsMode=istio) get Istio mTLS, the rest stay plaintext.
    const mtls = upstreamTransportSocket({ mode: 'ISTIO_MUTUAL' }, { sni: istioSni(port.port, subset, service.hostname), sans: sans(service, push.mesh.trustDomain), http2: false });
    cluster.transport_socket_matches = [{ name: 'tlsMode-istio', match: struct({ [TLS_MODE_KEY]: 'istio' }), transport_socket: mtls }];
  }
  if (cluster.type === 'STRICT_DNS' || cluster.type === 'LOGICAL_DNS') {
    const labels = subset ? (dr?.spec.subsets?.find((s) => s.name === subset)?.labels ?? {}) : {};
    const eps = push.endpoints(service.hostname);
    // A DNS ServiceEntry without endpoints resolves its own hostname.
    cluster.load_assignment = eps.length > 0
      ? buildLoadAssignment({ clusterName: name, endpoints: eps, port: port.port, labels, policy, proxy, mesh: push.mesh })
      : { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(service.hostname, port.targetPort ?? port.port) } }] }] };
    if (cluster.type === 'LOGICAL_DNS') {
      const la = cluster.load_assignment as { endpoints: { lb_endpoints: unknown[] }[] };
      // LOGICAL_DNS takes exactly one endpoint: the first address to resolve.
      la.endpoints = la.endpoints.slice(0, 1).map((e) => ({ ...e, lb_endpoints: e.lb_endpoints.slice(0, 1) }));
    }
  }
  const dependsOnProxy = cluster.load_assignment !== undefined && isProxyDependent(policy, push.mesh);
  const ruleKey = dr ? `${dr.namespace}/${dr.name}` : '-';
  return { name, value: cluster, cacheKey: dependsOnProxy ? undefined : `cds/${name}/${ruleKey}@${push.version}` };
}

/** Every outbound cluster the proxy can see. */
export function buildOutboundClusters(push: PushContext, proxy: ProxyNode, services: readonly Service[] = push.servicesFor(proxy)): BuiltCluster[] {
  const out: BuiltCluster[] = [];
  for (const service of services) {
    const dr = push.destinationRule(proxy.namespace, service.hostname);
    for (const port of clusterPorts(service)) {
      for (const subset of subsetsOf(dr)) {
        const c = buildOutboundCluster(push, proxy, service, port, subset, dr);
        if (c) out.push(c);
      }
    }
  }
  return out;
}

/** PassthroughCluster, BlackHoleCluster and InboundPassthroughClusterIpv4. */
export function buildSpecialClusters(push: PushContext): BuiltCluster[] {
  const timeout = duration(push.mesh.connectTimeout) ?? seconds(10);
  const breakers = circuitBreakers(undefined);
  const key = (n: string): string => `cds/${n}@${push.version}`;
  return [
    // An explicit empty load assignment: Envoy allows leaving it out, stricter decoders (ours) do not.
    { name: BLACKHOLE_CLUSTER, value: { name: BLACKHOLE_CLUSTER, type: 'STATIC', connect_timeout: timeout, load_assignment: { cluster_name: BLACKHOLE_CLUSTER, endpoints: [] } }, cacheKey: key(BLACKHOLE_CLUSTER) },
    {
      name: INBOUND_PASSTHROUGH_CLUSTER,
      value: {
        name: INBOUND_PASSTHROUGH_CLUSTER, type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED', connect_timeout: timeout, circuit_breakers: breakers,
        // 127.0.0.6 marks traffic the sidecar itself sends to the app, so capture rules let it through.
        upstream_bind_config: { source_address: { address: '127.0.0.6', port_value: 0 } },
      },
      cacheKey: key(INBOUND_PASSTHROUGH_CLUSTER),
    },
    { name: PASSTHROUGH_CLUSTER, value: { name: PASSTHROUGH_CLUSTER, type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED', connect_timeout: timeout, circuit_breakers: breakers }, cacheKey: key(PASSTHROUGH_CLUSTER) },
  ];
}

/** Per workload port, the services it serves as Istio's cluster metadata writes them: {host, name, namespace}. */
function inboundServices(push: PushContext, proxy: ProxyNode): Map<number, { host: string; name: string; namespace: string }[]> {
  const byPort = new Map<number, { host: string; name: string; namespace: string }[]>();
  for (const ep of push.inboundEndpoints(proxy)) {
    const list = byPort.get(ep.endpointPort) ?? [];
    if (list.some((s) => s.host === ep.hostname)) continue;
    const namespace = push.service(ep.hostname)?.namespace ?? '';
    // A Kubernetes-style host names its service by its first label; any other host is its own name (Istio's ServiceEntry rule).
    const k8s = /^([^.]+)\.([^.]+)\.svc(\.|$)/.exec(ep.hostname);
    list.push({ host: ep.hostname, name: k8s ? k8s[1]! : ep.hostname, namespace: k8s ? k8s[2]! : namespace });
    byPort.set(ep.endpointPort, list);
  }
  return byPort;
}

/** The workload ports this proxy serves, each once: endpoint port and protocol. */
export function inboundPorts(push: PushContext, proxy: ProxyNode): { port: number; servicePort: ServicePort }[] {
  const byPort = new Map<number, ServicePort>();
  for (const ep of push.inboundEndpoints(proxy)) if (!byPort.has(ep.endpointPort)) byPort.set(ep.endpointPort, ep.servicePort);
  return [...byPort.entries()].sort(([a], [b]) => a - b).map(([port, servicePort]) => ({ port, servicePort }));
}

/**
 * `inbound|PORT||`: the app on loopback. A static loopback endpoint (rather
 * than Istio's ORIGINAL_DST) works both with capture and without it, when
 * the runtime gives each app its own local port.
 */
export function buildInboundClusters(push: PushContext, proxy: ProxyNode): BuiltCluster[] {
  const services = inboundServices(push, proxy);
  return inboundPorts(push, proxy).map(({ port, servicePort }) => {
    const name = inboundClusterName(port);
    const value: Record<string, unknown> = {
      name,
      // Istio's istio.services: the services this port serves, which the stats filter names destination_service by.
      metadata: { filter_metadata: { istio: struct({ services: services.get(port) ?? [] }) } },
      type: 'STATIC',
      connect_timeout: duration(push.mesh.connectTimeout) ?? seconds(10),
      circuit_breakers: circuitBreakers(undefined),
      load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress('127.0.0.1', port) } }] }] },
      ...connectionFields(undefined, push.mesh, httpKind(servicePort)),
    };
    return { name, value };
  });
}

/** A proxyless gRPC cluster: always EDS over ADS, only what gRPC's xDS client understands. */
export function buildGrpcCluster(push: PushContext, _proxy: ProxyNode, service: Service, port: ServicePort, subset: string, dr: ResolvedDestinationRule | undefined): BuiltCluster {
  const name = outboundClusterName(port.port, subset, service.hostname);
  const policy = effectivePolicy(dr?.spec, port.port, subset);
  const lb = loadBalancerFields(policy.loadBalancer, undefined, push.mesh);
  const value: Record<string, unknown> = {
    name,
    type: 'EDS',
    eds_cluster_config: { service_name: name, eds_config: { ads: {}, resource_api_version: 'V3' } },
    lb_policy: lb.lb_policy === 'RING_HASH' ? 'RING_HASH' : 'ROUND_ROBIN',
  };
  if (lb.ring_hash_lb_config) value.ring_hash_lb_config = lb.ring_hash_lb_config;
  const cb = policy.connectionPool?.http?.http2MaxRequests;
  if (cb) value.circuit_breakers = { thresholds: [{ max_requests: { value: cb } }] };
  const outlier = outlierDetectionFields(policy.outlierDetection);
  if (outlier) value.outlier_detection = outlier;
  const ruleKey = dr ? `${dr.namespace}/${dr.name}` : '-';
  return { name, value, cacheKey: `grpc-cds/${name}/${ruleKey}@${push.version}` };
}
