// Istio 1.4's ReportRequest (src/xds/protos/mixer-report.proto) -> attribute
// bags, at the edge: words resolved against the global dictionary
// (non-negative indexes) and the set's or message's word list (negative),
// DELTA_ENCODING sets applied on top of the previous set, values typed by
// the vocabulary (attributeFromWire). Input is the protobufjs decoded
// message (keepCase; map keys as strings, int64 as number or Long).
// Everything a client controls is bounded; a request past a bound, or one
// that names a word that does not exist, is rejected whole with an error
// naming the field (MESH_ERR_MIXER_REPORT -> INVALID_ARGUMENT).

import type { AttributeValue, AttributeVocabulary } from '../api/index.ts';
import { DELTA_ENCODING, GLOBAL_WORDS } from '../xds/index.ts';
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

type Msg = Record<string, any>;

function bad(field: string, message: string): never {
  throw new MixerError(MixerErrorCode.REPORT, `ReportRequest.${field}: ${message}`);
}

function num(v: unknown): number {
  return typeof v === 'number' ? v : v && typeof (v as { toNumber?: unknown }).toNumber === 'function' ? (v as { toNumber(): number }).toNumber() : Number(v ?? 0);
}

function count(m: Msg | undefined | null): number {
  let n = 0;
  if (m) for (const _ in m) n++;
  return n;
}

const FIELDS = ['strings', 'int64s', 'doubles', 'bools', 'timestamps', 'durations', 'bytes', 'string_maps'] as const;

/**
 * The bags of one ReportRequest, in order. Throws MixerError
 * (MESH_ERR_MIXER_REPORT) naming the field when the request is malformed or
 * past `limits`.
 */
export function bagsFromReport(request: Msg, vocabulary: AttributeVocabulary, limits: ReportLimits = REPORT_LIMITS): AttributeBag[] {
  const sets = (request.attributes ?? []) as Msg[];
  if (sets.length > limits.maxBags) bad('attributes', `${sets.length} attribute sets, more than ${limits.maxBags}`);
  const globalCount = num(request.global_word_count);
  if (globalCount > GLOBAL_WORDS.length) bad('global_word_count', `the client's global dictionary has ${globalCount} words, Mixer's ${GLOBAL_WORDS.length} (out of sync)`);
  const defaultWords = (request.default_words ?? []) as string[];
  if (defaultWords.length > limits.maxWords) bad('default_words', `${defaultWords.length} words, more than ${limits.maxWords}`);
  const delta = num(request.repeated_attributes_semantics) === DELTA_ENCODING || request.repeated_attributes_semantics === 'DELTA_ENCODING';
  const bags: AttributeBag[] = [];
  // Typed values of the previous set: a delta set copies them and types only what it changes.
  let previous: Map<string, AttributeValue> | undefined;
  for (let i = 0; i < sets.length; i++) {
    const set = sets[i]!;
    const at = `attributes[${i}]`;
    const own = (set.words ?? []) as string[];
    if (own.length > limits.maxWords) bad(`${at}.words`, `${own.length} words, more than ${limits.maxWords}`);
    const words = own.length > 0 ? own : defaultWords;
    const word = (index: unknown, field: string): string => {
      const n = num(index);
      if (n >= 0) return n < globalCount ? GLOBAL_WORDS[n]! : bad(field, `global word ${n} is past global_word_count ${globalCount}`);
      const w = words[-n - 1];
      return w ?? bad(field, `word ${n} is not in the ${own.length > 0 ? 'set' : 'message'}'s word list (${words.length} words)`);
    };
    let attributes = 0;
    for (const f of FIELDS) attributes += count(set[f]);
    if (attributes > limits.maxAttributes) bad(at, `${attributes} attributes, more than ${limits.maxAttributes}`);
    const values = delta && previous ? new Map(previous) : new Map<string, AttributeValue>();
    for (const f of FIELDS) {
      const m = set[f] as Msg | undefined | null;
      if (!m) continue;
      for (const k in m) {
        const name = word(k, `${at}.${f}`);
        const raw = m[k];
        let v: AttributeValue;
        switch (f) {
          case 'strings':
            v = word(raw, `${at}.strings[${name}]`);
            break;
          case 'int64s':
          case 'doubles':
            v = num(raw);
            break;
          case 'bools':
            v = raw === true;
            break;
          case 'timestamps':
            v = new Date(num(raw?.seconds) * 1000 + Math.floor(num(raw?.nanos) / 1e6));
            break;
          case 'durations':
            v = num(raw?.seconds) * 1000 + num(raw?.nanos) / 1e6;
            break;
          case 'bytes':
            v = raw instanceof Uint8Array ? raw : new Uint8Array(0);
            break;
          default: {
            const entries = (raw?.entries ?? {}) as Msg;
            const size = count(entries);
            if (size > limits.maxMapEntries) bad(`${at}.string_maps[${name}]`, `${size} entries, more than ${limits.maxMapEntries}`);
            const map = new Map<string, string>();
            for (const ek in entries) map.set(word(ek, `${at}.string_maps[${name}]`), word(entries[ek], `${at}.string_maps[${name}]`));
            v = map;
          }
        }
        // A value that does not fit its declared type is left out (and, under delta, no longer inherited).
        const typed = attributeFromWire(name, v, vocabulary);
        if (typed === undefined) values.delete(name);
        else values.set(name, typed);
      }
    }
    bags.push(AttributeBag.adopt(values));
    previous = values;
  }
  return bags;
}
