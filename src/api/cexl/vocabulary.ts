// The attribute vocabulary: Istio's attribute names and their value types
// (Mixer's "global" attribute manifest, Istio 1.4), extended at run time by
// `attributemanifest` objects. Expressions are type-checked against it.

/** istio.policy.v1beta1.ValueType, plus BYTES (Mixer's bag carried raw bytes too). */
export const ATTRIBUTE_VALUE_TYPES = [
  'STRING', 'INT64', 'DOUBLE', 'BOOL', 'TIMESTAMP', 'IP_ADDRESS', 'EMAIL_ADDRESS', 'URI', 'DNS_NAME', 'DURATION', 'STRING_MAP', 'BYTES',
] as const;
export type ValueType = (typeof ATTRIBUTE_VALUE_TYPES)[number];

/**
 * How each type is held in an attribute bag and in expression results:
 * STRING, EMAIL_ADDRESS, URI, DNS_NAME -> string; IP_ADDRESS -> string in
 * canonical form (`10.0.0.1`, `::1`); INT64, DOUBLE -> number; BOOL -> boolean;
 * TIMESTAMP -> Date; DURATION -> number of milliseconds; STRING_MAP ->
 * ReadonlyMap<string, string>; BYTES -> Uint8Array.
 */
export type AttributeValue = string | number | boolean | Date | ReadonlyMap<string, string> | Uint8Array;

const S = 'STRING';
const I = 'INT64';
const M = 'STRING_MAP';

/** Istio 1.4's attribute vocabulary (https://istio.io/v1.4/docs/reference/config/policy-and-telemetry/attribute-vocabulary/). */
export const BUILTIN_ATTRIBUTES: Readonly<Record<string, ValueType>> = Object.freeze({
  'source.uid': S, 'source.ip': 'IP_ADDRESS', 'source.labels': M, 'source.name': S, 'source.namespace': S,
  'source.principal': S, 'source.owner': S, 'source.workload.uid': S, 'source.workload.name': S, 'source.workload.namespace': S,
  'source.user': S, 'source.port': I,
  'destination.uid': S, 'destination.ip': 'IP_ADDRESS', 'destination.port': I, 'destination.labels': M, 'destination.metadata': M,
  'destination.owner': S, 'destination.name': S, 'destination.container.name': S, 'destination.container.image': S,
  'destination.namespace': S, 'destination.principal': S,
  'destination.service.uid': S, 'destination.service.name': S, 'destination.service.namespace': S, 'destination.service.host': 'DNS_NAME',
  'destination.workload.uid': S, 'destination.workload.name': S, 'destination.workload.namespace': S,
  'request.headers': M, 'request.id': S, 'request.path': S, 'request.url_path': S, 'request.query_params': M, 'request.host': S,
  'request.method': S, 'request.reason': S, 'request.referer': S, 'request.scheme': S, 'request.size': I, 'request.total_size': I,
  'request.time': 'TIMESTAMP', 'request.useragent': S,
  'request.auth.principal': S, 'request.auth.audiences': S, 'request.auth.presenter': S, 'request.auth.claims': M, 'request.auth.raw_claims': S,
  'request.api_key': S,
  'response.headers': M, 'response.size': I, 'response.total_size': I, 'response.time': 'TIMESTAMP', 'response.duration': 'DURATION',
  'response.code': I, 'response.grpc_status': S, 'response.grpc_message': S,
  'connection.id': S, 'connection.event': S, 'connection.received.bytes': I, 'connection.received.bytes_total': I,
  'connection.sent.bytes': I, 'connection.sent.bytes_total': I, 'connection.duration': 'DURATION', 'connection.mtls': 'BOOL',
  'connection.requested_server_name': S,
  'context.protocol': S, 'context.time': 'TIMESTAMP', 'context.reporter.kind': S, 'context.reporter.uid': S, 'context.proxy_error_code': S,
  'api.service': S, 'api.version': S, 'api.operation': S, 'api.protocol': S,
  'origin.ip': 'IP_ADDRESS', 'origin.uid': S, 'origin.user': S,
  'rbac.permissive.response_code': S, 'rbac.permissive.effective_policy_id': S,
  'check.error_code': I, 'check.error_message': S, 'check.cache_hit': 'BOOL', 'quota.cache_hit': 'BOOL',
});

/** The first word of every built-in attribute: a name under one of these that the vocabulary lacks is a typo. */
export const BUILTIN_ROOTS: ReadonlySet<string> = new Set(Object.keys(BUILTIN_ATTRIBUTES).map((n) => n.split('.')[0]!));

/**
 * An immutable attribute vocabulary. Contract: `typeOf` answers in O(1);
 * `extend` returns a new vocabulary and reports names whose type would change
 * (a manifest may add attributes, never retype an existing one).
 */
export class AttributeVocabulary {
  readonly #types: ReadonlyMap<string, ValueType>;

  constructor(types: Iterable<readonly [string, ValueType]>) {
    this.#types = new Map(types);
    Object.freeze(this);
  }

  static builtin(): AttributeVocabulary {
    return BUILTIN_VOCABULARY;
  }

  typeOf(name: string): ValueType | undefined {
    return this.#types.get(name);
  }

  has(name: string): boolean {
    return this.#types.has(name);
  }

  names(): string[] {
    return [...this.#types.keys()];
  }

  /** This vocabulary plus `more`; conflicts (same name, other type) are reported and the existing type kept. */
  extend(more: Iterable<readonly [string, ValueType]>): { vocabulary: AttributeVocabulary; conflicts: string[] } {
    const next = new Map(this.#types);
    const conflicts: string[] = [];
    for (const [name, type] of more) {
      const existing = next.get(name);
      if (existing !== undefined && existing !== type) conflicts.push(`${name}: declared ${type}, already ${existing}`);
      else next.set(name, type);
    }
    return { vocabulary: new AttributeVocabulary(next), conflicts };
  }
}

const BUILTIN_VOCABULARY = new AttributeVocabulary(Object.entries(BUILTIN_ATTRIBUTES));
