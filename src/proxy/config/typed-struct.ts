// TypedStruct (udpa.type.v1 / xds.type.v3): an extension config carried as a
// Struct with its own type URL, as Istio configures `istio.stats`. Envoy looks
// the factory up by the inner type URL; so do we. Also turns decoded
// google.protobuf.Struct / Value messages into plain JSON values.

import type { AnyMessage } from '../../xds/index.ts';
import { decodeAny } from './proto-json.ts';

export const TYPED_STRUCT_URLS: ReadonlySet<string> = new Set(['type.googleapis.com/udpa.type.v1.TypedStruct', 'type.googleapis.com/xds.type.v3.TypedStruct']);

type D = Record<string, any>;

/** A decoded google.protobuf.Value -> plain JSON value. */
export function plainValue(v: D | null | undefined): unknown {
  if (!v) return null;
  switch (v.kind) {
    case 'stringValue':
      return v.stringValue;
    case 'numberValue':
      return v.numberValue;
    case 'boolValue':
      return v.boolValue;
    case 'structValue':
      return plainStruct(v.structValue);
    case 'listValue':
      return ((v.listValue?.values ?? []) as D[]).map(plainValue);
    default:
      return null;
  }
}

/** A decoded google.protobuf.Struct ({fields}) -> plain object; a plain object passes through. */
export function plainStruct(s: D | null | undefined): Record<string, unknown> {
  if (!s) return {};
  if (!s.fields || typeof s.fields !== 'object') return s;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s.fields as D)) out[k] = plainValue(v as D);
  return out;
}

/** The type URL to look the extension up by, and its decoded config (a TypedStruct's value as a plain object). */
export function resolveTypedConfig(any: AnyMessage, path: string): { typeUrl: string; config: any } {
  if (!TYPED_STRUCT_URLS.has(any.type_url)) return { typeUrl: any.type_url, config: decodeAny(any, path) };
  const ts = decodeAny<{ type_url: string; value: D | null }>(any, path);
  const inner = ts.type_url.includes('/') ? ts.type_url : `type.googleapis.com/${ts.type_url}`;
  return { typeUrl: inner, config: plainStruct(ts.value) };
}
