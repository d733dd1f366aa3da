// Error codes of Mixer (config, adapters, data path, client). Documented in docs/errors.md.

import { MeshError } from '../common/mesh-error.ts';

export const MixerErrorCode = {
  /** A handler, instance, rule or QuotaSpec in a snapshot is unusable (bad reference, type error); the last good table stays. */
  CONFIG: 'MESH_ERR_MIXER_CONFIG',
  /** A handler names an adapter Mixer does not have. */
  UNKNOWN_ADAPTER: 'MESH_ERR_MIXER_UNKNOWN_ADAPTER',
  /** A handler's params are rejected by its adapter. */
  ADAPTER_PARAMS: 'MESH_ERR_MIXER_ADAPTER_PARAMS',
  /** Two adapters registered under one name: a programming error found at start-up. */
  DUPLICATE_ADAPTER: 'MESH_ERR_MIXER_DUPLICATE_ADAPTER',
  /** An attribute value does not fit its declared type (client input, report decoding). */
  ATTRIBUTE: 'MESH_ERR_MIXER_ATTRIBUTE',
  /** An RLS call's x-mesh-quota-prefetch metadata is not an allotment Mixer grants (1..100000). */
  QUOTA_PREFETCH: 'MESH_ERR_MIXER_QUOTA_PREFETCH',
  /** The redisquota adapter's Redis did not answer in time (down, unreachable or stuck); its quotas are denied meanwhile. */
  REDIS_UNAVAILABLE: 'MESH_ERR_MIXER_REDIS_UNAVAILABLE',
  /** A call to an out-of-process adapter failed (unreachable, deadline, message too large, handler closed); a check fails closed. */
  ADAPTER_CALL: 'MESH_ERR_MIXER_ADAPTER_CALL',
  /** A ReportRequest is malformed (a word index that does not exist, dictionaries out of sync) or past a bound (sets, words, attributes, map entries, bytes); it is rejected whole with INVALID_ARGUMENT. */
  REPORT: 'MESH_ERR_MIXER_REPORT',
  /** A Mixer RPC failed (client side). */
  RPC: 'MESH_ERR_MIXER_RPC',
} as const;

export class MixerError extends MeshError {}
