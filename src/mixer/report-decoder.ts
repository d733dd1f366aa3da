// Istio 1.4's ReportRequest (src/xds/protos/mixer-report.proto) -> attribute
// bags, at the edge, read straight from the wire bytes (src/xds/proto-reader.ts):
// words resolved against the global dictionary (non-negative indexes) and
// the set's or message's word list (negative), DELTA_ENCODING sets applied
// on top of the previous set, values typed by the vocabulary
// (attributeFromWire). A delta set copies the typed values of the set
// before and types only what it changes; protobufjs's message objects for
// every map entry of every set were half of Mixer's cost per report.
// Everything a client controls is bounded; a request past a bound, one that
// names a word that does not exist, or bytes that are not a ReportRequest,
// are rejected whole with an error naming the field (MESH_ERR_MIXER_REPORT
// -> INVALID_ARGUMENT).

import type { AttributeValue, AttributeVocabulary } from '../api/index.ts';
import { ATTRIBUTE_FIELDS, DELTA_ENCODING, GLOBAL_WORDS, ProtoReader, REPORT_REQUEST_FIELDS, WIRE_BYTES, WIRE_FIXED64, WIRE_VARINT } from '../xds/index.ts';
import { AttributeBag, attributeFromWire } from './attribute-bag.ts';
import { MixerError, MixerErrorCode } from './errors.ts';

export interface ReportLimits {
  /** Attribute sets (reported actions) in one request. */
  readonly maxBags: number;
  /** Words in default_words, and in any one set's words. */
  readonly maxWords: number;
  /** Attributes in one set. */
  readonly maxAttributes: number;
  /** Entries in one string map. */
  readonly maxMapEntries: number;
  /** Bytes of one encoded request (the gRPC server's own receive limit applies first). */
  readonly maxMessageBytes: number;
}

export const REPORT_LIMITS: ReportLimits = Object.freeze({ maxBags: 10_000, maxWords: 100_000, maxAttributes: 1_000, maxMapEntries: 1_000, maxMessageBytes: 4 * 1024 * 1024 });

function bad(field: string, message: string): never {
  throw new MixerError(MixerErrorCode.REPORT, `ReportRequest${field ? `.${field}` : ''}: ${message}`);
}

const { attributes: ATTRIBUTES, defaultWords: DEFAULT_WORDS, globalWordCount: GLOBAL_WORD_COUNT, semantics: SEMANTICS } = REPORT_REQUEST_FIELDS;
const { words: WORDS, strings: STRINGS, int64s: INT64S, doubles: DOUBLES, bools: BOOLS, timestamps: TIMESTAMPS, durations: DURATIONS, bytes: BYTES, stringMaps: STRING_MAPS } = ATTRIBUTE_FIELDS;
const MAP_FIELD_NAMES = ['', '', 'strings', 'int64s', 'doubles', 'bools', 'timestamps', 'durations', 'bytes', 'string_maps'];

/** Words of one set: the global dictionary below `globalCount`, negative indexes into `words`. */
class Words {
  readonly words: readonly string[];
  readonly own: boolean;
  readonly globalCount: number;

  constructor(words: readonly string[], own: boolean, globalCount: number) {
    this.words = words;
    this.own = own;
    this.globalCount = globalCount;
  }

  word(n: number, field: string): string {
    if (n >= 0) return n < this.globalCount ? GLOBAL_WORDS[n]! : bad(field, `global word ${n} is past global_word_count ${this.globalCount}`);
    const w = this.words[-n - 1];
    return w ?? bad(field, `word ${n} is not in the ${this.own ? 'set' : 'message'}'s word list (${this.words.length} words)`);
  }
}

/** Timestamp or Duration {seconds = 1, nanos = 2} as milliseconds. */
function readTimeMs(r: ProtoReader, end: number): number {
  let seconds = 0;
  let nanos = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | WIRE_VARINT)) seconds = r.int64();
    else if (tag === ((2 << 3) | WIRE_VARINT)) nanos = r.int64();
    else r.skip(tag & 7, tag >>> 3);
  }
  return seconds * 1000 + nanos / 1e6;
}

/** A StringMap {entries = 1: map<sint32, sint32>} as a Map of words. */
function readStringMap(r: ProtoReader, end: number, words: Words, field: string, limits: ReportLimits): Map<string, string> {
  const map = new Map<string, string>();
  const keys: number[] = [];
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag !== ((1 << 3) | WIRE_BYTES)) {
      r.skip(tag & 7, tag >>> 3);
      continue;
    }
    const start = r.span();
    const entryEnd = r.pos;
    r.pos = start;
    let k = 0;
    let v = 0;
    while (r.pos < entryEnd) {
      const t = r.uint32();
      if (t === ((1 << 3) | WIRE_VARINT)) k = r.sint32();
      else if (t === ((2 << 3) | WIRE_VARINT)) v = r.sint32();
      else r.skip(t & 7, t >>> 3);
    }
    keys.push(k, v);
  }
  const entries = keys.length / 2;
  if (entries > limits.maxMapEntries) bad(field, `${entries} entries, more than ${limits.maxMapEntries}`);
  for (let i = 0; i < keys.length; i += 2) map.set(words.word(keys[i]!, field), words.word(keys[i + 1]!, field));
  return map;
}

/**
 * One map entry of a CompressedAttributes ({key = 1: sint32, value = 2}),
 * `r` at its payload: the attribute's name and its value as the wire kind
 * says (before typing).
 */
function readEntry(r: ProtoReader, end: number, kind: number, words: Words, at: string, limits: ReportLimits): [string, AttributeValue] {
  let key = 0;
  let value: AttributeValue | undefined;
  let valueWord = 0;
  let mapStart = -1;
  let mapEnd = -1;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | WIRE_VARINT)) {
      key = r.sint32();
      continue;
    }
    if (tag >>> 3 !== 2) {
      r.skip(tag & 7, tag >>> 3);
      continue;
    }
    const wire = tag & 7;
    if (kind === STRINGS && wire === WIRE_VARINT) valueWord = r.sint32();
    else if (kind === INT64S && wire === WIRE_VARINT) value = r.int64();
    else if (kind === DOUBLES && wire === WIRE_FIXED64) value = r.double();
    else if (kind === BOOLS && wire === WIRE_VARINT) value = r.uint32() !== 0;
    else if (wire === WIRE_BYTES && kind >= TIMESTAMPS) {
      const start = r.span();
      const valueEnd = r.pos;
      r.pos = start;
      if (kind === TIMESTAMPS) value = new Date(Math.floor(readTimeMs(r, valueEnd)));
      else if (kind === DURATIONS) value = readTimeMs(r, valueEnd);
      else if (kind === BYTES) value = Uint8Array.prototype.slice.call(r.buf, start, valueEnd);
      else {
        // Read once the key is known (it may follow): errors name the attribute.
        mapStart = start;
        mapEnd = valueEnd;
      }
      r.pos = valueEnd;
    } else r.skip(wire, 2);
  }
  const name = words.word(key, `${at}.${MAP_FIELD_NAMES[kind]}`);
  if (kind === STRINGS) return [name, words.word(valueWord, `${at}.strings[${name}]`)];
  if (mapStart >= 0) return [name, readStringMap(new ProtoReader(r.buf, mapStart, mapEnd), mapEnd, words, `${at}.string_maps[${name}]`, limits)];
  if (value !== undefined) return [name, value];
  // The value field was absent: its kind's default.
  switch (kind) {
    case INT64S:
    case DOUBLES:
    case DURATIONS:
      return [name, 0];
    case BOOLS:
      return [name, false];
    case TIMESTAMPS:
      return [name, new Date(0)];
    case BYTES:
      return [name, new Uint8Array(0)];
    default:
      return [name, new Map()];
  }
}

/**
 * The bags of one ReportRequest's wire bytes, in order. Throws MixerError
 * (MESH_ERR_MIXER_REPORT) naming the field when the request is malformed or
 * past `limits`.
 */
export function bagsFromReport(bytes: Uint8Array, vocabulary: AttributeVocabulary, limits: ReportLimits = REPORT_LIMITS): AttributeBag[] {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    return decode(buf, vocabulary, limits);
  } catch (err) {
    if (err instanceof MixerError) throw err;
    return bad('', `not a ReportRequest: ${(err as Error).message}`);
  }
}

function decode(buf: Buffer, vocabulary: AttributeVocabulary, limits: ReportLimits): AttributeBag[] {
  // The message's own fields may come after its sets: find them all first.
  const r = new ProtoReader(buf);
  const sets: number[] = [];
  const defaultWords: string[] = [];
  let wordCount = 0;
  let globalCount = 0;
  let semantics = DELTA_ENCODING;
  while (r.pos < r.end) {
    const tag = r.uint32();
    if (tag === ((ATTRIBUTES << 3) | WIRE_BYTES)) {
      const start = r.span();
      sets.push(start, r.pos);
    } else if (tag === ((DEFAULT_WORDS << 3) | WIRE_BYTES)) {
      // Counted past the bound, kept only within it.
      if (++wordCount <= limits.maxWords) defaultWords.push(r.string());
      else r.span();
    } else if (tag === ((GLOBAL_WORD_COUNT << 3) | WIRE_VARINT)) globalCount = r.uint32();
    else if (tag === ((SEMANTICS << 3) | WIRE_VARINT)) semantics = r.uint32();
    else r.skip(tag & 7, tag >>> 3);
  }
  const setCount = sets.length / 2;
  if (setCount > limits.maxBags) bad('attributes', `${setCount} attribute sets, more than ${limits.maxBags}`);
  if (globalCount > GLOBAL_WORDS.length) bad('global_word_count', `the client's global dictionary has ${globalCount} words, Mixer's ${GLOBAL_WORDS.length} (out of sync)`);
  if (wordCount > limits.maxWords) bad('default_words', `${wordCount} words, more than ${limits.maxWords}`);
  const delta = semantics === DELTA_ENCODING;
  const messageWords = new Words(defaultWords, false, globalCount);
  const bags: AttributeBag[] = [];
  // Typed values of the previous set: a delta set copies them and types only what it changes.
  let previous: Map<string, AttributeValue> | undefined;
  for (let i = 0; i < setCount; i++) {
    const start = sets[2 * i]!;
    const end = sets[2 * i + 1]!;
    const at = `attributes[${i}]`;
    // First pass: the set's own words and how many attributes it has.
    const own: string[] = [];
    let ownCount = 0;
    let attributes = 0;
    r.pos = start;
    while (r.pos < end) {
      const tag = r.uint32();
      const field = tag >>> 3;
      if (field === WORDS && (tag & 7) === WIRE_BYTES) {
        if (++ownCount <= limits.maxWords) own.push(r.string());
        else r.span();
      } else {
        if (field >= STRINGS && field <= STRING_MAPS && (tag & 7) === WIRE_BYTES) attributes++;
        r.skip(tag & 7, field);
      }
    }
    if (ownCount > limits.maxWords) bad(`${at}.words`, `${ownCount} words, more than ${limits.maxWords}`);
    if (attributes > limits.maxAttributes) bad(at, `${attributes} attributes, more than ${limits.maxAttributes}`);
    const words = own.length > 0 ? new Words(own, true, globalCount) : messageWords;
    const values = delta && previous ? new Map(previous) : new Map<string, AttributeValue>();
    r.pos = start;
    while (r.pos < end) {
      const tag = r.uint32();
      const field = tag >>> 3;
      if (field < STRINGS || field > STRING_MAPS || (tag & 7) !== WIRE_BYTES) {
        r.skip(tag & 7, field);
        continue;
      }
      const entryStart = r.span();
      const entryEnd = r.pos;
      r.pos = entryStart;
      const [name, v] = readEntry(r, entryEnd, field, words, at, limits);
      r.pos = entryEnd;
      // A value that does not fit its declared type is left out (and, under delta, no longer inherited).
      const typed = attributeFromWire(name, v, vocabulary);
      if (typed === undefined) values.delete(name);
      else values.set(name, typed);
    }
    bags.push(AttributeBag.adopt(values));
    previous = values;
  }
  return bags;
}
