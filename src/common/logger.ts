// Structured logging: one JSON line per event (pino), a child logger per
// module scope so every line says where it came from.

import { pino } from 'pino';
import type { Logger } from 'pino';
import { env } from './env.ts';

export type { Logger };

let root: Logger | undefined;

function rootLogger(): Logger {
  root ??= pino({ level: env('MESH_LOG_LEVEL') ?? 'info', base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
  return root;
}

/** A logger for one module, e.g. `createLogger('galley.store')`. */
export function createLogger(scope: string): Logger {
  return rootLogger().child({ scope });
}

/** A logger that drops everything (tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
