// Time as the CA sees it (validity windows, token expiry, serving-cert
// renewal): injectable so tests drive rotation with a fake clock.

export interface CitadelClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Real time; timers are unref'd so a pending renewal never keeps a process alive. */
export const systemCitadelClock: CitadelClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, Math.min(ms, 2 ** 31 - 1)).unref(),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
