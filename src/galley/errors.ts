// Error codes of Galley (config store, ingestion, distribution). Documented in docs/errors.md.

import { MeshError } from '../common/mesh-error.ts';

export const GalleyErrorCode = {
  /** The object's resourceVersion does not match the stored one. */
  CONFLICT: 'MESH_ERR_GALLEY_CONFLICT',
  /** The object does not exist. */
  NOT_FOUND: 'MESH_ERR_GALLEY_NOT_FOUND',
  /** The store does not accept writes (a watched directory). */
  READ_ONLY: 'MESH_ERR_GALLEY_READ_ONLY',
  /** The store's files are unreadable or damaged. */
  STORAGE: 'MESH_ERR_GALLEY_STORAGE',
  /** The store was used after close. */
  CLOSED: 'MESH_ERR_GALLEY_CLOSED',
} as const;

export class GalleyError extends MeshError {}
