// The workload's app as a child process of its sidecar: started with the
// environment the runtime computed, its output prefixed line by line, signals
// forwarded, and its exit (code or signal) reported.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';

export interface AppExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface AppProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<AppExit>;
  signal(sig: NodeJS.Signals): void;
}

/** Copies lines from `input` to `output` with a prefix (empty prefix: copied as is). */
export function prefixLines(input: Readable, output: Writable, prefix: string): void {
  const lines = createInterface({ input, crlfDelay: Infinity });
  lines.on('line', (line) => output.write(`${prefix}${line}\n`));
}

export function startApp(command: readonly string[], env: NodeJS.ProcessEnv, prefix: string): AppProcess {
  const [file, ...args] = command;
  if (!file) throw new Error('no app command');
  const child = spawn(file, args, { env, stdio: ['inherit', 'pipe', 'pipe'] });
  prefixLines(child.stdout!, process.stdout, prefix);
  prefixLines(child.stderr!, process.stderr, prefix);
  const exited = new Promise<AppExit>((resolve) => {
    child.once('error', (err) => {
      process.stderr.write(`${prefix}cannot start ${file}: ${err.message}\n`);
      resolve({ code: 127, signal: null });
    });
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return {
    child,
    exited,
    signal(sig) {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    },
  };
}
