// networking.istio.io kinds: traffic routing (VirtualService, DestinationRule,
// Gateway), the service registry (ServiceEntry, WorkloadEntry, WorkloadGroup)
// and per-workload proxy scope (Sidecar).
import type { KindDefinition } from '../../kind-registry.ts';
import { destinationRuleKind } from './destination-rule.ts';
import { gatewayKind } from './gateway.ts';
import { serviceEntryKind } from './service-entry.ts';
import { sidecarKind } from './sidecar.ts';
import { virtualServiceKind } from './virtual-service.ts';
import { workloadEntryKind } from './workload-entry.ts';
import { workloadGroupKind } from './workload-group.ts';

export const networkingKinds: KindDefinition[] = [
  virtualServiceKind,
  destinationRuleKind,
  gatewayKind,
  serviceEntryKind,
  sidecarKind,
  workloadEntryKind,
  workloadGroupKind,
];

export type { VirtualServiceSpec } from './virtual-service.ts';
export type { DestinationRuleSpec } from './destination-rule.ts';
export type { GatewaySpec } from './gateway.ts';
export type { ServiceEntrySpec } from './service-entry.ts';
export type { SidecarSpec } from './sidecar.ts';
export type { WorkloadEntrySpec } from './workload-entry.ts';
export type { WorkloadGroupSpec } from './workload-group.ts';
