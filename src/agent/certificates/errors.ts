// Error codes of the agent's certificate handling. Documented in docs/errors.md.

import { MeshError } from '../../common/index.ts';

export const AgentErrorCode = {
  /** The CA refused the CSR or could not be reached; the message carries the CA's status and reason. */
  CA_REQUEST: 'MESH_ERR_AGENT_CA_REQUEST',
  /** The CA's answer is not a usable chain: wrong key, wrong identity, or not leading to the trust bundle. */
  INVALID_CHAIN: 'MESH_ERR_AGENT_INVALID_CHAIN',
  /** The agent's certificate options are invalid (identity, rotation ratio, key type). */
  CONFIG: 'MESH_ERR_AGENT_CONFIG',
} as const;

export class AgentError extends MeshError {}
