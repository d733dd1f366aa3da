// Runtime: starts the control plane, sidecars (agent + proxy) and apps on one host.
export { ControlPlane } from './control-plane.ts';
export type { ControlPlaneOptions, ControlPlanePorts } from './control-plane.ts';
export { MeshUp, meshDown } from './mesh-up.ts';
export type { MeshUpOptions, PidFile } from './mesh-up.ts';
export { loadTopology } from './topology.ts';
export type { Topology, TopologyService, TopologyVersion } from './topology.ts';
export * from './sidecar/index.ts';
