// Config of the Pilot scale benchmark: N services as ServiceEntries (STATIC,
// MESH_INTERNAL, one HTTP port, a workloadSelector) with two WorkloadEntries
// each, and VirtualServices + DestinationRules (v1/v2 subsets) for some of
// them. Plain objects, as POST /apply takes them.

export const NAMESPACES = 10;
/** Services use ports BASE_PORT .. BASE_PORT + PORTS - 1 (so 10 outbound listeners / route configs per sidecar). */
export const BASE_PORT = 8000;
export const PORTS = 10;

export type ConfigObject = { apiVersion: string; kind: string; metadata: { name: string; namespace: string }; spec: Record<string, unknown> };

export function namespaceOf(service: number): string {
  return `ns-${service % NAMESPACES}`;
}

export function hostOf(service: number): string {
  return `svc-${service}.${namespaceOf(service)}.svc.cluster.local`;
}

export function portOf(service: number): number {
  return BASE_PORT + (service % PORTS);
}

/** Workload w (0-based) of the mesh: service floor(w / 2), replica a or b. */
export function workloadName(w: number): string {
  return `svc-${Math.floor(w / 2)}-${w % 2 === 0 ? 'a' : 'b'}`;
}

/** 10.x.y.z for workload w; `block` picks another /8-ish range (moved endpoints, proxies without a workload). */
export function workloadIp(w: number, block = 0): string {
  const n = w + 1;
  return `10.${block + ((n >> 16) & 63)}.${(n >> 8) & 255}.${n & 255}`;
}

export function serviceEntry(i: number): ConfigObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: `svc-${i}`, namespace: namespaceOf(i) },
    spec: {
      hosts: [hostOf(i)],
      location: 'MESH_INTERNAL',
      resolution: 'STATIC',
      ports: [{ number: portOf(i), name: 'http', protocol: 'HTTP', targetPort: 8080 }],
      workloadSelector: { labels: { app: `svc-${i}` } },
    },
  };
}

export function workloadEntry(w: number, block = 0): ConfigObject {
  const service = Math.floor(w / 2);
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'WorkloadEntry',
    metadata: { name: workloadName(w), namespace: namespaceOf(service) },
    spec: { address: workloadIp(w, block), labels: { app: `svc-${service}`, version: w % 2 === 0 ? 'v1' : 'v2' }, serviceAccount: `svc-${service}` },
  };
}

/** Services that get a VirtualService and a DestinationRule: every (services / count)-th one. */
export function routedServices(services: number, count: number): number[] {
  const n = Math.min(count, services);
  const step = Math.max(1, Math.floor(services / Math.max(1, n)));
  return Array.from({ length: n }, (_, k) => k * step);
}

export function virtualService(i: number, v1Weight = 80): ConfigObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: `svc-${i}`, namespace: namespaceOf(i) },
    spec: {
      hosts: [hostOf(i)],
      http: [
        {
          match: [{ uri: { prefix: '/api' }, headers: { 'end-user': { exact: `user-${i}` } } }],
          route: [{ destination: { host: hostOf(i), subset: 'v2' } }],
        },
        {
          route: [
            { destination: { host: hostOf(i), subset: 'v1', port: { number: portOf(i) } }, weight: v1Weight },
            { destination: { host: hostOf(i), subset: 'v2', port: { number: portOf(i) } }, weight: 100 - v1Weight },
          ],
          timeout: '3s',
          retries: { attempts: 2, perTryTimeout: '1s' },
        },
      ],
    },
  };
}

export function destinationRule(i: number): ConfigObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: `svc-${i}`, namespace: namespaceOf(i) },
    spec: {
      host: hostOf(i),
      trafficPolicy: { loadBalancer: { simple: 'LEAST_REQUEST' }, connectionPool: { http: { http1MaxPendingRequests: 100 } } },
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: { version: 'v2' } },
      ],
    },
  };
}

/** Everything, in apply order: services, then workloads, then routing. */
export function meshConfig(services: number, routed: number): ConfigObject[] {
  const out: ConfigObject[] = [];
  for (let i = 0; i < services; i++) out.push(serviceEntry(i));
  for (let w = 0; w < services * 2; w++) out.push(workloadEntry(w));
  for (const i of routedServices(services, routed)) out.push(virtualService(i), destinationRule(i));
  return out;
}
