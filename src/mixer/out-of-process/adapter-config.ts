// A handler's `params` as the `adapter_config` (google.protobuf.Any) of every
// call. Two ways, as docs/mixer.md explains:
// - the `adapter` object carries `config`, a base64 FileDescriptorSet with a
//   message named `Params` (what Istio's mixgen produces): params are checked
//   against that message (unknown fields, wrong types) and packed as
//   `type.googleapis.com/<package>.Params`, exactly as Istio's Mixer did;
// - without `config`, params go as a google.protobuf.Struct (their JSON),
//   which any language's protobuf runtime can read.

import { createRequire } from 'node:module';
import type { ParamError } from '../adapters/adapter.ts';
import { isRecord } from '../adapters/adapter.ts';
import { adapterType } from './adapter-protos.ts';
import type { ProtoType } from './adapter-protos.ts';

const require = createRequire(import.meta.url);

/** protobufjs reflection, only what descriptor decoding and the params walk need (protobufjs comes with @grpc/proto-loader). */
interface ReflectField {
  readonly name: string;
  readonly type: string;
  readonly repeated: boolean;
  readonly map: boolean;
  readonly resolvedType: { readonly fullName: string; readonly values?: Record<string, number> } | null;
}
interface ReflectType {
  readonly fullName: string;
  readonly fields: Record<string, ReflectField>;
}
interface ReflectNamespace {
  readonly name: string;
  readonly nestedArray: readonly ReflectNamespace[];
  readonly fields?: Record<string, ReflectField>;
  resolveAll(): unknown;
}

export interface PackedConfig {
  readonly type_url: string;
  readonly value: Uint8Array;
}

/** How one adapter's params are checked and packed. */
export interface AdapterConfigCodec {
  /** `type.googleapis.com/...` of the packed message. */
  readonly typeUrl: string;
  /** Problems with `params`, each at its path relative to params. */
  validate(params: Readonly<Record<string, unknown>>): ParamError[];
  /** Params (already validated) as an Any. */
  pack(params: Readonly<Record<string, unknown>>): PackedConfig;
}

const join = (path: string, key: string | number): string => (typeof key === 'number' ? `${path}[${key}]` : path === '' ? key : `${path}.${key}`);

// --- google.protobuf.Struct ---------------------------------------------------

// The protobuf runtime's built-in Struct names its fields in camelCase; the
// wire format is the same as for Istio's snake_case names.
function structValue(v: unknown): Record<string, unknown> {
  if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(structValue) } };
  return { structValue: struct(v as Record<string, unknown>) };
}

function struct(obj: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return { fields: Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, structValue(v)])) };
}

function checkJson(v: unknown, path: string, errors: ParamError[]): void {
  if (typeof v === 'number' && !Number.isFinite(v)) errors.push({ path, message: `${v} is not a finite number` });
  else if (Array.isArray(v)) v.forEach((e, i) => checkJson(e, join(path, i), errors));
  else if (isRecord(v)) for (const [k, e] of Object.entries(v)) checkJson(e, join(path, k), errors);
  else if (!(v === null || ['string', 'number', 'boolean'].includes(typeof v))) errors.push({ path, message: `a ${typeof v} cannot be sent as JSON` });
}

/** Params as a google.protobuf.Struct: any JSON object is accepted. */
export function structConfigCodec(): AdapterConfigCodec {
  const type = adapterType('google.protobuf.Struct');
  return {
    typeUrl: 'type.googleapis.com/google.protobuf.Struct',
    validate(params) {
      const errors: ParamError[] = [];
      for (const [k, v] of Object.entries(params)) checkJson(v, k, errors);
      return errors;
    },
    pack(params) {
      return { type_url: this.typeUrl, value: type.encode(type.fromObject(struct(params))).finish() };
    },
  };
}

// --- a descriptor's Params message ---------------------------------------------

const camel = (s: string): string => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
const INT = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32']);
const LONG = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);

/** Checks `value` against a field's type and returns it in the shape protobufjs's fromObject takes. */
function scalarOrMessage(field: ReflectField, value: unknown, path: string, errors: ParamError[]): unknown {
  const bad = (what: string): undefined => void errors.push({ path, message: `${what} expected, got ${JSON.stringify(value)}` });
  const t = field.type;
  if (t === 'string') return typeof value === 'string' ? value : bad('a string');
  if (t === 'bool') return typeof value === 'boolean' ? value : bad('true or false');
  if (t === 'double' || t === 'float') return typeof value === 'number' ? value : bad('a number');
  if (INT.has(t)) return Number.isInteger(value) ? value : bad('an integer');
  if (LONG.has(t)) return Number.isInteger(value) || (typeof value === 'string' && /^-?\d+$/.test(value)) ? String(value) : bad('an integer');
  if (t === 'bytes') return typeof value === 'string' ? value : bad('base64 text');
  const resolved = field.resolvedType;
  if (resolved?.values) {
    // An enum: by name or by number.
    if (typeof value === 'string' && value in resolved.values) return value;
    if (typeof value === 'number' && Object.values(resolved.values).includes(value)) return value;
    return bad(`one of ${Object.keys(resolved.values).join(', ')}`);
  }
  if (resolved?.fullName === '.google.protobuf.Duration' && (typeof value === 'string' || typeof value === 'number')) {
    // Istio's YAML encoder took durations as text ("10s", "1.5s", "100ms").
    const m = typeof value === 'number' ? [String(value), String(value), 'ms'] : /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value);
    if (!m) return bad('a duration such as "10s"');
    const ms = Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as Record<string, number>)[m[2]!]!;
    return { seconds: String(Math.floor(ms / 1000)), nanos: Math.round((ms % 1000) * 1e6) };
  }
  if (resolved && 'fields' in resolved) {
    if (!isRecord(value)) return bad('an object');
    return normalizeMessage(resolved as unknown as ReflectType, value, path, errors);
  }
  return value;
}

function normalizeMessage(type: ReflectType, obj: Readonly<Record<string, unknown>>, path: string, errors: ParamError[]): Record<string, unknown> {
  const byName = new Map<string, ReflectField>();
  for (const f of Object.values(type.fields)) {
    byName.set(f.name, f);
    byName.set(camel(f.name), f);
  }
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(obj)) {
    const at = join(path, key);
    const field = byName.get(key);
    if (!field) {
      errors.push({ path: at, message: `unknown field "${key}": ${type.fullName.slice(1)} has ${[...new Set(Object.values(type.fields).map((f) => f.name))].join(', ') || 'no fields'}` });
      continue;
    }
    if (value === null) continue;
    if (field.map) {
      if (!isRecord(value)) {
        errors.push({ path: at, message: 'a map (object) expected' });
        continue;
      }
      out[field.name] = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scalarOrMessage(field, v, join(at, k), errors)]));
    } else if (field.repeated) {
      if (!Array.isArray(value)) {
        errors.push({ path: at, message: 'a list expected' });
        continue;
      }
      out[field.name] = value.map((v, i) => scalarOrMessage(field, v, join(at, i), errors));
    } else out[field.name] = scalarOrMessage(field, value, at, errors);
  }
  return out;
}

function findParams(ns: ReflectNamespace): ReflectNamespace | undefined {
  for (const n of ns.nestedArray ?? []) {
    if (n.name === 'Params' && n.fields) return n;
    // Packages only: a Params nested inside another message is not the config.
    if (!n.fields) {
      const found = findParams(n);
      if (found) return found;
    }
  }
  return undefined;
}

/**
 * Params checked against and packed as the `Params` message of `base64Descriptor`
 * (a serialized google.protobuf.FileDescriptorSet, imports included). Throws an
 * Error saying what is wrong with the descriptor.
 */
export function descriptorConfigCodec(base64Descriptor: string): AdapterConfigCodec {
  const protobuf = require('protobufjs') as { Root: { fromDescriptor(d: Uint8Array): ReflectNamespace } };
  require('protobufjs/ext/descriptor');
  const bytes = Buffer.from(base64Descriptor, 'base64');
  let root: ReflectNamespace;
  try {
    root = protobuf.Root.fromDescriptor(bytes);
    root.resolveAll();
  } catch (err) {
    throw new Error(`config is not a usable base64 FileDescriptorSet: ${(err as Error).message}`, { cause: err });
  }
  const params = findParams(root);
  if (!params) throw new Error('the config descriptor has no message named Params (the adapter config message Istio looks for)');
  const type = params as unknown as ReflectType & ProtoType;
  return {
    typeUrl: `type.googleapis.com/${type.fullName.slice(1)}`,
    validate(p) {
      const errors: ParamError[] = [];
      normalizeMessage(type, p, '', errors);
      return errors;
    },
    pack(p) {
      const normalized = normalizeMessage(type, p, '', []);
      return { type_url: this.typeUrl, value: type.encode(type.fromObject(normalized)).finish() };
    },
  };
}
