// Who is on the other end of a stream: the Node of the first request turned
// into Pilot's ProxyNode. Node metadata arrives as a google.protobuf.Struct
// (decoded by proto-loader into `{ fields: { KEY: { kind, stringValue, ... } } }`)
// and is flattened to plain JSON first, so Istio's keys read naturally.

import { MeshError } from '../../common/index.ts';
import type { NodeMessage } from '../../xds/index.ts';
import type { ProxyNode } from '../model/index.ts';
import { parseNodeId } from '../model/index.ts';

export type ResolveProxy = (node: NodeMessage) => ProxyNode;

/** Thrown for a node Pilot cannot serve; the stream ends with INVALID_ARGUMENT. */
export class InvalidNodeError extends MeshError {
  constructor(message: string) {
    super('MESH_ERR_PILOT_INVALID_NODE', message);
    this.name = 'InvalidNodeError';
  }
}

// protobufjs registers google.protobuf.Struct itself, with camelCase field
// names, before our keepCase protos load; so Struct values decode as
// `stringValue` even though Envoy's own messages keep snake_case. Both are read.
type StructValue = Record<string, unknown> & { kind?: string };

const KINDS: Record<string, 'null' | 'number' | 'string' | 'bool' | 'struct' | 'list'> = {
  null_value: 'null', nullValue: 'null',
  number_value: 'number', numberValue: 'number',
  string_value: 'string', stringValue: 'string',
  bool_value: 'bool', boolValue: 'bool',
  struct_value: 'struct', structValue: 'struct',
  list_value: 'list', listValue: 'list',
};

/** A decoded google.protobuf.Struct as plain JSON; plain objects pass through. */
export function structToJson(struct: unknown): Record<string, unknown> {
  if (!struct || typeof struct !== 'object') return {};
  const fields = (struct as { fields?: unknown }).fields;
  // Already plain JSON (e.g. a resolveProxy caller building nodes by hand).
  if (!fields || typeof fields !== 'object') return { ...(struct as Record<string, unknown>) };
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields as Record<string, StructValue>)) out[key] = valueToJson(value);
  return out;
}

function valueToJson(value: StructValue | null | undefined): unknown {
  if (!value || typeof value !== 'object') return null;
  // `kind` names the set oneof member; with defaults on, every member is present, so it decides.
  let field = typeof value.kind === 'string' ? value.kind : undefined;
  field ??= Object.keys(value).find((k) => KINDS[k] && value[k] !== undefined && value[k] !== null);
  if (!field) return null;
  const v = value[field];
  switch (KINDS[field]) {
    case 'string':
    case 'number':
    case 'bool':
      return v;
    case 'struct':
      return structToJson(v);
    case 'list':
      return (((v as { values?: StructValue[] } | null)?.values) ?? []).map(valueToJson);
    default:
      return null;
  }
}

function stringRecord(value: unknown): Record<string, string> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) if (typeof v === 'string') out[k] = v;
  return out;
}

/**
 * The default resolver: Istio's node id `TYPE~IP~NAME.NAMESPACE~DOMAIN` plus
 * metadata NAMESPACE, LABELS, GENERATOR and INSTANCE_IPS (comma separated),
 * which win over what the id says.
 */
export function defaultResolveProxy(node: NodeMessage): ProxyNode {
  const id = node.id ?? '';
  const parsed = parseNodeId(id);
  if (!parsed) throw new InvalidNodeError(`node id "${id}" is not TYPE~IP~NAME.NAMESPACE~DOMAIN with TYPE sidecar or router`);
  const metadata = structToJson(node.metadata);
  const ips = typeof metadata.INSTANCE_IPS === 'string' ? metadata.INSTANCE_IPS.split(',').map((s) => s.trim()).filter(Boolean) : [];
  const namespace = typeof metadata.NAMESPACE === 'string' && metadata.NAMESPACE ? metadata.NAMESPACE : parsed.namespace;
  const generator = typeof metadata.GENERATOR === 'string' && metadata.GENERATOR ? metadata.GENERATOR : undefined;
  return {
    id,
    type: parsed.type,
    ipAddresses: ips.length > 0 ? ips : [parsed.ip],
    workloadName: parsed.workloadName,
    namespace,
    dnsDomain: parsed.dnsDomain,
    labels: stringRecord(metadata.LABELS),
    metadata,
    ...(generator ? { generator } : {}),
  };
}
