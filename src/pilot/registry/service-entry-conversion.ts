// ServiceEntry and WorkloadEntry -> Pilot's model, as Istio converts them
// (pilot/pkg/serviceregistry/serviceentry/conversion.go): one Service per
// host as written, inline endpoints (or the hosts themselves, for DNS entries
// without endpoints) as ServiceEndpoints, WorkloadEntries as workloads.
// Pure functions of one object; the registry state combines them.

import type { ConfigObject, ServiceEntrySpec, WorkloadEntrySpec } from '../../api/index.ts';
import { parseLocality } from '../model/index.ts';
import type { Locality, Protocol, Resolution, Service, ServiceEndpoint, ServicePort, WorkloadInstance } from '../model/index.ts';

/** Where a converted object's results are attributed. */
export interface ConversionContext {
  /** The adapter's name, written to Service.registry and WorkloadInstance.registry. */
  readonly registry: string;
  /** For SPIFFE identities of endpoints (`spiffe://<td>/ns/<ns>/sa/<sa>`). */
  readonly trustDomain: string;
}

/** A ServiceEntry converted: its services (one per host) and the endpoints it carries itself. */
export interface ConvertedServiceEntry {
  readonly services: readonly Service[];
  /** Inline (or DNS-host) endpoints by hostname; empty for selector-based entries, whose endpoints are the workloads they select. */
  readonly endpoints: ReadonlyMap<string, readonly ServiceEndpoint[]>;
}

/** Istio's label carrying a locality as `region.zone.subzone`, used when WorkloadEntry.locality is unset. */
export const LOCALITY_LABEL = 'istio-locality';

const UNIX_PREFIX = 'unix://';

const PROTOCOLS: Readonly<Record<string, Protocol>> = {
  tcp: 'TCP', udp: 'UDP', grpc: 'GRPC', 'grpc-web': 'GRPC-WEB', http: 'HTTP', http2: 'HTTP2',
  https: 'HTTPS', tls: 'TLS', mongo: 'MONGO', redis: 'REDIS', mysql: 'MYSQL',
};

/** Istio's protocol.Parse: an exact, case-insensitive protocol name; anything else (or none) is UNSUPPORTED. */
export function parseProtocol(protocol: string | undefined): Protocol {
  return PROTOCOLS[(protocol ?? '').toLowerCase()] ?? 'UNSUPPORTED';
}

/** `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>` */
export function spiffeIdentity(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

export function convertResolution(resolution: ServiceEntrySpec['resolution']): Resolution {
  // The model has no dynamic forward proxy yet; DYNAMIC_DNS resolves by DNS like DNS.
  if (resolution === 'DYNAMIC_DNS') return 'DNS';
  return resolution ?? 'NONE';
}

/** IPs as written; a CIDR covering one address (`/32`, `/128`) becomes the plain address, as Istio does. */
export function normalizeAddress(address: string): string {
  const slash = address.indexOf('/');
  if (slash < 0) return address;
  const ip = address.slice(0, slash);
  const bits = Number(address.slice(slash + 1));
  return (ip.includes(':') ? bits === 128 : bits === 32) ? ip : address;
}

export function convertPort(port: NonNullable<ServiceEntrySpec['ports']>[number]): ServicePort {
  const out: ServicePort = { name: port.name ?? '', port: port.number, protocol: parseProtocol(port.protocol) };
  return port.targetPort ? { ...out, targetPort: port.targetPort } : out;
}

/**
 * The port an endpoint is dialled on for a service port. Istio's priority:
 * unix socket (no port) > the workload's port for the service port's name >
 * the service port's targetPort > the service port's number.
 */
export function endpointPortFor(servicePort: ServicePort, workload: Pick<WorkloadInstance, 'address' | 'ports'>): number {
  if (workload.address.startsWith(UNIX_PREFIX)) return 0;
  const mapped = workload.ports[servicePort.name];
  if (mapped !== undefined && mapped > 0) return mapped;
  return servicePort.targetPort ?? servicePort.port;
}

function localityOf(spec: WorkloadEntrySpec): Locality {
  if (spec.locality) return parseLocality(spec.locality);
  const label = spec.labels?.[LOCALITY_LABEL];
  return parseLocality(label ? label.replaceAll('.', '/') : undefined);
}

/** A WorkloadEntry-shaped spec (a WorkloadEntry, or a ServiceEntry's inline endpoint) as a workload. */
export function workloadFromSpec(spec: WorkloadEntrySpec, name: string, namespace: string, registry: string): WorkloadInstance {
  return {
    name,
    namespace,
    // Unix socket addresses keep their `unix://` prefix so generators can tell them from hosts.
    address: spec.address ?? '',
    ports: { ...spec.ports },
    labels: { ...spec.labels },
    locality: localityOf(spec),
    serviceAccount: spec.serviceAccount ?? '',
    network: spec.network ?? '',
    health: 'HEALTHY',
    weight: spec.weight || 1,
    registry,
  };
}

export function convertWorkloadEntry(obj: ConfigObject<WorkloadEntrySpec>, registry: string): WorkloadInstance {
  return workloadFromSpec(obj.spec, obj.metadata.name, obj.metadata.namespace ?? '', registry);
}

/** Endpoints of one service for the given workloads: ports outer, workloads inner (Istio's order). */
export function endpointsFor(service: Service, workloads: readonly WorkloadInstance[]): ServiceEndpoint[] {
  const out: ServiceEndpoint[] = [];
  for (const servicePort of service.ports) {
    for (const workload of workloads) {
      out.push({ hostname: service.hostname, servicePort, workload, endpointPort: endpointPortFor(servicePort, workload) });
    }
  }
  return out;
}

/** SPIFFE identities of workloads that name a service account, sorted and unique. */
export function workloadIdentities(trustDomain: string, workloads: readonly WorkloadInstance[]): string[] {
  const ids = new Set<string>();
  for (const w of workloads) if (w.serviceAccount) ids.add(spiffeIdentity(trustDomain, w.namespace, w.serviceAccount));
  return [...ids].sort();
}

/** Subject alt names as written, then the identities, without repeats. */
export function mergeServiceAccounts(subjectAltNames: readonly string[], identities: readonly string[]): string[] {
  return [...new Set([...subjectAltNames, ...identities])];
}

export function convertServiceEntry(obj: ConfigObject<ServiceEntrySpec>, ctx: ConversionContext): ConvertedServiceEntry {
  const spec = obj.spec;
  const namespace = obj.metadata.namespace ?? '';
  const resolution = convertResolution(spec.resolution);
  const ports = (spec.ports ?? []).map(convertPort);
  const addresses = [...new Set((spec.addresses ?? []).map(normalizeAddress))];
  const inline = (spec.endpoints ?? []).map((ep, i) => workloadFromSpec(ep, `${obj.metadata.name}/${i}`, namespace, ctx.registry));
  const selector = spec.workloadSelector ? { ...spec.workloadSelector.labels } : undefined;
  const serviceAccounts = mergeServiceAccounts(spec.subjectAltNames ?? [], workloadIdentities(ctx.trustDomain, inline));
  // DNS entries with neither endpoints nor a selector resolve their own hosts.
  const hostsAreEndpoints = inline.length === 0 && !selector && (resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN');

  const services: Service[] = [];
  const endpoints = new Map<string, readonly ServiceEndpoint[]>();
  for (const hostname of new Set(spec.hosts)) {
    const service: Service = {
      hostname,
      namespace,
      ports,
      addresses,
      labels: { ...obj.metadata.labels },
      exportTo: [...new Set(spec.exportTo ?? [])],
      meshExternal: spec.location === 'MESH_EXTERNAL',
      resolution,
      serviceAccounts,
      ...(selector ? { workloadSelector: selector } : {}),
      registry: ctx.registry,
      origin: `ServiceEntry ${namespace}/${obj.metadata.name}`,
    };
    services.push(service);
    if (hostsAreEndpoints) {
      endpoints.set(hostname, endpointsFor(service, [workloadFromSpec({ address: hostname }, hostname, namespace, ctx.registry)]));
    } else if (inline.length > 0) {
      endpoints.set(hostname, endpointsFor(service, inline));
    }
  }
  return { services, endpoints };
}

/** Whether a workload carries every label of a selector (an empty selector selects all). */
export function selects(selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}
