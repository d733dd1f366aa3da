// Error codes of Citadel (the CA, its key material and its signing service).
// Documented in docs/errors.md.

import { MeshError } from '../common/mesh-error.ts';

export const CitadelErrorCode = {
  /** The CA's key and certificates (self-signed in the data dir, or plugged-in cacerts) are unreadable or inconsistent. */
  CA_MATERIAL: 'MESH_ERR_CITADEL_CA_MATERIAL',
  /** The CSR is not a PEM PKCS#10 request, its signature is wrong, or it names no SPIFFE identity. */
  INVALID_CSR: 'MESH_ERR_CITADEL_INVALID_CSR',
  /** The caller proved no identity: no credential, or an expired, foreign or malformed one. */
  UNAUTHENTICATED: 'MESH_ERR_CITADEL_UNAUTHENTICATED',
  /** The CSR asks for an identity other than the caller's. */
  IDENTITY_MISMATCH: 'MESH_ERR_CITADEL_IDENTITY_MISMATCH',
  /** The requested validity is negative or above the CA's maximum. */
  INVALID_TTL: 'MESH_ERR_CITADEL_INVALID_TTL',
  /** Signing failed inside the CA. */
  SIGNING: 'MESH_ERR_CITADEL_SIGNING',
  /** Citadel's options are invalid (trust domain, TTLs, key type). */
  CONFIG: 'MESH_ERR_CITADEL_CONFIG',
} as const;

export type CitadelErrorCodeValue = (typeof CitadelErrorCode)[keyof typeof CitadelErrorCode];

export class CitadelError extends MeshError {}
