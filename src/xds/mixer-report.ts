// Istio 1.4's Report API on the wire (src/xds/protos/mixer-report.proto):
// attribute bags batched into one ReportRequest, every string replaced by an
// index into Istio's global dictionary or into one word list shared by the
// whole message (default_words), sets delta-encoded against the previous one
// when that loses nothing. Shared by the proxy's Mixer report logger and
// Mixer's own client; Mixer decodes (src/mixer/report-decoder.ts).
//
// Requests are written straight to wire bytes (src/xds/proto-writer.ts):
// building message objects for protobufjs's encode cost the sidecar about
// 20 µs per reported request. They go out on a client whose serializer
// passes the bytes through.

import { isIPv4, isIPv6 } from 'node:net';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import type { ProtoRoot, ProtoType } from './protos.ts';
import { GLOBAL_WORDS, GLOBAL_WORD_INDEX } from './mixer-global-dictionary.ts';
import { ProtoWriter, WIRE_FIXED64, WIRE_VARINT, fieldSize, varintSize, zigzag32 } from './proto-writer.ts';

const require = createRequire(import.meta.url);
const protoUtil = require('@grpc/proto-loader/build/src/util.js') as typeof import('@grpc/proto-loader/build/src/util.js');
// proto-loader's main module registers the well-known types (Timestamp, Duration) with its protobufjs.
require('@grpc/proto-loader');

export const MIXER_SERVICE = 'istio.mixer.v1.Mixer';
export const MIXER_REPORT_PATH = `/${MIXER_SERVICE}/Report`;
export const DELTA_ENCODING = 0;
export const INDEPENDENT_ENCODING = 1;

/** A value as the wire carries it: STRING-like text, INT64/DOUBLE, BOOL, TIMESTAMP, BYTES, STRING_MAP; DURATION and IP_ADDRESS need a type hint. */
export type ReportValue = string | number | boolean | Date | Uint8Array | ReadonlyMap<string, string>;
/** One reported action: attribute name -> value. */
export type ReportBag = ReadonlyMap<string, ReportValue>;

export interface ReportEncodeOptions {
  /**
   * `auto` (default): DELTA_ENCODING when every set keeps every attribute of
   * the one before (delta encoding cannot delete), else INDEPENDENT_ENCODING.
   */
  readonly semantics?: 'auto' | 'delta' | 'independent';
  /**
   * The declared type of an attribute (Istio's ValueType names) where the JS
   * value does not say it: DURATION (milliseconds) and DOUBLE numbers,
   * IP_ADDRESS text (sent as 4 or 16 bytes, as Istio did).
   */
  readonly typeOf?: (name: string) => string | undefined;
  /** Global words the receiver knows; the whole list by default. */
  readonly globalWordCount?: number;
}

type D = Record<string, any>;

let loaded: { root: ProtoRoot; request: ProtoType; response: ProtoType } | undefined;

/** The Report API's messages, loaded once per process. */
export function mixerReportProtos(): { readonly root: ProtoRoot; readonly request: ProtoType; readonly response: ProtoType } {
  if (!loaded) {
    const file = fileURLToPath(new URL('./protos/mixer-report.proto', import.meta.url));
    const root = protoUtil.loadProtosWithOptionsSync([file], { keepCase: true });
    loaded = { root, request: root.lookupType('istio.mixer.v1.ReportRequest'), response: root.lookupType('istio.mixer.v1.ReportResponse') };
  }
  return loaded;
}

/** The Report method for a gRPC server: requests handed over as protobufjs decoded them (see src/mixer). */
export function mixerReportServiceDefinition(decode: (bytes: Buffer) => unknown): grpc.ServiceDefinition {
  const { response } = mixerReportProtos();
  return {
    Report: {
      path: MIXER_REPORT_PATH,
      requestStream: false,
      responseStream: false,
      requestSerialize: passThrough,
      requestDeserialize: decode,
      responseSerialize: (msg: object) => Buffer.from(response.encode(msg).finish()),
      responseDeserialize: (bytes: Buffer) => response.decode(bytes),
      originalName: 'report',
    },
  } as unknown as grpc.ServiceDefinition;
}

function passThrough(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

let clientCtor: grpc.ServiceClientConstructor | undefined;

/** A Mixer client whose Report takes bytes from encodeReport and ignores the (empty) answer. */
export function mixerReportClient(address: string, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(), options: grpc.ClientOptions = {}): MixerReportClient {
  clientCtor ??= grpc.makeGenericClientConstructor(mixerReportServiceDefinition(() => ({})) as grpc.ServiceDefinition, MIXER_SERVICE);
  return new clientCtor(address, credentials, options) as unknown as MixerReportClient;
}

/** The generated client's shape. */
export interface MixerReportClient extends grpc.Client {
  Report(request: Uint8Array, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null) => void): grpc.ClientUnaryCall;
}

/**
 * Attributes whose string value is different for every request: their
 * words are written without being looked up or remembered (a word list
 * that kept them would hold every request's id until the message is sent,
 * long enough for V8 to promote them all to the old generation).
 */
const UNIQUE_PER_REQUEST = new Set(['request.id']);

/**
 * Per-message word list: global indexes first, then negative indexes into
 * the message's default_words, which are written out as they are added
 * (the strings themselves are not kept, except as keys of the lookup).
 */
class WordTable {
  /** The default_words fields so far, ready to be copied after the sets. */
  readonly out: ProtoWriter;
  count = 0;
  readonly #local = new Map<string, number>();
  readonly #globalCount: number;
  /** Words remembered by the set being written, forgotten if it moves to the next message. */
  readonly #pending: string[] = [];
  #markPos = 0;
  #markCount = 0;

  constructor(globalCount: number, sizeHint: number) {
    this.#globalCount = globalCount;
    this.out = new ProtoWriter(Buffer.allocUnsafe(Math.min(Math.max(1024, sizeHint), 4 * 1024 * 1024)));
  }

  /** Bytes the words take as default_words fields. */
  get bytes(): number {
    return this.out.pos;
  }

  index(word: string): number {
    const g = GLOBAL_WORD_INDEX.get(word);
    if (g !== undefined && g < this.#globalCount) return g;
    let l = this.#local.get(word);
    if (l === undefined) {
      l = this.unique(word);
      this.#local.set(word, l);
      this.#pending.push(word);
    }
    return l;
  }

  /** A word written as a new entry, without a lookup (a value no other set repeats). */
  unique(word: string): number {
    // A repeated string keeps empty elements.
    const len = Buffer.byteLength(word);
    this.out.reserve(6 + len);
    this.out.header(DEFAULT_WORDS, len);
    this.out.pos += this.out.buf.write(word, this.out.pos, 'utf8');
    return -++this.count;
  }

  /** Before a set: the point truncate() returns to. */
  mark(): void {
    this.#markPos = this.out.pos;
    this.#markCount = this.count;
    this.#pending.length = 0;
  }

  /** Forgets the words the set since mark() added (it went into the next message instead). */
  truncate(): void {
    for (const w of this.#pending) this.#local.delete(w);
    this.#pending.length = 0;
    this.out.pos = this.#markPos;
    this.count = this.#markCount;
  }
}

function sameValue(a: ReportValue | undefined, b: ReportValue): boolean {
  if (a === b) return true;
  if (a === undefined) return false;
  if (a instanceof Date) return b instanceof Date && a.getTime() === b.getTime();
  if (a instanceof Uint8Array) return b instanceof Uint8Array && Buffer.compare(a, b) === 0;
  if (a instanceof Map) {
    const m = b as ReadonlyMap<string, string>;
    if (!(m instanceof Map) || m.size !== a.size) return false;
    for (const [k, v] of a) if (m.get(k) !== v) return false;
    return true;
  }
  return false;
}

/** Delta encoding only when no set drops an attribute the previous one had. */
function deltaSafe(bags: readonly ReportBag[]): boolean {
  for (let i = 1; i < bags.length; i++) if (!keepsEveryAttribute(bags[i - 1]!, bags[i]!)) return false;
  return true;
}

/**
 * `cur` has every attribute `prev` had, so delta encoding can carry it.
 * Bags of one logger list their attributes in the same order, so a walk of
 * both key lists side by side usually answers without a lookup.
 */
function keepsEveryAttribute(prev: ReportBag, cur: ReportBag): boolean {
  if (sameKeyOrder(prev, cur)) return true;
  for (const name of prev.keys()) if (!cur.has(name)) return false;
  return true;
}

/** Both bags have the same attribute names in the same order. */
function sameKeyOrder(a: ReportBag, b: ReportBag): boolean {
  if (a.size !== b.size) return false;
  const bk = b.keys();
  for (const name of a.keys()) if (bk.next().value !== name) return false;
  return true;
}

/** Whole seconds and the nanoseconds past them, as Timestamp and Duration carry a time. */
function secondsAndNanos(ms: number, floor: boolean): [number, number] {
  const s = floor ? Math.floor(ms / 1000) : Math.trunc(ms / 1000);
  const nanos = (ms - s * 1000) * 1e6;
  return [s, floor ? Math.floor(nanos) : Math.round(nanos)];
}

/** `10.0.0.1` / `fd00::1` -> 4 / 16 bytes; undefined when not an address. */
export function ipBytes(text: string): Uint8Array | undefined {
  if (isIPv4(text)) return Uint8Array.from(text.split('.').map(Number));
  if (!isIPv6(text)) return undefined;
  let head = text;
  let tail4: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    tail4 = text.slice(lastColon + 1).split('.').map(Number);
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [l, r] = head.split('::') as [string, string | undefined];
  const left = l ? l.split(':') : [];
  const right = r === undefined ? [] : r ? r.split(':') : [];
  const groups = r === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  });
  if (tail4.length === 4) out.set(tail4, 12);
  return out;
}

/** Field numbers of mixer-report.proto's ReportRequest, for the writer here and Mixer's reader. */
export const REPORT_REQUEST_FIELDS = Object.freeze({ attributes: 1, defaultWords: 2, globalWordCount: 3, semantics: 4 });
/**
 * Field numbers of CompressedAttributes: its own word list, then one map per
 * value kind. Each map entry is a length-delimited message: key (field 1,
 * sint32 word index), value (field 2).
 */
export const ATTRIBUTE_FIELDS = Object.freeze({ words: 1, strings: 2, int64s: 3, doubles: 4, bools: 5, timestamps: 6, durations: 7, bytes: 8, stringMaps: 9 });

const { strings: STRINGS, int64s: INT64S, doubles: DOUBLES, bools: BOOLS, timestamps: TIMESTAMPS, durations: DURATIONS, bytes: BYTES, stringMaps: STRING_MAPS } = ATTRIBUTE_FIELDS;
const KEY_TAG = (1 << 3) | WIRE_VARINT;
const VARINT_VALUE_TAG = (2 << 3) | WIRE_VARINT;
const DOUBLE_VALUE_TAG = (2 << 3) | WIRE_FIXED64;

const int64Size = (n: number): number => (n < 0 ? 10 : varintSize(n));

/** Timestamp/Duration {seconds = 1, nanos = 2} without its zero fields (proto3). */
function timeSize(seconds: number, nanos: number): number {
  return (seconds !== 0 ? 1 + int64Size(seconds) : 0) + (nanos !== 0 ? 1 + int64Size(nanos) : 0);
}

/**
 * Writes CompressedAttributes fields as map entries, in whatever order the
 * bag lists its attributes (the wire allows interleaved map entries).
 */
class AttributeWriter {
  readonly w = new ProtoWriter(Buffer.allocUnsafe(4096));

  private entryStart(field: number, key: number, valueSize: number): void {
    const k = zigzag32(key);
    this.w.reserve(24 + valueSize);
    this.w.header(field, 1 + varintSize(k) + valueSize);
    this.w.buf[this.w.pos++] = KEY_TAG;
    this.w.varint(k);
  }

  word(field: number, key: number, word: number): void {
    const v = zigzag32(word);
    this.entryStart(field, key, 1 + varintSize(v));
    this.w.buf[this.w.pos++] = VARINT_VALUE_TAG;
    this.w.varint(v);
  }

  int64(key: number, n: number): void {
    this.entryStart(INT64S, key, 1 + int64Size(n));
    this.w.buf[this.w.pos++] = VARINT_VALUE_TAG;
    this.w.int64(n);
  }

  double(key: number, n: number): void {
    this.entryStart(DOUBLES, key, 9);
    this.w.buf[this.w.pos++] = DOUBLE_VALUE_TAG;
    this.w.double(n);
  }

  bool(key: number, b: boolean): void {
    this.entryStart(BOOLS, key, 2);
    this.w.buf[this.w.pos++] = VARINT_VALUE_TAG;
    this.w.buf[this.w.pos++] = b ? 1 : 0;
  }

  time(field: number, key: number, [seconds, nanos]: [number, number]): void {
    const size = timeSize(seconds, nanos);
    this.entryStart(field, key, 1 + varintSize(size) + size);
    this.w.header(2, size);
    if (seconds !== 0) {
      this.w.buf[this.w.pos++] = KEY_TAG; // field 1, varint: the same byte as a map key's tag
      this.w.int64(seconds);
    }
    if (nanos !== 0) {
      this.w.buf[this.w.pos++] = VARINT_VALUE_TAG;
      this.w.int64(nanos);
    }
  }

  bytes(key: number, b: Uint8Array): void {
    this.entryStart(BYTES, key, 1 + varintSize(b.length) + b.length);
    this.w.bytes(2, b);
  }

  /** A StringMap {entries = 1: map<sint32, sint32>} of word indexes. */
  stringMap(key: number, entries: readonly number[]): void {
    let size = 0;
    for (let i = 0; i < entries.length; i += 2) size += fieldSize(2 + varintSize(zigzag32(entries[i]!)) + varintSize(zigzag32(entries[i + 1]!)));
    this.entryStart(STRING_MAPS, key, 1 + varintSize(size) + size);
    this.w.header(2, size);
    for (let i = 0; i < entries.length; i += 2) {
      const k = zigzag32(entries[i]!);
      const v = zigzag32(entries[i + 1]!);
      this.w.header(1, 2 + varintSize(k) + varintSize(v));
      this.w.buf[this.w.pos++] = KEY_TAG;
      this.w.varint(k);
      this.w.buf[this.w.pos++] = VARINT_VALUE_TAG;
      this.w.varint(v);
    }
  }
}

/**
 * One CompressedAttributes into `out`: `bag`'s attributes, or with `prev`
 * only those whose value differs from prev's. The previous bag's values are
 * read side by side while both list the same names in the same order (the
 * usual case), by name otherwise.
 */
function compress(out: AttributeWriter, bag: ReportBag, prev: ReportBag | undefined, words: WordTable, typeOf: ((name: string) => string | undefined) | undefined): void {
  const prevEntries = prev?.entries();
  let aligned = prevEntries !== undefined;
  for (const [name, v] of bag) {
    if (prev) {
      let before: ReportValue | undefined;
      if (aligned) {
        const p = prevEntries!.next();
        if (!p.done && p.value[0] === name) before = p.value[1];
        else {
          aligned = false;
          before = prev.get(name);
        }
      } else before = prev.get(name);
      if (sameValue(before, v)) continue;
    }
    const n = words.index(name);
    if (typeof v === 'string') {
      const ip = typeOf?.(name) === 'IP_ADDRESS' ? ipBytes(v) : undefined;
      if (ip) out.bytes(n, ip);
      else out.word(STRINGS, n, UNIQUE_PER_REQUEST.has(name) ? words.unique(v) : words.index(v));
    } else if (typeof v === 'number') {
      const type = typeOf?.(name);
      if (type === 'DURATION') out.time(DURATIONS, n, secondsAndNanos(v, false));
      else if (type === 'DOUBLE' || !Number.isSafeInteger(v)) out.double(n, v);
      else out.int64(n, v);
    } else if (typeof v === 'boolean') out.bool(n, v);
    else if (v instanceof Date) out.time(TIMESTAMPS, n, secondsAndNanos(v.getTime(), true));
    else if (v instanceof Uint8Array) out.bytes(n, v);
    else {
      const entries: number[] = [];
      for (const [k, mv] of v) entries.push(words.index(k), words.index(mv));
      out.stringMap(n, entries);
    }
  }
}

/** The wire bytes of a ReportRequest given as a plain object (protobufjs's encode; for hand-built requests). */
export function encodeReportRequest(request: D): Uint8Array {
  return mixerReportProtos().request.encode(request).finish();
}

const { attributes: ATTRIBUTES, defaultWords: DEFAULT_WORDS, globalWordCount: GLOBAL_WORD_COUNT, semantics: SEMANTICS } = REPORT_REQUEST_FIELDS;

/** One attribute set's scratch writer per process: encoding is synchronous. */
let scratch: AttributeWriter | undefined;

/** A finished ReportRequest. */
export interface EncodedReport {
  readonly bytes: Uint8Array;
  readonly bags: number;
}

export interface ReportEncoderLimits {
  /** Bytes of one message; a set that does not fit starts the next one, a set larger than this alone is dropped. */
  readonly maxBytes?: number;
  /** Sets in one message. */
  readonly maxBags?: number;
}

/** A delta message closed after fewer sets than this (a set dropped an attribute) is followed by an independent one. */
const MIN_DELTA_RUN = 8;

/**
 * ReportRequests written one attribute set at a time, so a caller keeps
 * bytes rather than bags between flushes (a sidecar buffers a second of
 * requests: as bags they outlived the young generation and were copied and
 * marked by every collection; as bytes they are one buffer per message).
 *
 * Each message shares one word list. Delta encoding cannot remove an
 * attribute, so a set that drops one the previous set had closes the
 * message; when that happens after only a few sets, the next message is
 * written independently (every set whole) rather than as many tiny ones.
 */
export class ReportEncoder {
  readonly #typeOf: ((name: string) => string | undefined) | undefined;
  readonly #globalCount: number;
  readonly #independent: boolean;
  readonly #maxBytes: number;
  readonly #maxBags: number;
  readonly #done: EncodedReport[] = [];
  #doneBags = 0;
  #out: ProtoWriter | undefined;
  #words!: WordTable;
  #bags = 0;
  #delta = true;
  #prev: ReportBag | undefined;
  #nextIndependent = false;
  #lastSize = 0;
  #lastWordsSize = 0;

  constructor(options: ReportEncodeOptions = {}, limits: ReportEncoderLimits = {}) {
    this.#typeOf = options.typeOf;
    this.#globalCount = Math.min(options.globalWordCount ?? GLOBAL_WORDS.length, GLOBAL_WORDS.length);
    this.#independent = options.semantics === 'independent';
    this.#maxBytes = limits.maxBytes ?? Infinity;
    this.#maxBags = limits.maxBags ?? Infinity;
  }

  get globalWordCount(): number {
    return this.#globalCount;
  }

  /** Sets written and not yet taken (finished messages and the open one). */
  get buffered(): number {
    return this.#doneBags + this.#bags;
  }

  /** Finished messages are waiting for take(). */
  get ready(): boolean {
    return this.#done.length > 0;
  }

  /** Writes one set; false when it alone is larger than maxBytes (it is dropped). */
  add(bag: ReportBag): boolean {
    if (this.#bags > 0 && this.#delta && !keepsEveryAttribute(this.#prev!, bag)) {
      const short = this.#bags < MIN_DELTA_RUN;
      this.finish();
      this.#nextIndependent = short;
    }
    if (this.#written(bag)) return true;
    if (this.#bags === 0) return false;
    // Past maxBytes: the set opens the next message.
    this.finish();
    return this.#written(bag);
  }

  /** Writes `bag` into the open message (opening one); false, leaving the message as it was, when it would pass maxBytes. */
  #written(bag: ReportBag): boolean {
    if (!this.#out) this.#open();
    const out = this.#out!;
    const words = this.#words;
    words.mark();
    const set = (scratch ??= new AttributeWriter());
    set.w.pos = 0;
    compress(set, bag, this.#delta && this.#bags > 0 ? this.#prev : undefined, words, this.#typeOf);
    const size = out.pos + fieldSize(set.w.pos) + words.bytes + TRAILER_BYTES;
    if (size > this.#maxBytes) {
      words.truncate();
      if (this.#bags === 0) this.#out = undefined;
      return false;
    }
    out.reserve(6 + set.w.pos);
    out.header(ATTRIBUTES, set.w.pos);
    set.w.buf.copy(out.buf, out.pos, 0, set.w.pos);
    out.pos += set.w.pos;
    this.#bags++;
    this.#prev = bag;
    if (this.#bags >= this.#maxBags) this.finish();
    return true;
  }

  #open(): void {
    // Sized like the last message, so a steady stream of full messages never grows one by copying.
    this.#out = new ProtoWriter(Buffer.allocUnsafe(Math.min(Math.max(4096, this.#lastSize), 4 * 1024 * 1024)));
    this.#words = new WordTable(this.#globalCount, this.#lastWordsSize);
    this.#bags = 0;
    this.#prev = undefined;
    this.#delta = !this.#independent && !this.#nextIndependent;
    this.#nextIndependent = false;
  }

  /** Closes the open message, if any: its word list and header fields go after the sets. */
  finish(): void {
    const out = this.#out;
    if (!out || this.#bags === 0) return;
    const words = this.#words.out;
    out.reserve(words.pos + TRAILER_BYTES);
    words.buf.copy(out.buf, out.pos, 0, words.pos);
    out.pos += words.pos;
    this.#lastWordsSize = words.pos;
    if (this.#globalCount !== 0) {
      out.tag(GLOBAL_WORD_COUNT, WIRE_VARINT);
      out.varint(this.#globalCount);
    }
    // One set reads the same either way; say INDEPENDENT as a reader expects of a lone set.
    if (!this.#delta || this.#bags === 1) {
      out.tag(SEMANTICS, WIRE_VARINT);
      out.varint(INDEPENDENT_ENCODING);
    }
    this.#done.push({ bytes: out.bytesWritten(), bags: this.#bags });
    this.#lastSize = out.pos;
    this.#doneBags += this.#bags;
    this.#out = undefined;
    this.#bags = 0;
    this.#prev = undefined;
  }

  /** Up to `max` finished messages, oldest first, handed over. */
  take(max = Infinity): EncodedReport[] {
    const taken = this.#done.splice(0, max);
    for (const m of taken) this.#doneBags -= m.bags;
    return taken;
  }
}

/** global_word_count and repeated_attributes_semantics: two tags and varints. */
const TRAILER_BYTES = 12;

/**
 * `bags` as the bytes of one ReportRequest, written directly (no message
 * objects): delta-encoded when no set drops an attribute of the one
 * before, words shared by the whole message.
 */
export function encodeReport(bags: readonly ReportBag[], options: ReportEncodeOptions = {}): Uint8Array {
  const independent = options.semantics === 'independent' || !deltaSafe(bags);
  const encoder = new ReportEncoder({ ...options, semantics: independent ? 'independent' : 'auto' });
  for (const bag of bags) encoder.add(bag);
  encoder.finish();
  // No bags: an empty request.
  return encoder.take()[0]?.bytes ?? encodeReportRequest({ global_word_count: encoder.globalWordCount, repeated_attributes_semantics: INDEPENDENT_ENCODING });
}

/**
 * `bags` as ReportRequests of at most `maxBytes` each; a single bag larger
 * than that is counted in `tooLarge`.
 */
export function encodeReports(bags: readonly ReportBag[], maxBytes: number, options: ReportEncodeOptions = {}): { messages: EncodedReport[]; tooLarge: number } {
  const encoder = new ReportEncoder(options, { maxBytes });
  let tooLarge = 0;
  for (const bag of bags) if (!encoder.add(bag)) tooLarge++;
  encoder.finish();
  return { messages: encoder.take(), tooLarge };
}
