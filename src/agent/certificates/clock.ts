// Time for certificate rotation and retry backoff: injectable so tests drive
// rotation with a fake clock instead of waiting hours.

export interface AgentClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Real time; timers are unref'd (the proxy's listeners keep the process alive, not a pending renewal). */
export const systemAgentClock: AgentClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, Math.min(ms, 2 ** 31 - 1)).unref(),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
