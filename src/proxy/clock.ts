// Time as the proxy's resilience code sees it: retry backoff, per-try
// timeouts, outlier ejection, health-check intervals and token buckets all
// read now() and arm timers through a Clock, so tests drive them with a
// ManualClock (linkerd's virtual time) instead of sleeping.

/** An armed timer; only the clock that made it can cancel it. */
export type TimerHandle = { readonly __timer: true } | NodeJS.Timeout;

export interface Clock {
  /** Milliseconds on a monotonic scale (not wall time). */
  now(): number;
  /** Runs `fn` once after `ms`. Background timers (health checks, outlier sweeps) pass `unref` so they never hold the process open. */
  setTimeout(fn: () => void, ms: number, unref?: boolean): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
}

export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout(fn, ms, unref) {
    const t = setTimeout(fn, ms);
    if (unref) t.unref();
    return t;
  },
  clearTimeout(handle) {
    if (handle) clearTimeout(handle as NodeJS.Timeout);
  },
};

interface ManualTimer {
  readonly __timer: true;
  at: number;
  fn: (() => void) | undefined;
  readonly seq: number;
}

/** A clock that moves only when told: advance() fires due timers in order. */
export class ManualClock implements Clock {
  private time: number;
  private seq = 0;
  private timers: ManualTimer[] = [];

  constructor(start = 0) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t: ManualTimer = { __timer: true, at: this.time + Math.max(0, ms), fn, seq: this.seq++ };
    this.timers.push(t);
    return t;
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle && 'fn' in handle) (handle as ManualTimer).fn = undefined;
  }

  /** Timers armed and not yet fired or cleared. */
  get pending(): number {
    return this.timers.filter((t) => t.fn).length;
  }

  /** Moves time forward by `ms`, firing each due timer at its own time (timers it arms fire too when due). */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      let next: ManualTimer | undefined;
      for (const t of this.timers) if (t.fn && t.at <= end && (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      if (!next) break;
      this.time = Math.max(this.time, next.at);
      const fn = next.fn!;
      next.fn = undefined;
      fn();
    }
    this.timers = this.timers.filter((t) => t.fn);
    this.time = end;
  }
}
