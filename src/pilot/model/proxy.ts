// A connected xDS client as Pilot sees it: a sidecar, a gateway (router), or a
// proxyless gRPC client, parsed from the Node of its first DiscoveryRequest.

import type { WorkloadInstance } from './service.ts';

export type ProxyType = 'sidecar' | 'router';

export interface ProxyNode {
  /** `sidecar~10.0.0.1~reviews-v1-abc.default~default.svc.cluster.local` */
  readonly id: string;
  readonly type: ProxyType;
  readonly ipAddresses: readonly string[];
  /** `reviews-v1-abc.default`: workload name and namespace. */
  readonly workloadName: string;
  readonly namespace: string;
  /** DNS domain, `default.svc.cluster.local`. */
  readonly dnsDomain: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Node metadata as sent (Istio's keys: NAMESPACE, LABELS, GENERATOR, CLUSTER_ID, ...). */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** `grpc` for proxyless gRPC clients (metadata GENERATOR); undefined for Envoy-style proxies. */
  readonly generator?: string;
  /** The workload this proxy fronts, when the registry knows it. */
  readonly workload?: WorkloadInstance;
}

/** Parses Istio's node id `TYPE~IP~NAME.NAMESPACE~NAMESPACE.svc.cluster.local`; undefined when malformed. */
export function parseNodeId(id: string): { type: ProxyType; ip: string; workloadName: string; namespace: string; dnsDomain: string } | undefined {
  const parts = id.split('~');
  if (parts.length !== 4) return undefined;
  const [type, ip, podAndNs, domain] = parts as [string, string, string, string];
  if (type !== 'sidecar' && type !== 'router') return undefined;
  const dot = podAndNs.lastIndexOf('.');
  const namespace = dot > 0 ? podAndNs.slice(dot + 1) : (domain.split('.')[0] ?? '');
  return { type, ip, workloadName: podAndNs, namespace, dnsDomain: domain };
}
