// Pilot's abstract service model: what every platform adapter (local, etcd,
// Kubernetes) turns its own objects into. Pilot's generators read only this.

/** Istio's protocol names (port name prefixes / ServiceEntry protocol). */
export type Protocol = 'HTTP' | 'HTTP2' | 'HTTPS' | 'GRPC' | 'GRPC-WEB' | 'TLS' | 'TCP' | 'MONGO' | 'REDIS' | 'MYSQL' | 'UDP' | 'UNSUPPORTED';

export interface ServicePort {
  /** Port name, e.g. `http`, `grpc-web`; may be empty for ServiceEntry ports without one. */
  readonly name: string;
  /** The service's port (the one clients dial). */
  readonly port: number;
  readonly protocol: Protocol;
  /** The workload port traffic is delivered to, when it differs from `port`. */
  readonly targetPort?: number;
}

/** How a service's endpoints are found; Istio's ServiceEntry resolution. */
export type Resolution = 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN' | 'NONE';

/**
 * A service: a hostname with ports. Immutable; an adapter replaces the whole
 * object when anything changes.
 */
export interface Service {
  /** Fully qualified hostname: `reviews.default.svc.cluster.local`, `api.example.com`, `*.example.com`. */
  readonly hostname: string;
  /** Namespace of the object that defined the service (config visibility, exportTo). */
  readonly namespace: string;
  readonly ports: readonly ServicePort[];
  /** Virtual IPs clients may dial (ServiceEntry addresses / cluster IP); empty when none. */
  readonly addresses: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
  /** Istio exportTo: `*` (all namespaces), `.` (own namespace), `~` (none), or namespace names. Empty means the mesh default. */
  readonly exportTo: readonly string[];
  /** True for MESH_EXTERNAL ServiceEntries: no sidecar at the other end, no mTLS by default. */
  readonly meshExternal: boolean;
  readonly resolution: Resolution;
  /** Identities the service's workloads run as (SPIFFE URIs or plain names), for SAN checks. */
  readonly serviceAccounts: readonly string[];
  /** The workloads that back the service, by label, when it is selector-based. */
  readonly workloadSelector?: Readonly<Record<string, string>>;
  /** Which adapter produced it (`local`, `etcd`, `kubernetes`). */
  readonly registry: string;
  /** `ServiceEntry default/reviews` — where it came from, for messages and debug output. */
  readonly origin: string;
}

export interface Locality {
  readonly region: string;
  readonly zone: string;
  readonly subzone: string;
}

export type HealthStatus = 'HEALTHY' | 'UNHEALTHY' | 'DRAINING';

/** A running workload (a pod, a VM, a process started by the mesh runtime). */
export interface WorkloadInstance {
  /** Unique within its namespace and registry, e.g. `reviews-v1-7f9c` or a WorkloadEntry's name. */
  readonly name: string;
  readonly namespace: string;
  /** IP address (or a hostname for DNS-resolved ServiceEntry endpoints). */
  readonly address: string;
  /** Port overrides by service port name (WorkloadEntry.ports): traffic for that port goes here. */
  readonly ports: Readonly<Record<string, number>>;
  readonly labels: Readonly<Record<string, string>>;
  readonly locality: Locality;
  /** Service account name (not the SPIFFE URI). */
  readonly serviceAccount: string;
  readonly network: string;
  readonly health: HealthStatus;
  /** Load-balancing weight (WorkloadEntry.weight); 1 when unset. */
  readonly weight: number;
  readonly registry: string;
}

/** One endpoint of one service port: the workload and the port to dial on it. */
export interface ServiceEndpoint {
  readonly hostname: string;
  readonly servicePort: ServicePort;
  readonly workload: WorkloadInstance;
  readonly endpointPort: number;
}

/** `api-v1.us-east-1/zone-a/sub` -> Locality; missing parts are empty strings. */
export function parseLocality(text: string | undefined): Locality {
  const [region = '', zone = '', subzone = ''] = (text ?? '').split('/');
  return { region, zone, subzone };
}

/** Istio's protocol from a port name (`http-web` -> HTTP) or an explicit protocol string. */
export function protocolFromName(nameOrProtocol: string | undefined): Protocol {
  const prefix = (nameOrProtocol ?? '').split('-')[0]!.toUpperCase();
  const known: Protocol[] = ['HTTP', 'HTTP2', 'HTTPS', 'GRPC', 'TLS', 'TCP', 'MONGO', 'REDIS', 'MYSQL', 'UDP'];
  if ((nameOrProtocol ?? '').toUpperCase() === 'GRPC-WEB') return 'GRPC-WEB';
  return (known as string[]).includes(prefix) ? (prefix as Protocol) : 'UNSUPPORTED';
}

export function isHttpProtocol(p: Protocol): boolean {
  return p === 'HTTP' || p === 'HTTP2' || p === 'GRPC' || p === 'GRPC-WEB';
}
