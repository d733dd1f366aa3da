// What a Mixer adapter is (STYLE.md): it declares its name, the templates it
// handles and its default params, validates params, builds a handler, and the
// handler is disposable. Adapters never start timers: time comes from the
// injected clock, and anything periodic is driven by Mixer.

import type { AttributeValue } from '../../api/index.ts';
import type { Registry } from '../../common/index.ts';

/** A value of an instance field: an attribute value, a map of them (dimensions), or a nested object. */
export type InstanceField = AttributeValue | ReadonlyMap<string, AttributeValue> | InstanceValue;

/** An instance built for one request: the template's fields evaluated against the bag (absent ones left out). */
export interface InstanceValue {
  readonly [field: string]: InstanceField;
}

/** The declared types of an instance's fields (ValueType names or ANY), mirroring `fields`; a map field is an object keyed by entry name. */
export interface InstanceFieldTypes {
  readonly [field: string]: string | InstanceFieldTypes;
}

export interface Instance {
  /** `name.namespace` of the instance object. */
  readonly name: string;
  readonly template: string;
  readonly fields: InstanceValue;
  /**
   * The expressions' static types, shared by every instance of one instance
   * object (no per-request cost). Out-of-process adapters need them to pick
   * the wire type (an IP_ADDRESS and a STRING are both strings here).
   */
  readonly types?: InstanceFieldTypes;
}

/** gRPC status codes used by check results. */
export const StatusCode = { OK: 0, CANCELLED: 1, INVALID_ARGUMENT: 3, NOT_FOUND: 5, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, UNAVAILABLE: 14, UNAUTHENTICATED: 16 } as const;

/** The outcome of one check: a status plus how long and how often the proxy may reuse it. */
export interface CheckResult {
  readonly code: number;
  readonly message: string;
  readonly validDurationMs: number;
  readonly validUseCount: number;
}

export interface QuotaArgs {
  readonly amount: number;
  /** Grant what is left instead of nothing when less than `amount` remains. */
  readonly bestEffort: boolean;
}

export interface QuotaResult {
  readonly granted: number;
  readonly validDurationMs: number;
}

/**
 * A configured adapter. Contract: each method may be absent when the adapter
 * handles no template of that variety; handleCheck/handleQuota are called on
 * the request path and must answer quickly; close releases what build took.
 */
export interface Handler {
  handleCheck?(instance: Instance): CheckResult | Promise<CheckResult>;
  handleQuota?(instance: Instance, args: QuotaArgs): QuotaResult | Promise<QuotaResult>;
  handleReport?(instances: readonly Instance[]): void | Promise<void>;
  close(): void | Promise<void>;
}

/** What Mixer gives an adapter to build with. */
export interface AdapterEnv {
  /** Milliseconds since the epoch; a fake in tests. */
  now(): number;
  /** The registry adapters that export metrics (prometheus) register into. */
  readonly metrics: Registry;
  /** Where line-oriented adapters (stdio) write. */
  write(stream: 'stdout' | 'stderr', line: string): void;
  /** The handler's `name.namespace`, for log lines. */
  readonly handlerName: string;
}

/** A problem with a handler's params, at a path relative to `params`. */
export interface ParamError {
  readonly path: string;
  readonly message: string;
}

export interface AdapterInfo<P = unknown> {
  readonly name: string;
  readonly description: string;
  /** Templates the adapter's handlers accept (`checknothing`, `metric`, ...). */
  readonly templates: readonly string[];
  readonly defaultConfig: P;
  /** Params merged over defaultConfig and checked; errors name their path. */
  validate(params: Readonly<Record<string, unknown>>): { params?: P; errors: ParamError[] };
  build(params: P, env: AdapterEnv): Handler;
}

/** Reads google.protobuf.Duration text (`10s`, `1.5s`, `100ms`) or a number of ms; undefined when malformed. */
export function durationParam(v: unknown): number | undefined {
  if (typeof v === 'number' && v >= 0) return v;
  if (typeof v !== 'string') return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v);
  if (!m) return undefined;
  return Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as Record<string, number>)[m[2]!]!;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
