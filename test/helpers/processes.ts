// Test helpers for real processes: run the `mesh` CLI, start a control plane
// on free ports and wait for its readiness line.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const MESH_BIN = join(REPO_ROOT, 'bin/mesh.js');
export const NODE = process.execPath;
export const SAMPLES = join(REPO_ROOT, '../shared/istio-samples');

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `mesh ARGS` as a real process and collects its output. */
export async function runMesh(args: readonly string[], options: { input?: string; env?: Record<string, string>; cwd?: string } = {}): Promise<RunResult> {
  const child = spawn(NODE, ['--disable-warning=ExperimentalWarning', MESH_BIN, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...process.env, MESH_LOG_LEVEL: 'warn', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(options.input ?? '');
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

export function tempDir(prefix = 'mesh-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface RunningControlPlane {
  readonly process: ChildProcess;
  readonly ports: { api: number; monitoring: number; galley: number; xds: number; mixer: number; ca: number };
  readonly server: string;
  readonly logs: string[];
  stop(): Promise<void>;
}

/**
 * Starts `mesh control-plane` on free ports and resolves once it logs
 * readiness. Without `dataDir` it gets a temporary one, removed by stop().
 */
export async function startControlPlane(extraArgs: readonly string[] = [], givenDataDir?: string): Promise<RunningControlPlane> {
  const dataDir = givenDataDir ?? tempDir();
  const child = spawn(NODE, ['--disable-warning=ExperimentalWarning', MESH_BIN, 'control-plane', '--data-dir', dataDir, '--api-port', '0', '--monitoring-port', '0', '--galley-port', '0', '--xds-port', '0', '--mixer-port', '0', '--ca-port', '0', ...extraArgs], {
    cwd: REPO_ROOT,
    env: { ...process.env, MESH_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: child.stdout });
  const ports = await new Promise<{ api: number; monitoring: number; galley: number; xds: number; mixer: number; ca: number }>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`control plane exited with ${code} before it was ready: ${stderr}\n${logs.join('\n')}`)));
    lines.on('line', (line) => {
      logs.push(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; api?: number; monitoring?: number; galley?: number; xds?: number; mixer?: number; ca?: number };
        if (entry.msg === 'control plane ready') resolve({ api: entry.api!, monitoring: entry.monitoring!, galley: entry.galley!, xds: entry.xds!, mixer: entry.mixer!, ca: entry.ca! });
      } catch {
        // not a log line
      }
    });
  });
  return {
    process: child,
    ports,
    server: `http://127.0.0.1:${ports.api}`,
    logs,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
      if (givenDataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
