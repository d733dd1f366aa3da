// Time as the ADS server sees it: injectable so debounce tests advance a fake
// clock instead of sleeping.

export type { Clock } from '../../common/index.ts';
export { systemClock } from '../../common/index.ts';

/** The part of a logger the server uses; a pino Logger (src/common createLogger) fits. */
export interface PilotLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const noopLog: PilotLogger = { debug() {}, info() {}, warn() {}, error() {} };
