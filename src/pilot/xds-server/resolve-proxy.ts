// Who is on the other end of a stream: the Node of the first request turned
// into Pilot's ProxyNode. Node metadata arrives as a google.protobuf.Struct
// (decoded by proto-loader into `{ fields: { KEY: { kind, string_value, ... } } }`)
// and is flattened to plain JSON first, so Istio's keys read naturally.

import type { NodeMessage } from '../../xds/index.ts';
import type { ProxyNode } from '../model/index.ts';
import { parseNodeId } from '../model/index.ts';

export type ResolveProxy = (node: NodeMessage) => ProxyNode;

/** Thrown for a node Pilot cannot serve; the stream ends with INVALID_ARGUMENT. */
export class InvalidNodeError extends Error {
  readonly code = 'MESH_ERR_PILOT_INVALID_NODE';
  constructor(message: string) {
    super(message);
    this.name = 'InvalidNodeError';
  }
}

interface StructValue {
  kind?: string;
  null_value?: unknown;
  number_value?: number;
  string_value?: string;
  bool_value?: boolean;
  struct_value?: { fields?: Record<string, StructValue> } | null;
  list_value?: { values?: StructValue[] } | null;
}

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
  if (!value) return null;
  // `kind` names the set oneof member; with defaults on, every member is present, so it decides.
  switch (value.kind) {
    case 'string_value':
      return value.string_value;
    case 'number_value':
      return value.number_value;
    case 'bool_value':
      return value.bool_value;
    case 'struct_value':
      return structToJson(value.struct_value);
    case 'list_value':
      return (value.list_value?.values ?? []).map(valueToJson);
    case 'null_value':
      return null;
    default:
      if (value.string_value !== undefined) return value.string_value;
      if (value.number_value !== undefined) return value.number_value;
      if (value.bool_value !== undefined) return value.bool_value;
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
