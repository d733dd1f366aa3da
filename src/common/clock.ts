// Time, injectable: components read now() and arm timers through a Clock so
// tests drive debounce, heartbeats, rotation and expiry with a fake clock
// instead of sleeping.

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

// setTimeout fires at once for delays past 2^31-1 ms (about 24.8 days); a
// certificate's renewal can be further away than that.
const MAX_DELAY = 2 ** 31 - 1;

/** Real time; the timers keep the process alive, as work that is due should. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, Math.min(ms, MAX_DELAY)),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Real time for background deadlines (heartbeats, renewals): a pending timer alone never keeps a process alive. */
export const backgroundClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, Math.min(ms, MAX_DELAY)).unref(),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
