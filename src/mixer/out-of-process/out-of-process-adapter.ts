// An out-of-process adapter as an AdapterInfo, so the dispatch table builds
// its handlers exactly like compiled-in ones: the `adapter` object
// (config.istio.io/v1alpha2) gives the name, description and templates and
// the params schema; the handler's `connection` gives where it runs.

import type { AdapterInfo } from '../adapters/adapter.ts';
import { durationParam } from '../adapters/adapter.ts';
import type { AdapterConfigCodec } from './adapter-config.ts';
import { descriptorConfigCodec, structConfigCodec } from './adapter-config.ts';
import type { AdapterConnections, AdapterMessageLimits } from './adapter-connections.ts';
import { TEMPLATE_CALLS } from './adapter-protos.ts';
import type { AdapterCallLimits } from './grpc-adapter-handler.ts';
import { DEFAULT_CALL_LIMITS, grpcAdapterHandler } from './grpc-adapter-handler.ts';

/** The spec of an `adapter` object, as users write it (Istio's adapter.yaml from mixgen). */
export interface AdapterSpec {
  readonly description?: string;
  readonly templates?: readonly string[];
  /** base64 google.protobuf.FileDescriptorSet holding the `Params` message. */
  readonly config?: string;
  readonly session_based?: boolean;
  readonly sessionBased?: boolean;
}

/** Where a handler's adapter runs: the handler's `connection`. */
export interface AdapterConnectionSpec {
  readonly address: string;
  /** Duration text (`500ms`); the deadline of every call instead of the defaults. */
  readonly timeout?: string;
}

/** Limits of out-of-process calls (defaults: 4 MiB messages, DEFAULT_CALL_LIMITS). */
export type OutOfProcessLimits = AdapterMessageLimits & AdapterCallLimits;

export const DEFAULT_OUT_OF_PROCESS_LIMITS: OutOfProcessLimits = { maxSendMessageBytes: 4 << 20, maxReceiveMessageBytes: 4 << 20, ...DEFAULT_CALL_LIMITS };

export interface OutOfProcessOptions {
  readonly connections: AdapterConnections;
  readonly limits?: Partial<OutOfProcessLimits>;
}

/**
 * The AdapterInfo of `name` (an adapter object) reached at `connection`.
 * Throws an Error naming what is unusable in the adapter object (its
 * templates, its config descriptor, session_based).
 */
export function outOfProcessAdapter(name: string, spec: AdapterSpec, connection: AdapterConnectionSpec, options: OutOfProcessOptions): AdapterInfo<Record<string, unknown>> {
  const templates = spec.templates ?? [];
  if (templates.length === 0) throw new Error('templates: an adapter declares at least one template');
  for (const t of templates) {
    if (!TEMPLATE_CALLS[t]) throw new Error(`templates: no out-of-process service for template "${t}"; supported are ${Object.keys(TEMPLATE_CALLS).join(', ')}`);
  }
  if (spec.session_based === true || spec.sessionBased === true) throw new Error('session_based: session-based adapters (InfrastructureBackend) are not supported; set session_based: false');
  let codec: AdapterConfigCodec;
  try {
    codec = spec.config ? descriptorConfigCodec(spec.config) : structConfigCodec();
  } catch (err) {
    throw new Error(`config: ${(err as Error).message}`, { cause: err });
  }
  const timeoutMs = connection.timeout === undefined ? undefined : durationParam(connection.timeout);
  const limits: OutOfProcessLimits = {
    ...DEFAULT_OUT_OF_PROCESS_LIMITS,
    ...options.limits,
    ...(timeoutMs !== undefined ? { checkTimeoutMs: timeoutMs, reportTimeoutMs: timeoutMs } : {}),
  };
  return {
    name,
    description: spec.description || `out-of-process adapter (${templates.join(', ')})`,
    templates,
    defaultConfig: {},
    validate(params) {
      const errors = codec.validate(params);
      return errors.length > 0 ? { errors } : { params: { ...params }, errors: [] };
    },
    build(params) {
      const config = codec.pack(params);
      const conn = options.connections.acquire(connection.address, limits);
      return grpcAdapterHandler({ templates, config, connection: conn, limits });
    },
  };
}
