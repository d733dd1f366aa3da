// config.istio.io/v1alpha2 kinds (Mixer's handler, instance, rule, ...).
import type { KindDefinition } from '../../kind-registry.ts';

export const policyKinds: KindDefinition[] = [];
