// ClusterLoadAssignment for one cluster: a service port's endpoints, filtered
// by subset labels, grouped by locality with a weight on every locality (gRPC's
// xDS client requires one), and ordered into priorities for locality failover.

import type { ProxyNode, ServiceEndpoint, Locality } from '../model/index.ts';
import type { MeshConfig } from '../../api/index.ts';
import type { EffectivePolicy } from './traffic-policy.ts';
import { labelsMatch } from './hosts.ts';
import { socketAddress, struct, u32 } from './envoy-values.ts';

export interface LoadAssignmentInput {
  readonly clusterName: string;
  /** All endpoints of the service (every port); filtered here. */
  readonly endpoints: readonly ServiceEndpoint[];
  readonly port: number;
  /** Subset labels; `{}` for the default cluster. */
  readonly labels: Readonly<Record<string, string>>;
  readonly policy: EffectivePolicy;
  readonly proxy: ProxyNode;
  readonly mesh: MeshConfig;
}

interface LocalityGroup {
  readonly locality: Locality;
  readonly endpoints: ServiceEndpoint[];
  priority: number;
  weight: number;
}

/** Istio's workload label saying a sidecar terminates mTLS for it. */
export const TLS_MODE_LABEL = 'security.istio.io/tlsMode';
export const TLS_MODE_KEY = 'tlsMode';
const TRANSPORT_SOCKET_MATCH = 'envoy.transport_socket_match';

const HEALTH: Record<string, string> = { HEALTHY: 'HEALTHY', UNHEALTHY: 'UNHEALTHY', DRAINING: 'DRAINING' };

function localityKey(l: Locality): string {
  return `${l.region}/${l.zone}/${l.subzone}`;
}

/** True when the locality matches a pattern of Istio's `region/zone/subzone` form with `*` parts. */
function localityMatches(pattern: string, l: Locality): boolean {
  const [r = '*', z = '*', s = '*'] = pattern.split('/');
  return (r === '*' || r === l.region) && (z === '*' || z === l.zone) && (s === '*' || s === l.subzone);
}

/** Endpoints of a cluster, in a stable order. */
export function clusterEndpoints(endpoints: readonly ServiceEndpoint[], port: number, labels: Readonly<Record<string, string>>): ServiceEndpoint[] {
  return endpoints
    .filter((ep) => ep.servicePort.port === port && labelsMatch(labels, ep.workload.labels))
    .sort((a, b) => (a.workload.address < b.workload.address ? -1 : a.workload.address > b.workload.address ? 1 : a.endpointPort - b.endpointPort));
}

export function buildLoadAssignment(input: LoadAssignmentInput): Record<string, unknown> {
  const eps = clusterEndpoints(input.endpoints, input.port, input.labels);
  const groups = new Map<string, LocalityGroup>();
  for (const ep of eps) {
    const key = localityKey(ep.workload.locality);
    let g = groups.get(key);
    if (!g) {
      g = { locality: ep.workload.locality, endpoints: [], priority: 0, weight: 0 };
      groups.set(key, g);
    }
    g.endpoints.push(ep);
    g.weight += Math.max(1, ep.workload.weight);
  }
  let list = [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, g]) => g);
  list = applyLocalityPolicy(list, input);
  return {
    cluster_name: input.clusterName,
    endpoints: list.map((g) => {
      const out: Record<string, unknown> = {
        locality: { region: g.locality.region, zone: g.locality.zone, sub_zone: g.locality.subzone },
        lb_endpoints: g.endpoints.map((ep) => {
          const lbe: Record<string, unknown> = {
            endpoint: { address: socketAddress(ep.workload.address, ep.endpointPort) },
            health_status: HEALTH[ep.workload.health] ?? 'UNKNOWN',
            load_balancing_weight: u32(Math.max(1, ep.workload.weight)),
          };
          // Auto mTLS picks the cluster's transport socket by this metadata.
          if (ep.workload.labels[TLS_MODE_LABEL] === 'istio') lbe.metadata = { filter_metadata: { [TRANSPORT_SOCKET_MATCH]: struct({ [TLS_MODE_KEY]: 'istio' }) } };
          return lbe;
        }),
        load_balancing_weight: u32(Math.max(1, g.weight)),
      };
      if (g.priority > 0) out.priority = g.priority;
      return out;
    }),
  };
}

/** True when the result depends on the proxy's locality or labels (then it cannot be shared by cache key). */
export function isProxyDependent(policy: EffectivePolicy, mesh: MeshConfig): boolean {
  const lb = policy.loadBalancer?.localityLbSetting ?? mesh.localityLbSetting;
  if (lb?.enabled === false) return false;
  return (lb?.distribute?.length ?? 0) > 0 || (policy.outlierDetection !== undefined);
}

/**
 * Istio's locality load balancing: `distribute` reweights localities seen
 * from the proxy's locality; failover (only with outlier detection, which is
 * what ejects the failed endpoints) orders localities into priorities by how
 * close they are, or by failoverPriority labels.
 */
function applyLocalityPolicy(groups: LocalityGroup[], input: LoadAssignmentInput): LocalityGroup[] {
  const setting = input.policy.loadBalancer?.localityLbSetting ?? input.mesh.localityLbSetting;
  const own = input.proxy.workload?.locality;
  if (!own || setting?.enabled === false || groups.length === 0) return groups;
  const rule = setting?.distribute?.find((d) => localityMatches(d.from ?? '*', own));
  if (rule?.to) {
    const total = new Map<string, number>();
    for (const pattern of Object.keys(rule.to)) {
      total.set(pattern, groups.filter((g) => localityMatches(pattern, g.locality)).reduce((n, g) => n + g.endpoints.length, 0));
    }
    for (const g of groups) {
      let w = 0;
      for (const [pattern, percent] of Object.entries(rule.to)) {
        if (localityMatches(pattern, g.locality)) w += (percent * g.endpoints.length) / total.get(pattern)!;
      }
      g.weight = Math.round(w);
    }
    return groups.filter((g) => g.weight > 0);
  }
  if (!input.policy.outlierDetection) return groups;
  const labels = setting?.failoverPriority ?? [];
  for (const g of groups) {
    if (labels.length > 0) {
      const proxyLabels = input.proxy.labels;
      // Endpoints of one locality may differ in labels; the best-matching one places the group.
      const matched = Math.max(...g.endpoints.map((ep) => {
        let n = 0;
        for (const key of labels) {
          if (ep.workload.labels[key] !== undefined && ep.workload.labels[key] === proxyLabels[key]) n++;
          else break;
        }
        return n;
      }));
      g.priority = labels.length - matched;
    } else {
      const l = g.locality;
      if (l.region === own.region && l.zone === own.zone && l.subzone === own.subzone) g.priority = 0;
      else if (l.region === own.region && l.zone === own.zone) g.priority = 1;
      else if (l.region === own.region) g.priority = 2;
      else if ((setting?.failover ?? []).some((f) => f.from === own.region && f.to === l.region)) g.priority = 3;
      else g.priority = 4;
    }
  }
  // Envoy wants priorities numbered from 0 without gaps.
  const used = [...new Set(groups.map((g) => g.priority))].sort((a, b) => a - b);
  for (const g of groups) g.priority = used.indexOf(g.priority);
  return groups;
}
