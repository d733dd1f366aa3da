// Runtime: starts the control plane (and, later, sidecars and apps) on one host.
export { ControlPlane } from './control-plane.ts';
export type { ControlPlaneOptions, ControlPlanePorts } from './control-plane.ts';
