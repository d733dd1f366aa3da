// What a `mesh` sub-command is: its name, help text, flags (node:util parseArgs
// configuration) and the function that runs it.

import type { ParseArgsConfig } from 'node:util';

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

export type FlagValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

export interface Command {
  readonly name: string;
  readonly summary: string;
  /** Usage line(s) and flag descriptions printed by `--help`. */
  readonly help: string;
  readonly options: NonNullable<ParseArgsConfig['options']>;
  /** Whether positional arguments are accepted. */
  readonly positionals?: boolean;
  run(flags: FlagValues, positionals: string[], io: CliIo): Promise<number>;
}

/** Flags most commands share, kubectl style. */
export const COMMON_FLAGS = {
  filename: { type: 'string', short: 'f', multiple: true },
  namespace: { type: 'string', short: 'n' },
  output: { type: 'string', short: 'o' },
  server: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export function str(flags: FlagValues, name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' ? v : undefined;
}

export function strings(flags: FlagValues, name: string): string[] {
  const v = flags[name];
  return Array.isArray(v) ? (v as string[]) : typeof v === 'string' ? [v] : [];
}
