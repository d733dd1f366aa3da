// Istio's names for generated resources: what `istioctl proxy-config` shows
// and what users grep for, so they are built in exactly one place.

export const PASSTHROUGH_CLUSTER = 'PassthroughCluster';
export const BLACKHOLE_CLUSTER = 'BlackHoleCluster';
export const INBOUND_PASSTHROUGH_CLUSTER = 'InboundPassthroughClusterIpv4';
export const VIRTUAL_OUTBOUND_LISTENER = 'virtualOutbound';
export const VIRTUAL_INBOUND_LISTENER = 'virtualInbound';
export const SDS_CLUSTER = 'sds-grpc';
export const SDS_DEFAULT_SECRET = 'default';
export const SDS_ROOT_SECRET = 'ROOTCA';
export const ISTIO_ALPN = ['istio-peer-exchange', 'istio'] as const;

/** `outbound|9080|v1|reviews.default.svc.cluster.local` */
export function outboundClusterName(port: number, subset: string, hostname: string): string {
  return `outbound|${port}|${subset}|${hostname}`;
}

/** `inbound|9080||`: modern Istio leaves the subset and host parts empty. */
export function inboundClusterName(port: number): string {
  return `inbound|${port}||`;
}

export interface ParsedClusterName {
  readonly direction: 'outbound' | 'inbound';
  readonly port: number;
  readonly subset: string;
  readonly hostname: string;
}

export function parseClusterName(name: string): ParsedClusterName | undefined {
  const parts = name.split('|');
  if (parts.length !== 4 || (parts[0] !== 'outbound' && parts[0] !== 'inbound')) return undefined;
  const port = Number(parts[1]);
  if (!Number.isInteger(port)) return undefined;
  return { direction: parts[0], port, subset: parts[2]!, hostname: parts[3]! };
}

/** SNI a sidecar sends to an ISTIO_MUTUAL upstream: `outbound_.9080_.v1_.reviews.default.svc.cluster.local`. */
export function istioSni(port: number, subset: string, hostname: string): string {
  return `outbound_.${port}_.${subset}_.${hostname}`;
}

/** `0.0.0.0_9080` */
export function listenerName(address: string, port: number): string {
  return `${address}_${port}`;
}

/** Proxyless gRPC resources are named `host:port`, the target the client dialled. */
export function grpcTargetName(hostname: string, port: number): string {
  return `${hostname}:${port}`;
}

/** Gateway route config names: `http.8080`, `https.443.https.bookinfo-gateway.default`. */
export function gatewayRouteName(protocol: string, port: number, tls?: { portName: string; gateway: string; namespace: string }): string {
  const base = `${protocol.toLowerCase() === 'https' || tls ? 'https' : 'http'}.${port}`;
  return tls ? `${base}.${tls.portName}.${tls.gateway}.${tls.namespace}` : base;
}
