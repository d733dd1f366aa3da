// Error codes of the proxy. Expected failures of config (what a NACK carries)
// are ProxyConfigErrors naming the resource and field; the rest are boot errors.

import { MeshError } from '../common/index.ts';

export const ProxyErrorCode = {
  /** A resource (Listener, Cluster, RouteConfiguration, ...) failed validation. */
  INVALID_CONFIG: 'MESH_ERR_PROXY_INVALID_CONFIG',
  /** A typed_config names a type URL no extension is registered for. */
  UNKNOWN_EXTENSION: 'MESH_ERR_PROXY_UNKNOWN_EXTENSION',
  /** Two extensions claim the same type URL: a programming error found at boot. */
  DUPLICATE_EXTENSION: 'MESH_ERR_PROXY_DUPLICATE_EXTENSION',
  /** The bootstrap file could not be read or parsed. */
  BOOTSTRAP: 'MESH_ERR_PROXY_BOOTSTRAP',
  /** A listener could not bind its address. */
  BIND: 'MESH_ERR_PROXY_BIND',
} as const;

/** A config problem at `path` (e.g. `Listener "l1" filter_chains[0].filters[0]`). */
export class ProxyConfigError extends MeshError {
  constructor(message: string, code: string = ProxyErrorCode.INVALID_CONFIG) {
    super(code, message);
    this.name = 'ProxyConfigError';
  }
}

export function configError(path: string, problem: string): ProxyConfigError {
  return new ProxyConfigError(`${path}: ${problem}`);
}
