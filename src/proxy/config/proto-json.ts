// Envoy's JSON/YAML form of a message -> the decoded plain object the rest of
// the proxy reads (snake_case, defaults filled, Anys as {type_url, value}),
// the same shape unpackMessage gives for xDS resources. Going through the
// protobuf encoding once means bootstrap files and xDS share one decode path.
//
// JSON-only spellings are normalized on the way: durations as "1.5s",
// wrappers as bare scalars, Struct as a plain object, Any as {"@type", ...},
// camelCase field names.

import { loadXdsProtos, XDS_CONVERSION_OPTIONS, typeNameOf, TYPE_URL_PREFIX } from '../../xds/index.ts';
import type { AnyMessage, ProtoType, XdsProtos } from '../../xds/index.ts';
import { configError } from '../errors.ts';

type Obj = Record<string, unknown>;

// keepCase is a proto-loader option; the loaded root already has snake_case names.
const JSON_OPTIONS = { longs: String, enums: String, bytes: String, json: true };
type Field = ProtoType['fields'][string];

const WRAPPERS = new Set(['DoubleValue', 'FloatValue', 'Int64Value', 'UInt64Value', 'Int32Value', 'UInt32Value', 'BoolValue', 'StringValue', 'BytesValue'].map((n) => `.google.protobuf.${n}`));

// Field lookup by snake_case or camelCase name, built once per message type.
const fieldIndex = new WeakMap<ProtoType, Map<string, Field>>();
function fieldsOf(type: ProtoType): Map<string, Field> {
  let index = fieldIndex.get(type);
  if (!index) {
    index = new Map();
    for (const field of Object.values(type.fields)) {
      index.set(field.name, field);
      index.set(field.name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase()), field);
    }
    fieldIndex.set(type, index);
  }
  return index;
}

/** "1.5s" -> {seconds, nanos}; throws on anything else. */
export function parseJsonDuration(text: string, path: string): { seconds: number; nanos: number } {
  const m = /^(-?)(\d+)(?:\.(\d{1,9}))?s$/.exec(text);
  if (!m) throw configError(path, `invalid duration "${text}" (expected e.g. "1.5s")`);
  const sign = m[1] === '-' ? -1 : 1;
  return { seconds: sign * Number(m[2]), nanos: sign * Number((m[3] ?? '').padEnd(9, '0')) };
}

// google.protobuf.Value is protobufjs's built-in type, whose fields are camelCase.
/** A plain JSON value as a decoded google.protobuf.Value (the inverse of typed-struct.ts's plainValue). */
export function structValue(v: unknown): Obj {
  if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(structValue) } };
  return { structValue: struct(v as Obj) };
}
/** A plain object as a decoded google.protobuf.Struct (the inverse of typed-struct.ts's plainStruct). */
export function struct(o: Obj): Obj {
  const fields: Obj = {};
  for (const [k, v] of Object.entries(o)) fields[k] = structValue(v);
  return { fields };
}

function normalizeValue(field: Field, value: unknown, path: string, protos: XdsProtos): unknown {
  const sub = field.resolvedType;
  if (!sub || !('fields' in sub) || value === null || value === undefined) return value;
  const type = sub as ProtoType;
  const name = type.fullName;
  if (name === '.google.protobuf.Duration' && typeof value === 'string') return parseJsonDuration(value, path);
  if (WRAPPERS.has(name) && typeof value !== 'object') return { value };
  if (name === '.google.protobuf.Struct' && typeof value === 'object') return 'fields' in (value as Obj) && Object.keys(value as Obj).length === 1 ? value : struct(value as Obj);
  if (name === '.google.protobuf.Any' && typeof value === 'object' && '@type' in (value as Obj)) return packJsonAny(value as Obj, path, protos);
  if (typeof value !== 'object' || Array.isArray(value)) throw configError(path, `expected an object for ${name.slice(1)}`);
  return normalizeMessage(type, value as Obj, path, protos);
}

function normalizeMessage(type: ProtoType, message: Obj, path: string, protos: XdsProtos): Obj {
  const out: Obj = {};
  const fields = fieldsOf(type);
  for (const [key, value] of Object.entries(message)) {
    const field = fields.get(key);
    if (!field) throw configError(`${path}.${key}`, `${type.fullName.slice(1)} has no such field`);
    const p = `${path}.${field.name}`;
    if (field.map) {
      const m: Obj = {};
      for (const [k, v] of Object.entries((value ?? {}) as Obj)) m[k] = normalizeValue(field, v, `${p}[${k}]`, protos);
      out[field.name] = m;
    } else if (field.repeated) {
      if (!Array.isArray(value)) throw configError(p, 'expected a list');
      out[field.name] = value.map((v, i) => normalizeValue(field, v, `${p}[${i}]`, protos));
    } else out[field.name] = normalizeValue(field, value, p, protos);
  }
  return out;
}

function lookup(typeUrl: string, path: string, protos: XdsProtos): ProtoType {
  try {
    return protos.lookupType(typeUrl);
  } catch {
    throw configError(path, `@type ${typeUrl} is not a message the loaded protos know`);
  }
}

function packJsonAny(value: Obj, path: string, protos: XdsProtos): AnyMessage {
  const { '@type': url, ...rest } = value;
  const typeUrl = String(url);
  const type = lookup(typeUrl, path, protos);
  const normalized = normalizeMessage(type, rest, path, protos);
  return { type_url: typeUrl.includes('/') ? typeUrl : TYPE_URL_PREFIX + typeUrl, value: encode(type, normalized, path) };
}

function encode(type: ProtoType, normalized: Obj, path: string): Uint8Array {
  try {
    return type.encode(type.fromObject(normalized)).finish();
  } catch (err) {
    throw configError(path, (err as Error).message);
  }
}

/** Decodes an Envoy JSON/YAML object of the given message type into the decoded plain shape. */
export function decodeJson<T = Obj>(typeUrl: string, message: unknown, path: string, protos: XdsProtos = loadXdsProtos()): T {
  if (message === null || typeof message !== 'object' || Array.isArray(message)) throw configError(path, `expected an object for ${typeNameOf(typeUrl)}`);
  const type = lookup(typeUrl, path, protos);
  const bytes = encode(type, normalizeMessage(type, message as Obj, path, protos), path);
  return type.toObject(type.decode(bytes), XDS_CONVERSION_OPTIONS) as T;
}

/** Decodes an Any (from xDS or a decoded typed_config); errors name `path`. */
export function decodeAny<T = Obj>(any: AnyMessage, path: string, protos: XdsProtos = loadXdsProtos()): T {
  const type = lookup(any.type_url, path, protos);
  try {
    return type.toObject(type.decode(any.value), XDS_CONVERSION_OPTIONS) as T;
  } catch (err) {
    throw configError(path, `cannot decode ${any.type_url}: ${(err as Error).message}`);
  }
}

/**
 * A decoded message back to Envoy's JSON form (what /config_dump shows):
 * defaults dropped, Anys expanded to {"@type", ...}, durations as "1.5s".
 */
export function renderJson(typeUrl: string, decoded: unknown, protos: XdsProtos = loadXdsProtos()): Obj {
  const type = protos.lookupType(typeUrl);
  const json = type.toObject(type.fromObject(decoded as Obj), JSON_OPTIONS) as Obj;
  return expand(type, json, protos) as Obj;
}

function expand(type: ProtoType, json: unknown, protos: XdsProtos): unknown {
  if (json === null || typeof json !== 'object') return json;
  const name = type.fullName;
  if (name === '.google.protobuf.Duration') {
    const d = json as { seconds?: string | number; nanos?: number };
    return `${Number(d.seconds ?? 0) + (d.nanos ?? 0) / 1e9}s`;
  }
  if (WRAPPERS.has(name)) return (json as Obj).value;
  if (name === '.google.protobuf.Any') {
    const a = json as { type_url?: string; value?: string };
    if ('@type' in a) {
      // protobufjs already expanded this Any (its JSON wrapper); expand its fields.
      const { '@type': url, ...rest } = a as Obj;
      return { '@type': url, ...(expand(protos.lookupType(String(url)), rest, protos) as Obj) };
    }
    if (!a.type_url) return json;
    try {
      const inner = protos.lookupType(a.type_url);
      const obj = inner.toObject(inner.decode(Buffer.from(a.value ?? '', 'base64')), JSON_OPTIONS);
      return { '@type': a.type_url, ...(expand(inner, obj, protos) as Obj) };
    } catch {
      return json;
    }
  }
  const out: Obj = {};
  for (const [key, value] of Object.entries(json as Obj)) {
    const field = type.fields[key];
    if (field && !field.resolvedType) field.resolve();
    const sub = field?.resolvedType;
    if (!field || !sub || !('fields' in sub)) out[key] = value;
    else if (field.map) out[key] = Object.fromEntries(Object.entries(value as Obj).map(([k, v]) => [k, expand(sub as ProtoType, v, protos)]));
    else if (Array.isArray(value)) out[key] = value.map((v) => expand(sub as ProtoType, v, protos));
    else out[key] = expand(sub as ProtoType, value, protos);
  }
  return out;
}
