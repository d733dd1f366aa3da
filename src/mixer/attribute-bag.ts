// The attribute bag: the immutable set of named, typed values one request (or
// one connection) is described by. Check, Quota and Report all work on bags.

import type { AttributeSource, AttributeValue, AttributeVocabulary, ValueType } from '../api/index.ts';
import { canonicalIp, formatValue, parseDurationMs } from '../api/index.ts';
import { MixerError, MixerErrorCode } from './errors.ts';

/**
 * An immutable attribute bag. Contract: values never change after
 * construction; `with` returns a new bag (a child that shadows its parent, so
 * adding a few attributes costs O(added)).
 */
export class AttributeBag implements AttributeSource {
  static readonly EMPTY = new AttributeBag(new Map());
  readonly #values: ReadonlyMap<string, AttributeValue>;
  readonly #parent: AttributeBag | undefined;

  private constructor(values: ReadonlyMap<string, AttributeValue>, parent?: AttributeBag) {
    this.#values = values;
    this.#parent = parent;
    Object.freeze(this);
  }

  /** A bag of the given values (copied); undefined values are left out. */
  static of(values: Iterable<readonly [string, AttributeValue | undefined]> | Readonly<Record<string, AttributeValue | undefined>>): AttributeBag {
    const entries = Symbol.iterator in values ? values : Object.entries(values);
    const map = new Map<string, AttributeValue>();
    for (const [k, v] of entries) if (v !== undefined) map.set(k, v);
    return new AttributeBag(map);
  }

  /** A bag over `values` itself, not a copy: for decoders that build a fresh map per bag and never touch it again. */
  static adopt(values: Map<string, AttributeValue>): AttributeBag {
    return new AttributeBag(values);
  }

  get(name: string): AttributeValue | undefined {
    return this.#values.get(name) ?? this.#parent?.get(name);
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /** A new bag with `more` added on top. */
  with(more: Readonly<Record<string, AttributeValue | undefined>>): AttributeBag {
    const map = new Map<string, AttributeValue>();
    for (const [k, v] of Object.entries(more)) if (v !== undefined) map.set(k, v);
    return map.size === 0 ? this : new AttributeBag(map, this);
  }

  names(): string[] {
    const out = new Set(this.#parent?.names());
    for (const k of this.#values.keys()) out.add(k);
    return [...out].sort();
  }

  /** Every attribute as text (STRING_MAP as a JSON object): for logs and the wire. */
  toText(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of this.names()) out[name] = formatValue(this.get(name)!);
    return out;
  }
}

/** Parses the text form of a value of `type` (what toText and the client write). Throws MESH_ERR_MIXER_ATTRIBUTE. */
export function parseAttributeText(name: string, type: ValueType, text: string): AttributeValue {
  const bad = (): never => {
    throw new MixerError(MixerErrorCode.ATTRIBUTE, `attribute ${name}: "${text}" is not a valid ${type}`);
  };
  switch (type) {
    case 'INT64': {
      const n = Number(text);
      return Number.isInteger(n) ? n : bad();
    }
    case 'DOUBLE': {
      const n = Number(text);
      return text.trim() !== '' && !Number.isNaN(n) ? n : bad();
    }
    case 'BOOL':
      return text === 'true' ? true : text === 'false' ? false : bad();
    case 'TIMESTAMP': {
      const d = new Date(text);
      return Number.isNaN(d.getTime()) ? bad() : d;
    }
    case 'DURATION': {
      const n = /^\d+(\.\d+)?$/.test(text) ? Number(text) : parseDurationMs(text);
      return n === undefined ? bad() : n;
    }
    case 'IP_ADDRESS':
      return canonicalIp(text) ?? bad();
    case 'STRING_MAP': {
      let obj: unknown;
      try {
        obj = JSON.parse(text);
      } catch {
        return bad();
      }
      if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return bad();
      return new Map(Object.entries(obj as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
    }
    case 'BYTES':
      return new Uint8Array(Buffer.from(text, 'base64'));
    default:
      return text;
  }
}

/** A bag from text values typed by the vocabulary; names it does not know are kept as STRING. */
export function bagFromText(values: Readonly<Record<string, string>>, vocabulary: AttributeVocabulary): AttributeBag {
  const entries: [string, AttributeValue][] = [];
  for (const [name, text] of Object.entries(values)) entries.push([name, parseAttributeText(name, vocabulary.typeOf(name) ?? 'STRING', text)]);
  return AttributeBag.of(entries);
}

/** 4 or 16 network-order bytes -> canonical address text. */
function ipText(bytes: Uint8Array): string | undefined {
  if (bytes.length === 4) return bytes.join('.');
  if (bytes.length !== 16) return undefined;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return canonicalIp(groups.join(':'));
}

/**
 * One attribute as a report carried it (src/xds/mixer-report.ts value
 * kinds), typed by the vocabulary: IP_ADDRESS bytes become canonical text,
 * text sent for a typed attribute is parsed; undefined when it does not fit
 * (the attribute is left out, as for malformed ALS metadata). Names the
 * vocabulary does not know keep the wire's type.
 */
export function attributeFromWire(name: string, value: AttributeValue, vocabulary: AttributeVocabulary): AttributeValue | undefined {
  const type = vocabulary.typeOf(name);
  if (!type) return value;
  try {
    switch (type) {
      case 'IP_ADDRESS':
        return value instanceof Uint8Array ? ipText(value) : typeof value === 'string' ? canonicalIp(value) : undefined;
      case 'BYTES':
        return value instanceof Uint8Array ? value : typeof value === 'string' ? parseAttributeText(name, type, value) : undefined;
      case 'STRING_MAP':
        return value instanceof Map ? value : typeof value === 'string' ? parseAttributeText(name, type, value) : undefined;
      case 'INT64':
      case 'DOUBLE':
      case 'DURATION':
        return typeof value === 'number' ? value : typeof value === 'string' ? parseAttributeText(name, type, value) : undefined;
      case 'BOOL':
        return typeof value === 'boolean' ? value : typeof value === 'string' ? parseAttributeText(name, type, value) : undefined;
      case 'TIMESTAMP':
        return value instanceof Date ? value : typeof value === 'string' ? parseAttributeText(name, type, value) : undefined;
      default:
        return typeof value === 'string' ? value : formatValue(value);
    }
  } catch {
    return undefined;
  }
}
