// Mixer's check cache in the proxy: a Check answer that carries
// dynamic_metadata["istio.mixer"] = {valid_duration_ms, valid_use_count,
// referenced_attributes} may answer later requests locally, as long as it is
// younger than valid_duration_ms, has uses left, and the request has the
// same values for every referenced attribute. The key is built from those
// values only: attributes absent from the list cannot change the answer.
// Attributes that change per request (request.time, context.time,
// request.id) make an answer uncacheable; the whole `request.headers` map
// is keyed without per-request headers (x-request-id, tracing headers).

import type { Clock } from '../../../clock.ts';

/** A decision the filter can replay: allow (with header edits) or deny (status, headers, body). */
export interface CachedDecision {
  readonly allowed: boolean;
  readonly status: number;
  readonly body: string;
  readonly headers: ReadonlyArray<readonly [string, string, boolean]>;
  readonly headersToRemove: readonly string[];
  readonly responseHeaders: ReadonlyArray<readonly [string, string, boolean]>;
}

export interface CacheHints {
  readonly validDurationMs: number;
  readonly validUseCount: number;
  readonly referencedAttributes: readonly string[];
}

/** Reads one attribute of the current request, as Mixer's vocabulary names it; undefined when absent. */
export type AttributeReader = (name: string) => string | undefined;

interface Entry {
  readonly decision: CachedDecision;
  readonly expiresAt: number;
  usesLeft: number;
}

/** One referenced-attribute list: its entries, and the last key built for it (see key()). */
interface Signature {
  readonly names: readonly string[];
  readonly entries: Map<string, Entry>;
  lastValues: readonly (string | undefined)[] | undefined;
  lastKey: string;
}

const PER_REQUEST = new Set(['request.time', 'context.time', 'request.id', 'response.time']);
const MAX_ENTRIES = 10_000;

export class CheckCache {
  private readonly clock: Clock;
  /** Referenced attribute lists seen (sorted, joined) -> the list and the entries by value key. */
  private readonly bySignature = new Map<string, Signature>();
  private size = 0;
  hits = 0;
  misses = 0;

  constructor(clock: Clock) {
    this.clock = clock;
  }

  /**
   * The values of the signature's names as one string (JSON, so distinct
   * value lists give distinct keys). Requests of one source read the same
   * value strings again and again: when every value equals the last
   * request's, the last key string is reused (its hash is already known), so
   * the common case builds no string.
   */
  private static key(sig: Signature, read: AttributeReader): string {
    const names = sig.names;
    const last = sig.lastValues;
    if (last) {
      let i = 0;
      while (i < names.length && read(names[i]!) === last[i]) i++;
      if (i === names.length) return sig.lastKey;
    }
    const values = names.map((n) => read(n));
    const key = JSON.stringify(values.map((v) => v ?? null));
    sig.lastValues = values;
    sig.lastKey = key;
    return key;
  }

  lookup(read: AttributeReader): CachedDecision | undefined {
    const now = this.clock.now();
    for (const sig of this.bySignature.values()) {
      const entries = sig.entries;
      const key = CheckCache.key(sig, read);
      const e = entries.get(key);
      if (!e) continue;
      if (e.expiresAt <= now || e.usesLeft <= 0) {
        entries.delete(key);
        this.size--;
        continue;
      }
      e.usesLeft--;
      this.hits++;
      return e.decision;
    }
    this.misses++;
    return undefined;
  }

  store(hints: CacheHints, read: AttributeReader, decision: CachedDecision): void {
    if (hints.validDurationMs <= 0 || hints.validUseCount <= 0) return;
    if (hints.referencedAttributes.some((a) => PER_REQUEST.has(a))) return;
    const names = [...new Set(hints.referencedAttributes)].sort();
    const signature = names.join('\n');
    let sig = this.bySignature.get(signature);
    if (!sig) this.bySignature.set(signature, (sig = { names, entries: new Map(), lastValues: undefined, lastKey: '' }));
    const entries = sig.entries;
    if (this.size >= MAX_ENTRIES) this.evictOne();
    const key = CheckCache.key(sig, read);
    if (!entries.has(key)) this.size++;
    entries.set(key, { decision, expiresAt: this.clock.now() + hints.validDurationMs, usesLeft: hints.validUseCount });
  }

  private evictOne(): void {
    for (const { entries } of this.bySignature.values()) {
      const first = entries.keys().next();
      if (!first.done) {
        entries.delete(first.value);
        this.size--;
        return;
      }
    }
  }
}
