// Error codes of the config API. Each code is documented in docs/errors.md.

import { MeshError } from '../common/mesh-error.ts';

export const ApiErrorCode = {
  /** An object failed structural or semantic validation. */
  INVALID: 'MESH_ERR_API_INVALID',
  /** A document is not YAML or JSON, or not an object. */
  PARSE: 'MESH_ERR_API_PARSE',
  /** apiVersion/kind names no kind the mesh knows. */
  UNKNOWN_KIND: 'MESH_ERR_API_UNKNOWN_KIND',
} as const;

export class ApiError extends MeshError {}
