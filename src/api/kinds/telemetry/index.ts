// telemetry.istio.io kinds.
import type { KindDefinition } from '../../kind-registry.ts';
import { telemetryKind } from './telemetry.ts';

export const telemetryKinds: KindDefinition[] = [telemetryKind];
