// Public surface of Pilot's config generation: the push context and the xDS
// generators (LDS, RDS, CDS, EDS) for sidecars, gateways and proxyless gRPC.
export { buildPushContext, PushContext, MESH_GATEWAY, VIRTUAL_SERVICE_TYPE, DESTINATION_RULE_TYPE, GATEWAY_TYPE, SIDECAR_TYPE } from '../push-context.ts';
export type { PushContextOptions, ResolvedVirtualService, ResolvedDestinationRule, ResolvedGateway, ResolvedSidecar } from '../push-context.ts';
export { ListenerGenerator, RouteGenerator, ClusterGenerator, EndpointGenerator, createGenerators, isGrpcClient } from './generators.ts';
export { resolveHost, hostMatches, isVisible } from './hosts.ts';
export {
  outboundClusterName,
  inboundClusterName,
  parseClusterName,
  PASSTHROUGH_CLUSTER,
  BLACKHOLE_CLUSTER,
  INBOUND_PASSTHROUGH_CLUSTER,
  VIRTUAL_OUTBOUND_LISTENER,
  VIRTUAL_INBOUND_LISTENER,
} from './names.ts';
export { OUTBOUND_CAPTURE_PORT, INBOUND_CAPTURE_PORT } from './sidecar-listeners.ts';
export { TELEMETRY_TYPE, metricsEnabled, telemetryFilters } from './telemetry-filters.ts';
export { INTERCEPTION_MODE_KEY, OUTBOUND_PORTS_KEY, INBOUND_PORTS_KEY, isNoCapture } from './no-capture-listeners.ts';
