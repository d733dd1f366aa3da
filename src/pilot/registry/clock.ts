// Time for the registry's heartbeat timers, injectable so tests drive it with
// a fake clock instead of sleeping. Same shape as Galley's Clock.

export interface RegistryClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * Real time. Timers are unref'd: a heartbeat deadline alone must not keep a
 * process alive (the servers that feed the registry do that).
 */
export const systemRegistryClock: RegistryClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
