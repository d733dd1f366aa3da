// networking.istio.io kinds.
import type { KindDefinition } from '../../kind-registry.ts';

export const networkingKinds: KindDefinition[] = [];
