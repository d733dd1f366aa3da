// Helpers for runtime tests: `mesh run` / `mesh gateway` / `mesh up` as real
// processes whose JSON log lines can be awaited, polling with a deadline, and
// the processes a process started.

import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { MESH_BIN, NODE, REPO_ROOT } from '../helpers/processes.ts';

export interface MeshProcess {
  readonly child: ChildProcess;
  readonly lines: string[];
  /** Resolves with the first log entry for which `match` holds (rejects if the process exits first or after timeoutMs). */
  waitFor(match: (entry: Record<string, unknown>, line: string) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  readonly exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function startMesh(args: readonly string[], env: Record<string, string> = {}): MeshProcess {
  const child = spawn(NODE, ['--disable-warning=ExperimentalWarning', MESH_BIN, ...args], { cwd: REPO_ROOT, env: { ...process.env, MESH_LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters = new Set<(line: string) => void>();
  const onLine = (line: string): void => {
    lines.push(line);
    for (const w of [...waiters]) w(line);
  };
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', onLine);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const parse = (line: string): Record<string, unknown> | undefined => {
    try {
      return line.startsWith('{') ? (JSON.parse(line) as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  };
  return {
    child,
    lines,
    exited,
    waitFor(match, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = (line: string): boolean => {
          const entry = parse(line) ?? {};
          if (!match(entry, line)) return false;
          done();
          resolve(entry);
          return true;
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out waiting in mesh ${args[0]}; output:\n${lines.slice(-30).join('\n')}`));
        }, timeoutMs);
        const onExit = (): void => {
          done();
          reject(new Error(`mesh ${args[0]} exited (${child.exitCode}); output:\n${lines.slice(-30).join('\n')}`));
        };
        const done = (): void => {
          clearTimeout(timer);
          waiters.delete(waiter);
          child.off('exit', onExit);
        };
        const waiter = (line: string): void => void check(line);
        for (const line of lines) if (check(line)) return;
        waiters.add(waiter);
        child.once('exit', onExit);
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await once(child, 'exit');
        clearTimeout(timer);
      }
      return child.exitCode;
    },
  };
}

/** Polls `check` until it returns a value (not undefined) or the deadline passes. */
export async function eventually<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Whether a process id is alive. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Every descendant pid of `pid` (children, their children, ...), from `ps`. */
export function descendants(pid: number): number[] {
  const rows = execFileSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' }).trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number) as [number, number]);
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const [child, parent] of rows) if (parent === p) {
      out.push(child);
      walk(child);
    }
  };
  walk(pid);
  return out;
}
