// The sidecar process (agent + proxy) of the mesh runtime.
export { Sidecar, buildBootstrap } from './sidecar.ts';
export type { SidecarOptions, SidecarStatus } from './sidecar.ts';
export { runSidecar } from './run-sidecar.ts';
export { ControlPlaneClient, serviceEntryFor } from './control-plane-client.ts';
export type { MeshServiceInfo, RuntimeInfo } from './control-plane-client.ts';
