// Istio 1.4's Report API on the wire (src/xds/protos/mixer-report.proto):
// attribute bags batched into one ReportRequest, every string replaced by an
// index into Istio's global dictionary or into one word list shared by the
// whole message (default_words), sets delta-encoded against the previous one
// when that loses nothing. Shared by the proxy's Mixer report logger and
// Mixer's own client; Mixer decodes (src/mixer/report-decoder.ts).
//
// Messages are built ready for protobufjs's encode (no fromObject pass) and
// sent on a client whose serializer passes the bytes through.

import { isIPv4, isIPv6 } from 'node:net';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import type { ProtoRoot, ProtoType } from './protos.ts';
import { GLOBAL_WORDS, GLOBAL_WORD_INDEX } from './mixer-global-dictionary.ts';

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

/** Per-message word list: global indexes first, then negative indexes into `words`. */
class WordTable {
  readonly words: string[] = [];
  readonly #local = new Map<string, number>();
  readonly #globalCount: number;

  constructor(globalCount: number) {
    this.#globalCount = globalCount;
  }

  index(word: string): number {
    const g = GLOBAL_WORD_INDEX.get(word);
    if (g !== undefined && g < this.#globalCount) return g;
    let l = this.#local.get(word);
    if (l === undefined) {
      this.words.push(word);
      l = -this.words.length;
      this.#local.set(word, l);
    }
    return l;
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

/**
 * Delta encoding only when no set drops an attribute the previous one had.
 * Bags of one logger list their attributes in the same order, so a walk of
 * both key lists side by side usually answers without a lookup.
 */
function deltaSafe(bags: readonly ReportBag[]): boolean {
  for (let i = 1; i < bags.length; i++) {
    const prev = bags[i - 1]!;
    const cur = bags[i]!;
    if (sameKeyOrder(prev, cur)) continue;
    for (const name of prev.keys()) if (!cur.has(name)) return false;
  }
  return true;
}

/** Both bags have the same attribute names in the same order. */
function sameKeyOrder(a: ReportBag, b: ReportBag): boolean {
  if (a.size !== b.size) return false;
  const bk = b.keys();
  for (const name of a.keys()) if (bk.next().value !== name) return false;
  return true;
}

function timestamp(ms: number): D {
  const s = Math.floor(ms / 1000);
  return { seconds: s, nanos: Math.floor((ms - s * 1000) * 1e6) };
}

function duration(ms: number): D {
  const s = Math.trunc(ms / 1000);
  return { seconds: s, nanos: Math.round((ms - s * 1000) * 1e6) };
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

function put(out: D, field: string, key: number, value: unknown): void {
  (out[field] ??= {})[key] = value;
}

/**
 * One CompressedAttributes: `bag`'s attributes, or with `prev` only those
 * whose value differs from prev's. The previous bag's values are read side
 * by side while both list the same names in the same order (the usual case),
 * by name otherwise.
 */
function compress(bag: ReportBag, prev: ReportBag | undefined, words: WordTable, typeOf: ((name: string) => string | undefined) | undefined): D {
  const out: D = {};
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
      if (ip) put(out, 'bytes', n, ip);
      else put(out, 'strings', n, words.index(v));
    } else if (typeof v === 'number') {
      const type = typeOf?.(name);
      if (type === 'DURATION') put(out, 'durations', n, duration(v));
      else if (type === 'DOUBLE' || !Number.isSafeInteger(v)) put(out, 'doubles', n, v);
      else put(out, 'int64s', n, v);
    } else if (typeof v === 'boolean') put(out, 'bools', n, v);
    else if (v instanceof Date) put(out, 'timestamps', n, timestamp(v.getTime()));
    else if (v instanceof Uint8Array) put(out, 'bytes', n, v);
    else {
      const entries: Record<number, number> = {};
      for (const [k, mv] of v) entries[words.index(k)] = words.index(mv);
      put(out, 'string_maps', n, { entries });
    }
  }
  return out;
}

/** One ReportRequest (plain object ready for encode) carrying `bags` in order. */
export function buildReportRequest(bags: readonly ReportBag[], options: ReportEncodeOptions = {}): D {
  const globalCount = Math.min(options.globalWordCount ?? GLOBAL_WORDS.length, GLOBAL_WORDS.length);
  const words = new WordTable(globalCount);
  const semantics = options.semantics ?? 'auto';
  const delta = semantics !== 'independent' && bags.length > 1 && deltaSafe(bags);
  const attributes = bags.map((bag, i) => compress(bag, delta && i > 0 ? bags[i - 1] : undefined, words, options.typeOf));
  return {
    attributes,
    repeated_attributes_semantics: delta ? DELTA_ENCODING : INDEPENDENT_ENCODING,
    default_words: words.words,
    global_word_count: globalCount,
  };
}

/** The wire bytes of a ReportRequest built by buildReportRequest. */
export function encodeReportRequest(request: D): Uint8Array {
  return mixerReportProtos().request.encode(request).finish();
}

/** `bags` as the bytes of one ReportRequest. */
export function encodeReport(bags: readonly ReportBag[], options: ReportEncodeOptions = {}): Uint8Array {
  return encodeReportRequest(buildReportRequest(bags, options));
}

/**
 * `bags` as ReportRequests of at most `maxBytes` each (halving a batch
 * until it fits); a single bag larger than that is returned in `tooLarge`.
 */
export function encodeReports(bags: readonly ReportBag[], maxBytes: number, options: ReportEncodeOptions = {}): { messages: { bytes: Uint8Array; bags: number }[]; tooLarge: number } {
  const messages: { bytes: Uint8Array; bags: number }[] = [];
  let tooLarge = 0;
  const go = (part: readonly ReportBag[]): void => {
    if (part.length === 0) return;
    const bytes = encodeReport(part, options);
    if (bytes.byteLength <= maxBytes) messages.push({ bytes, bags: part.length });
    else if (part.length === 1) tooLarge++;
    else {
      const mid = part.length >> 1;
      go(part.slice(0, mid));
      go(part.slice(mid));
    }
  };
  go(bags);
  return { messages, tooLarge };
}
