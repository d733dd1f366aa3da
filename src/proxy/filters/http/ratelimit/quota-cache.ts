// Cached RLS quota (RateLimitResponse.quota) per descriptor set, consumed
// locally, with Istio 1.4's mixer client prefetch policy: the allotment asked
// for is the number of requests this descriptor set saw over the last
// predict window (1 s), at least 1. A refresh is started in the background
// when fewer than half of that remain or the tokens are about to expire, so
// a busy descriptor set almost never waits; a set with no tokens makes its
// request wait for one fetch that concurrent requests share.
//
// An over-limit answer from a server that grants quota is cached until its
// `duration_until_reset`, at most CLOSE_WAIT_MS (Istio's close_wait_window):
// a rolling window frees tokens gradually, so we ask again soon.
//
// Pure bookkeeping: no I/O, no timers; time comes from the caller.

/** Istio 1.4's predict window: the allotment covers this much recent traffic. */
export const PREDICT_WINDOW_MS = 1_000;
/** Istio 1.4's close_wait_window: no background refresh this long after a short grant. */
export const CLOSE_WAIT_MS = 500;
/** Refresh in the background when the tokens held expire within this. */
const EXPIRY_MARGIN_MS = 100;
/** The most tokens one fetch asks for. */
export const MAX_PREFETCH = 10_000;
/** The most descriptor sets remembered; the oldest are forgotten beyond it. */
export const MAX_ENTRIES = 10_000;
const BUCKETS = 10;
const BUCKET_MS = PREDICT_WINDOW_MS / BUCKETS;

/** Requests over the last predict window, in 10 buckets. */
class RecentRate {
  private readonly counts = new Array<number>(BUCKETS).fill(0);
  private bucketStart = 0;
  private current = 0;

  add(now: number): void {
    this.advance(now);
    this.counts[this.current]!++;
  }

  count(now: number): number {
    this.advance(now);
    let n = 0;
    for (const c of this.counts) n += c;
    return n;
  }

  private advance(now: number): void {
    const steps = Math.floor((now - this.bucketStart) / BUCKET_MS);
    if (steps <= 0) return;
    for (let i = 0; i < Math.min(steps, BUCKETS); i++) {
      this.current = (this.current + 1) % BUCKETS;
      this.counts[this.current] = 0;
    }
    this.bucketStart += steps * BUCKET_MS;
  }
}

/** What a request may do now. */
export type QuotaDecision = 'allow' | 'deny' | 'fetch';

/**
 * The cached quota of one descriptor set. Contract: take() consumes a token
 * when there is one; grants and over-limit answers come in through
 * granted() / overLimit(); inflight marks a fetch on the wire so at most one
 * runs per descriptor set.
 */
export class QuotaEntry {
  private readonly rate = new RecentRate();
  /** Granted tokens, oldest first; each batch expires on its own. */
  private readonly slots: { available: number; expiresAt: number }[] = [];
  private overLimitUntil = 0;
  private closedUntil = 0;
  inflight = false;

  /** Counts the request and decides: a token, a cached over-limit answer, or ask the server. */
  take(now: number): QuotaDecision {
    this.rate.add(now);
    return this.consume(now);
  }

  /** take() without counting the request again (a request that waited for a fetch). */
  retake(now: number): QuotaDecision {
    return this.consume(now);
  }

  private consume(now: number): QuotaDecision {
    while (this.slots.length > 0) {
      const s = this.slots[0]!;
      if (s.expiresAt > now && s.available > 0) {
        s.available--;
        if (s.available === 0) this.slots.shift();
        return 'allow';
      }
      this.slots.shift();
    }
    return this.overLimitUntil > now ? 'deny' : 'fetch';
  }

  /** How many tokens to ask for: the recent rate, at least 1 (Istio's min_prefetch_amount). */
  wanted(now: number): number {
    return Math.min(MAX_PREFETCH, Math.max(1, this.rate.count(now)));
  }

  /** After an allowed request: should a background refresh start? */
  shouldRefresh(now: number): boolean {
    if (this.inflight || this.closedUntil > now) return false;
    const available = this.available(now);
    if (available < this.wanted(now) / 2) return true;
    const last = this.slots[this.slots.length - 1];
    return last !== undefined && last.expiresAt - now < EXPIRY_MARGIN_MS;
  }

  available(now: number): number {
    let n = 0;
    for (const s of this.slots) if (s.expiresAt > now) n += s.available;
    return n;
  }

  /** A grant of `tokens` (of `asked`) valid until `expiresAt`. */
  granted(tokens: number, asked: number, expiresAt: number, now: number): void {
    if (tokens > 0 && expiresAt > now) this.slots.push({ available: tokens, expiresAt });
    this.overLimitUntil = 0;
    // A short grant means the limit is near: stop refreshing ahead for a while.
    if (tokens < asked) this.closedUntil = now + CLOSE_WAIT_MS;
  }

  /** An over-limit answer that holds for `validMs`. */
  overLimit(validMs: number, now: number): void {
    this.overLimitUntil = now + Math.min(validMs, CLOSE_WAIT_MS);
    this.closedUntil = now + CLOSE_WAIT_MS;
  }
}

/** Quota entries by descriptor-set key, bounded by MAX_ENTRIES. */
export class QuotaCache {
  private readonly entries = new Map<string, QuotaEntry>();

  entry(key: string): QuotaEntry {
    let e = this.entries.get(key);
    if (!e) {
      if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
      e = new QuotaEntry();
      this.entries.set(key, e);
    }
    return e;
  }

  get size(): number {
    return this.entries.size;
  }
}
