// Cluster and ClusterLoadAssignment -> readonly domain objects. Defaults are
// Envoy's: connect_timeout 5s, ROUND_ROBIN, circuit breaker thresholds 1024
// connections / 1024 pending / 1024 requests / 3 retries, dns refresh 5s.

import { configError } from '../errors.ts';
import { plainStruct } from './typed-struct.ts';
import { durationMs, wrapped } from './values.ts';
import type { TransportSocketMatch, UpstreamTransportSocket } from '../transport-sockets/transport-socket.ts';

/** A decoded google.protobuf.Struct's string fields as a plain map; undefined when absent. */
export function structStrings(s: { fields?: Record<string, { kind?: string; stringValue?: string }> } | null | undefined): Record<string, string> | undefined {
  if (!s?.fields) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(s.fields)) if (v.kind === 'stringValue' && v.stringValue !== undefined) out[k] = v.stringValue;
  return out;
}
import type { UpstreamProtocolConfig } from './cluster-protocol.ts';
import { decodeUpstreamProtocol } from './cluster-protocol.ts';
import type { HealthCheckConfig, LbExtras, OutlierDetectionConfig } from './cluster-resilience.ts';
import { decodeHealthChecks, decodeLbExtras, decodeOutlierDetection } from './cluster-resilience.ts';

/** ORIGINAL_DST: each connection goes to its own original destination (SO_ORIGINAL_DST / use_original_dst), Istio's PassthroughCluster. */
export type DiscoveryType = 'STATIC' | 'STRICT_DNS' | 'LOGICAL_DNS' | 'EDS' | 'ORIGINAL_DST';
export type LbPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'RING_HASH' | 'MAGLEV';

export interface CircuitBreakers {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRetries: number;
}

export type HealthStatus = 'HEALTHY' | 'UNHEALTHY' | 'DRAINING' | 'TIMEOUT' | 'DEGRADED' | 'UNKNOWN';

export interface EndpointConfig {
  readonly address: string;
  readonly port: number;
  readonly weight: number;
  readonly health: HealthStatus;
  readonly priority: number;
  readonly locality: string;
  /** The locality's load_balancing_weight (locality-weighted LB); 0 when unset. */
  readonly localityWeight?: number;
  /** metadata.filter_metadata["envoy.transport_socket_match"] (Istio: tlsMode=istio), for transport_socket_matches. */
  readonly transportSocketMatch?: Readonly<Record<string, string>>;
}

export interface LoadAssignment {
  readonly clusterName: string;
  readonly endpoints: readonly EndpointConfig[];
  /** policy.overprovisioning_factor (Envoy: 140). */
  readonly overprovisioningFactor?: number;
}

export interface ClusterConfig {
  readonly name: string;
  readonly type: DiscoveryType;
  readonly connectTimeoutMs: number;
  readonly lbPolicy: LbPolicy;
  /** The EDS resource name (eds_cluster_config.service_name, or the cluster name). */
  readonly edsServiceName: string | undefined;
  readonly loadAssignment: LoadAssignment | undefined;
  readonly circuitBreakers: CircuitBreakers;
  readonly dnsRefreshMs: number;
  /** Envoy's dns_lookup_family: AUTO (v6 if any, else v4), V4_ONLY, V6_ONLY, V4_PREFERRED, ALL. */
  readonly dnsLookupFamily: 'AUTO' | 'V4_ONLY' | 'V6_ONLY' | 'V4_PREFERRED' | 'ALL';
  readonly maxRequestsPerConnection: number | undefined;
  /** Resilience (see cluster-resilience.ts); undefined when not configured. */
  readonly outlierDetection?: OutlierDetectionConfig;
  readonly healthChecks?: readonly HealthCheckConfig[];
  readonly lbExtras?: LbExtras;
  /** The HTTP protocol spoken upstream (cluster-protocol.ts); HTTP/1.1 when undefined. */
  readonly httpProtocol?: UpstreamProtocolConfig;
  /** transport_socket (TLS); set by the proxy through the extension registry, plaintext when undefined. */
  readonly transportSocket?: UpstreamTransportSocket;
  /** transport_socket_matches, chosen per endpoint by its metadata before transportSocket. */
  readonly transportSocketMatches?: readonly TransportSocketMatch[];
  /** metadata.filter_metadata.istio.services (Istio): the services an inbound cluster serves, for telemetry labels. */
  readonly istioServices?: readonly IstioServiceRef[];
  /** The decoded resource as received, for /config_dump. */
  readonly raw: unknown;
}

export interface IstioServiceRef {
  readonly host: string;
  readonly name: string;
  readonly namespace: string;
}

/** Istio's cluster metadata `istio.services: [{host, name, namespace}]`; entries without a host are skipped. */
function istioServicesOf(metadata: D | null | undefined): IstioServiceRef[] | undefined {
  const istio = plainStruct(metadata?.filter_metadata?.istio);
  if (!Array.isArray(istio.services)) return undefined;
  const refs: IstioServiceRef[] = [];
  for (const s of istio.services as Array<Record<string, unknown>>) {
    if (!s || typeof s.host !== 'string' || !s.host) continue;
    refs.push({ host: s.host, name: typeof s.name === 'string' ? s.name : s.host, namespace: typeof s.namespace === 'string' ? s.namespace : '' });
  }
  return refs;
}

type D = Record<string, any>;

const HEALTH = new Set(['HEALTHY', 'UNHEALTHY', 'DRAINING', 'TIMEOUT', 'DEGRADED', 'UNKNOWN']);

/** Decodes a ClusterLoadAssignment (EDS resource or a cluster's load_assignment). */
export function decodeLoadAssignment(cla: D, path: string): LoadAssignment {
  const endpoints: EndpointConfig[] = [];
  (cla.endpoints ?? []).forEach((l: D, i: number) => {
    const lp = `${path}.endpoints[${i}]`;
    const locality = l.locality ? [l.locality.region, l.locality.zone, l.locality.sub_zone].filter(Boolean).join('/') : '';
    (l.lb_endpoints ?? []).forEach((e: D, j: number) => {
      const ep = `${lp}.lb_endpoints[${j}]`;
      const sa = e.endpoint?.address?.socket_address;
      if (!sa) throw configError(`${ep}.endpoint.address`, 'a socket_address is required');
      if (!sa.address) throw configError(`${ep}.endpoint.address.socket_address.address`, 'must not be empty');
      if (!(sa.port_value > 0 && sa.port_value <= 65535)) throw configError(`${ep}.endpoint.address.socket_address.port_value`, `invalid port ${sa.port_value}`);
      const weight = wrapped(e.load_balancing_weight, 1);
      if (weight < 1) throw configError(`${ep}.load_balancing_weight`, 'must be at least 1');
      endpoints.push({
        address: sa.address,
        port: sa.port_value,
        weight,
        health: HEALTH.has(e.health_status) ? e.health_status : 'UNKNOWN',
        priority: l.priority ?? 0,
        locality,
        localityWeight: l.load_balancing_weight ? l.load_balancing_weight.value : 0,
        transportSocketMatch: structStrings(e.metadata?.filter_metadata?.['envoy.transport_socket_match']),
      });
    });
  });
  const overprovisioningFactor = cla.policy?.overprovisioning_factor ? cla.policy.overprovisioning_factor.value : 140;
  if (overprovisioningFactor < 1) throw configError(`${path}.policy.overprovisioning_factor`, 'must be at least 1');
  return { clusterName: cla.cluster_name ?? '', endpoints, overprovisioningFactor };
}

const TYPES = new Set(['STATIC', 'STRICT_DNS', 'LOGICAL_DNS', 'EDS', 'ORIGINAL_DST']);
const LB = new Set(['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV']);

export function decodeCluster(c: D, where = 'Cluster'): ClusterConfig {
  const path = `${where} "${c.name ?? ''}"`;
  if (!c.name) throw configError(`${where}.name`, 'must not be empty');
  if (c.cluster_discovery_type === 'cluster_type') throw configError(`${path}.cluster_type`, `custom cluster type ${c.cluster_type?.name ?? ''} is not supported`);
  const type = c.type as DiscoveryType;
  if (!TYPES.has(type)) throw configError(`${path}.type`, `discovery type ${c.type} is not supported (STATIC, STRICT_DNS, LOGICAL_DNS, EDS, ORIGINAL_DST)`);
  const originalDst = type === 'ORIGINAL_DST';
  if (originalDst && c.lb_policy !== 'CLUSTER_PROVIDED') throw configError(`${path}.lb_policy`, `an ORIGINAL_DST cluster needs lb_policy CLUSTER_PROVIDED, not ${c.lb_policy}`);
  if (originalDst && c.load_assignment) throw configError(`${path}.load_assignment`, 'an ORIGINAL_DST cluster has no load_assignment: its hosts are the connections\' original destinations');
  if (!originalDst && !LB.has(c.lb_policy)) throw configError(`${path}.lb_policy`, `lb_policy ${c.lb_policy} is not supported (ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH, MAGLEV)`);
  const loadAssignment = c.load_assignment ? decodeLoadAssignment(c.load_assignment, `${path}.load_assignment`) : undefined;
  if (type !== 'EDS' && !originalDst && !loadAssignment) throw configError(`${path}.load_assignment`, `required for a ${type} cluster`);
  if (type === 'LOGICAL_DNS' && loadAssignment && loadAssignment.endpoints.length !== 1) throw configError(`${path}.load_assignment`, 'a LOGICAL_DNS cluster needs exactly one endpoint');
  if (type === 'EDS' && c.eds_cluster_config === null) throw configError(`${path}.eds_cluster_config`, 'required for an EDS cluster');
  const t = (c.circuit_breakers?.thresholds ?? []).find((x: D) => x.priority === 'DEFAULT');
  const connectTimeoutMs = durationMs(c.connect_timeout, 5000);
  if (connectTimeoutMs <= 0) throw configError(`${path}.connect_timeout`, 'must be positive');
  const istioServices = istioServicesOf(c.metadata);
  return {
    name: c.name,
    type,
    connectTimeoutMs,
    // CLUSTER_PROVIDED: the host comes with the connection; the LB over the (empty) host set is never asked.
    lbPolicy: originalDst ? 'ROUND_ROBIN' : c.lb_policy,
    edsServiceName: type === 'EDS' ? c.eds_cluster_config.service_name || c.name : undefined,
    loadAssignment,
    circuitBreakers: {
      maxConnections: wrapped(t?.max_connections, 1024),
      maxPendingRequests: wrapped(t?.max_pending_requests, 1024),
      maxRequests: wrapped(t?.max_requests, 1024),
      maxRetries: wrapped(t?.max_retries, 3),
    },
    dnsRefreshMs: durationMs(c.dns_refresh_rate, 5000),
    dnsLookupFamily: c.dns_lookup_family ?? 'AUTO',
    maxRequestsPerConnection: c.max_requests_per_connection ? c.max_requests_per_connection.value : undefined,
    outlierDetection: decodeOutlierDetection(c.outlier_detection, path),
    healthChecks: decodeHealthChecks(c.health_checks, path),
    lbExtras: decodeLbExtras(c, path),
    httpProtocol: decodeUpstreamProtocol(c, path),
    ...(istioServices ? { istioServices } : {}),
    raw: c,
  };
}
