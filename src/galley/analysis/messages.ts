// The catalogue of analysis messages: Istio's codes, names, levels and message
// texts (pkg/config/analysis/msg/messages.yaml), plus a few of the mesh's own
// (MESH01xx) for checks Istio's analyzers do not make. One table, so the docs
// and `mesh analyze` can list every code.

export type AnalysisLevel = 'Error' | 'Warning' | 'Info';

/** One kind of message. `code` is stable: users grep for it and docs link to it. */
export interface MessageType {
  readonly code: string;
  readonly name: string;
  readonly level: AnalysisLevel;
  readonly description: string;
}

function type(code: string, name: string, level: AnalysisLevel, description: string): MessageType {
  return { code, name, level, description };
}

export const MessageTypes = {
  ReferencedResourceNotFound: type('IST0101', 'ReferencedResourceNotFound', 'Error', 'A resource being referenced does not exist.'),
  ConflictingMeshGatewayVirtualServiceHosts: type('IST0109', 'ConflictingMeshGatewayVirtualServiceHosts', 'Error', 'Conflicting hosts on VirtualServices associated with mesh gateway'),
  ConflictingSidecarWorkloadSelectors: type('IST0110', 'ConflictingSidecarWorkloadSelectors', 'Error', 'A Sidecar resource selects the same workloads as another Sidecar resource'),
  MultipleSidecarsWithoutWorkloadSelectors: type('IST0111', 'MultipleSidecarsWithoutWorkloadSelectors', 'Error', 'More than one sidecar resource in a namespace has no workload selector'),
  VirtualServiceDestinationPortSelectorRequired: type('IST0112', 'VirtualServiceDestinationPortSelectorRequired', 'Error', 'A VirtualService routes to a service with more than one port exposed, but does not specify which to use.'),
  PortNameIsNotUnderNamingConvention: type('IST0118', 'PortNameIsNotUnderNamingConvention', 'Info', 'Port name is not under naming convention. Protocol detection is applied to the port.'),
  NoMatchingWorkloadsFound: type('IST0127', 'NoMatchingWorkloadsFound', 'Warning', "There aren't workloads matching the resource labels"),
  VirtualServiceHostNotFoundInGateway: type('IST0132', 'VirtualServiceHostNotFoundInGateway', 'Warning', 'Host defined in VirtualService not found in Gateway.'),
  DestinationRuleSubsetNotSelectPods: type('IST0173', 'DestinationRuleSubsetNotSelectPods', 'Error', 'A subset of a DestinationRule does not select any pods.'),
  UnknownDestinationRuleHost: type('IST0174', 'UnknownDestinationRuleHost', 'Warning', 'The host of a DestinationRule does not match any service in the mesh.'),
  // The mesh's own: checks Istio makes at admission or not at all.
  AuthorizationPolicyPortNotFound: type('MESH0101', 'AuthorizationPolicyPortNotFound', 'Warning', 'An AuthorizationPolicy names a port that no workload or service it applies to exposes.'),
  PortLevelMtlsWithoutSelector: type('MESH0102', 'PortLevelMtlsWithoutSelector', 'Error', 'A PeerAuthentication sets portLevelMtls but has no workload selector, so the port-level settings apply to nothing.'),
  ConflictingPeerAuthentications: type('MESH0103', 'ConflictingPeerAuthentications', 'Warning', 'More than one mesh-wide (or namespace-wide) PeerAuthentication; only the oldest takes effect.'),
} as const satisfies Record<string, MessageType>;

export type MessageTypeName = keyof typeof MessageTypes;

/** Every message type, ordered by code. */
export function allMessageTypes(): MessageType[] {
  return Object.values(MessageTypes).sort((a, b) => (a.code < b.code ? -1 : a.code > b.code ? 1 : 0));
}

/** Go's %q for the plain strings analyzers quote: a double-quoted, escaped string. */
export function quote(value: string): string {
  return JSON.stringify(value);
}

/** The page that explains a code: Istio's for IST codes, the mesh's docs for its own. */
export function documentationUrl(code: string): string {
  return code.startsWith('IST') ? `https://istio.io/latest/docs/reference/config/analysis/${code.toLowerCase()}/` : `docs/analysis.md#${code.toLowerCase()}`;
}
