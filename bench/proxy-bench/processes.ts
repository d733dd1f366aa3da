// Process handling of the benchmarks that start proxies, origins and a
// control plane (proxy-bench.ts, mixer-bench.ts): the children they
// started, killed when the bench exits or is interrupted; free ports; waiting
// for a child to listen; stopping a child.

import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';

/** Every child a bench started and has not seen exit; killed with SIGKILL at exit (killChildrenOnExit). */
export const children = new Set<ChildProcess>();

/** Kills the running children when the process exits, and on each of `signals` (then exits 130). */
export function killChildrenOnExit(signals: readonly NodeJS.Signals[]): void {
  const cleanup = (): void => {
    for (const c of children) if (c.exitCode === null && c.pid) c.kill('SIGKILL');
  };
  for (const signal of signals) {
    process.once(signal, () => {
      cleanup();
      process.exit(130);
    });
  }
  process.once('exit', cleanup);
}

/** A port free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const p = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return p;
}

/** Resolves once 127.0.0.1:`port` accepts a connection (15 s at the most); rejects when `child` exits first. */
export async function waitPort(port: number, child: ChildProcess, name: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${name} did not listen on ${port}`);
}

/** SIGTERM, then SIGKILL after 10 s; resolves once the child has exited. */
export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}
