// Error codes of Pilot's service registry (adapters, live registration).
// Documented in docs/errors.md.

import { MeshError } from '../../common/index.ts';

export const RegistryErrorCode = {
  /** A live registration is malformed (missing name, namespace or address; a port out of range). */
  INVALID_REGISTRATION: 'MESH_ERR_REGISTRY_INVALID_REGISTRATION',
  /** A registration names a WorkloadGroup that does not exist in its namespace. */
  UNKNOWN_GROUP: 'MESH_ERR_REGISTRY_UNKNOWN_GROUP',
  /** The caller's identity may not register (or heartbeat) this workload. */
  UNAUTHORIZED: 'MESH_ERR_REGISTRY_UNAUTHORIZED',
  /** A registration would shadow a WorkloadEntry of the same namespace and name. */
  CONFLICT: 'MESH_ERR_REGISTRY_CONFLICT',
  /** The registry was used after stop(). */
  STOPPED: 'MESH_ERR_REGISTRY_STOPPED',
  /** Two registries with one name were added to an aggregate. */
  DUPLICATE: 'MESH_ERR_REGISTRY_DUPLICATE',
} as const;

export class RegistryError extends MeshError {}
