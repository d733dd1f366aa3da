// Packing and unpacking google.protobuf.Any: Envoy messages encoded with the
// loaded protos, and Istio config objects carried as JSON (see packJsonAny).

import type { AnyMessage } from './discovery-messages.ts';
import type { ProtoType, XdsProtos } from './protos.ts';
import { loadXdsProtos, XDS_CONVERSION_OPTIONS } from './protos.ts';
import { typeUrlOf } from './type-urls.ts';

export function packAny(typeUrl: string, value: Uint8Array): AnyMessage {
  return { type_url: typeUrl, value };
}

/**
 * Encodes a plain object (snake_case, as in Envoy's YAML) as the named Envoy
 * message. Nested Any fields may be written as `{ '@type': url, ...fields }`
 * and are packed too, the way Envoy's JSON writes them. Throws, naming the
 * field, when the object has a field the message lacks or a value of the
 * wrong type: protobufjs would drop the first silently.
 */
export function packMessage(typeUrlOrName: string, message: object, protos: XdsProtos = loadXdsProtos()): AnyMessage {
  const type = protos.lookupType(typeUrlOrName);
  const normalized = normalize(type, message, type.name, protos);
  checkMessage(type, normalized, type.name, protos);
  const value = type.encode(type.fromObject(normalized)).finish();
  // protobufjs full names start with a dot; type URLs do not.
  return { type_url: typeUrlOf(type.fullName.replace(/^\./, '')), value };
}

function checkMessage(type: ProtoType, message: object, path: string, protos: XdsProtos): void {
  if (type.fullName === '.google.protobuf.Any' && '@type' in message) {
    const url = String((message as Record<string, unknown>)['@type']);
    let inner: ProtoType;
    try {
      inner = protos.lookupType(url);
    } catch {
      throw new Error(`${path}: @type ${url} is not a message the loaded protos know`);
    }
    const { '@type': _t, ...fields } = message as Record<string, unknown>;
    checkMessage(inner, fields, path, protos);
    return;
  }
  const problem = type.verify(message);
  if (problem) throw new Error(`${path}: ${problem}`);
  for (const [key, value] of Object.entries(message)) {
    const field = type.fields[key];
    if (!field) throw new Error(`${path}.${key}: ${type.fullName.slice(1)} has no such field`);
    const sub = field.resolvedType;
    if (!sub || !('fields' in sub) || value === null || value === undefined) continue;
    const nested = sub as ProtoType;
    if (field.map) for (const [k, v] of Object.entries(value as object)) checkMessage(nested, v as object, `${path}.${key}[${k}]`, protos);
    else if (field.repeated) (value as object[]).forEach((v, i) => checkMessage(nested, v, `${path}.${key}[${i}]`, protos));
    else checkMessage(nested, value as object, `${path}.${key}`, protos);
  }
}

/**
 * Envoy's JSON writes enums by name (`type: EDS`) and durations as strings
 * (`connect_timeout: 1.5s`); protobufjs wants numbers and {seconds, nanos}.
 * Returns a copy converted all the way down, including inside Anys written
 * with `@type`; throws, naming the field, on an unknown enum name or a
 * malformed duration.
 */
function normalize(type: ProtoType, message: object, path: string, protos: XdsProtos): object {
  if (message === null || typeof message !== 'object') return message;
  if (type.fullName === '.google.protobuf.Any') {
    const url = (message as Record<string, unknown>)['@type'];
    if (typeof url !== 'string') return message;
    let inner: ProtoType;
    try {
      inner = protos.lookupType(url);
    } catch {
      return message; // checkMessage reports the unknown @type
    }
    // A TypedStruct's own `value` (a Struct, written as plain JSON the way
    // Envoy's YAML does) would collide with the Any's `value` bytes: encode it here.
    if (TYPED_STRUCT_TYPES.has(url)) return packTypedStruct(inner, message as Record<string, unknown>, path, protos);
    return { ...normalize(inner, message, path, protos), '@type': url };
  }
  const copy: Record<string, unknown> = { ...message };
  for (const [key, value] of Object.entries(message)) {
    const field = type.fields[key];
    const resolved = field?.resolvedType as ({ values?: Record<string, number> } & Partial<ProtoType>) | null | undefined;
    if (!field || !resolved || value === null || value === undefined) continue;
    const convert = (v: unknown, where: string): unknown => {
      if ('fields' in resolved) {
        if (resolved.fullName === '.google.protobuf.Duration' && typeof v === 'string') return parseJsonDuration(v, where);
        return typeof v === 'object' && v !== null ? normalize(resolved as ProtoType, v, where, protos) : v;
      }
      if (typeof v !== 'string') return v;
      const n = resolved.values?.[v];
      if (n === undefined) throw new Error(`${where}: unknown enum value "${v}"; allowed: ${Object.keys(resolved.values ?? {}).join(', ')}`);
      return n;
    };
    if (field.map) copy[key] = Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, convert(v, `${path}.${key}[${k}]`)]));
    else if (field.repeated && Array.isArray(value)) copy[key] = value.map((v, i) => convert(v, `${path}.${key}[${i}]`));
    else copy[key] = convert(value, `${path}.${key}`);
  }
  return copy;
}

const TYPED_STRUCT_TYPES: ReadonlySet<string> = new Set(['type.googleapis.com/udpa.type.v1.TypedStruct', 'type.googleapis.com/xds.type.v3.TypedStruct']);

/** `{ '@type': TypedStruct, type_url, value: {...plain JSON} }` -> a packed Any (`{ type_url, value: bytes }`). */
function packTypedStruct(type: ProtoType, message: Record<string, unknown>, path: string, protos: XdsProtos): AnyMessage {
  const { '@type': url, type_url: inner, value, ...rest } = message;
  const extra = Object.keys(rest)[0];
  if (extra !== undefined) throw new Error(`${path}.${extra}: ${type.fullName.slice(1)} has no such field`);
  if (typeof inner !== 'string') throw new Error(`${path}.type_url: a TypedStruct needs the type URL of its config`);
  if (value !== undefined && value !== null && (typeof value !== 'object' || Array.isArray(value))) throw new Error(`${path}.value: a TypedStruct value must be a mapping`);
  const fields = { type_url: inner, ...(value ? { value: structOf(value as Record<string, unknown>, protos) } : {}) };
  return { type_url: String(url), value: type.encode(type.fromObject(fields)).finish() };
}

function structOf(o: Record<string, unknown>, protos: XdsProtos): object {
  const valueOf = (v: unknown): object => {
    if (v === null || v === undefined) return { nullValue: 0 };
    if (typeof v === 'string') return { stringValue: v };
    if (typeof v === 'number') return { numberValue: v };
    if (typeof v === 'boolean') return { boolValue: v };
    if (Array.isArray(v)) return { listValue: { values: v.map(valueOf) } };
    return { structValue: structOf(v as Record<string, unknown>, protos) };
  };
  return { fields: Object.fromEntries(Object.entries(o).map(([k, v]) => [k, valueOf(v)])) };
}

/** proto3 JSON duration `1.5s` / `-0.25s` -> { seconds, nanos }. */
function parseJsonDuration(text: string, where: string): { seconds: number; nanos: number } {
  const m = /^(-?)(\d+)(?:\.(\d{1,9}))?s$/.exec(text);
  if (!m) throw new Error(`${where}: invalid duration "${text}" (proto3 JSON form, e.g. "1.5s")`);
  const sign = m[1] === '-' ? -1 : 1;
  return { seconds: sign * Number(m[2]), nanos: sign * Number((m[3] ?? '').padEnd(9, '0')) };
}

/** Decodes an Any holding an Envoy message into a plain object (XDS_CONVERSION_OPTIONS). */
export function unpackMessage<T = Record<string, unknown>>(any: AnyMessage, protos: XdsProtos = loadXdsProtos()): T {
  const type = protos.lookupType(any.type_url);
  return type.toObject(type.decode(any.value), XDS_CONVERSION_OPTIONS) as T;
}

/**
 * Wraps an object as an Any whose value is its UTF-8 JSON. Istio config
 * crosses process boundaries this way: we have no Istio protos to encode
 * VirtualService and friends, and Istio's own MCP-over-xDS wraps them in its
 * istio.mcp.v1alpha1.Resource message, which we do not carry either. The
 * type_url stays the Istio one (`networking.istio.io/v1/VirtualService`).
 */
export function packJsonAny(typeUrl: string, value: unknown): AnyMessage {
  return { type_url: typeUrl, value: Buffer.from(JSON.stringify(value), 'utf8') };
}

export function unpackJsonAny<T = unknown>(any: AnyMessage): T {
  return JSON.parse(Buffer.from(any.value).toString('utf8')) as T;
}
