// Time as the ADS server sees it: injectable so debounce tests advance a fake
// clock instead of sleeping.

/** Timers and "now" in milliseconds. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** The part of a logger the server uses; a pino Logger (src/common createLogger) fits. */
export interface PilotLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const noopLog: PilotLogger = { debug() {}, info() {}, warn() {}, error() {} };
