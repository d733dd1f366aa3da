// Every kind the mesh accepts, in one registry.
import { KindRegistry } from '../kind-registry.ts';
import { coreKinds } from './core/index.ts';
import { networkingKinds } from './networking/index.ts';
import { policyKinds } from './policy/index.ts';
import { securityKinds } from './security/index.ts';
import { telemetryKinds } from './telemetry/index.ts';

export function createKindRegistry(): KindRegistry {
  return new KindRegistry([...networkingKinds, ...securityKinds, ...telemetryKinds, ...policyKinds, ...coreKinds]);
}

/** The registry with all of Istio's kinds; shared, never mutated after start-up. */
export const istioKinds: KindRegistry = createKindRegistry();
