// The registered analyzers, in the order `mesh analyze --list-analyzers` prints them.

import type { Analyzer } from '../analyzer.ts';
import { authenticationSelectors } from './authentication-selectors.ts';
import { authorizationPolicies } from './authorization-policies.ts';
import { conflictingMeshGatewayHosts } from './conflicting-mesh-gateway-hosts.ts';
import { destinationRuleSubsets } from './destination-rule-subsets.ts';
import { gatewaySelector } from './gateway-selector.ts';
import { peerAuthentications } from './peer-authentications.ts';
import { servicePortNames } from './service-port-names.ts';
import { sidecarSelector } from './sidecar-selector.ts';
import { virtualServiceDelegates } from './virtual-service-delegates.ts';
import { virtualServiceDestinationHosts } from './virtual-service-destination-hosts.ts';
import { virtualServiceDestinationRules } from './virtual-service-destination-rules.ts';
import { virtualServiceGateways } from './virtual-service-gateways.ts';

const registered: readonly Analyzer[] = [
  authorizationPolicies,
  authenticationSelectors,
  destinationRuleSubsets,
  gatewaySelector,
  peerAuthentications,
  servicePortNames,
  sidecarSelector,
  conflictingMeshGatewayHosts,
  virtualServiceDelegates,
  virtualServiceDestinationHosts,
  virtualServiceDestinationRules,
  virtualServiceGateways,
];

// Two analyzers with one name would make --list-analyzers and selection ambiguous: fail at load.
const names = new Set<string>();
for (const a of registered) {
  if (names.has(a.name)) throw new Error(`analyzer ${a.name} is registered twice`);
  names.add(a.name);
}

/** Every analyzer `analyze` runs by default. */
export function allAnalyzers(): readonly Analyzer[] {
  return registered;
}

/** The same list, under the name `mesh analyze --list-analyzers` uses. */
export const listAnalyzers = allAnalyzers;
