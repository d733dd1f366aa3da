// The base of every error the mesh raises on purpose: a stable code
// (`MESH_ERR_<AREA>_<WHAT>`) that scripts and tests can rely on, a message for
// people, and the cause when one error wraps another.

export class MeshError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MeshError';
    this.code = code;
  }
}

export function isMeshError(err: unknown, code?: string): err is MeshError {
  return err instanceof MeshError && (code === undefined || err.code === code);
}
