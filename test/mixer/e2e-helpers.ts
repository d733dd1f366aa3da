// Shared setup of the Mixer end-to-end tests (e2e-*.test.ts): a control
// plane and three `mesh run` workloads as real processes on 127.0.0.1:
// ratings v1 (port 9080) and reviews v1 and v3, whose apps call ratings
// through their own sidecar and ratings' sidecar (mTLS between them).
// Each sidecar's stats listener (Istio's 15090, here on a port of its own)
// is in `statsTargets`, for a Prometheus server to scrape.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { NODE, runMesh, startControlPlane } from '../helpers/processes.ts';
import type { RunningControlPlane } from '../helpers/processes.ts';
import { eventually, startMesh } from '../runtime/helpers.ts';
import type { MeshProcess } from '../runtime/helpers.ts';

const execFileP = promisify(execFile);
const APP = fileURLToPath(new URL('../runtime/fixtures/echo-app.mjs', import.meta.url));
export const RATINGS = 'ratings.default.svc.cluster.local';

export class MixerMesh {
  readonly cp: RunningControlPlane;
  readonly v1Port: number;
  readonly v3Port: number;
  /** `host:port` of the three sidecars' stats listeners (/stats/prometheus). */
  readonly statsTargets: readonly string[];
  /** Calls through the mesh that ended in a 200, by reviews app port (warm-up calls of start() included). */
  readonly okCalls = new Map<number, number>();
  /** The control plane's standard error, line by line, from its start (where the stdio adapter writes by default); its standard output is `cp.logs`. */
  readonly cpStderr: readonly string[];
  private readonly started: MeshProcess[];

  private constructor(cp: RunningControlPlane, cpStderr: readonly string[], started: MeshProcess[], v1Port: number, v3Port: number, statsTargets: readonly string[]) {
    this.cp = cp;
    this.cpStderr = cpStderr;
    this.started = started;
    this.v1Port = v1Port;
    this.v3Port = v3Port;
    this.statsTargets = statsTargets;
  }

  /** `config`: YAML applied before the workloads start, so their first listeners already carry what it wires (e.g. Mixer reports). */
  static async start(options: { config?: string } = {}): Promise<MixerMesh> {
    const cp = await startControlPlane();
    const cpStderr = collectLines(cp.process);
    const started: MeshProcess[] = [];
    const run = (args: string[]): MeshProcess => {
      const p = startMesh(['run', '--control-plane', cp.server, ...args]);
      started.push(p);
      return p;
    };
    const ready = (p: MeshProcess): Promise<Record<string, unknown>> => p.waitFor((e) => e.msg === 'sidecar ready: config and certificate in place');
    try {
      if (options.config !== undefined) await applyYaml(cp.server, options.config);
      const ratings = run(['--service', 'ratings', '--port', '9080', '--', NODE, APP]);
      await ratings.waitFor((e) => e.msg === 'workload registered');
      const v1 = run(['--service', 'reviews', '--version', 'v1', '--port', '9080', '--wait-for-service', RATINGS, '--', NODE, APP]);
      const v3 = run(['--service', 'reviews', '--version', 'v3', '--port', '9080', '--wait-for-service', RATINGS, '--', NODE, APP]);
      const [r0, r1, r3] = await Promise.all([ratings, v1, v3].map(ready));
      const mesh = new MixerMesh(cp, cpStderr, started, Number(r1.appPort), Number(r3.appPort), [r0, r1, r3].map((r) => String(r.stats)));
      for (const port of [mesh.v1Port, mesh.v3Port]) await eventually(async () => ((await mesh.call(port)).status === 200 ? true : undefined), `reviews on ${port} reaching ratings`);
      return mesh;
    } catch (err) {
      await Promise.all(started.map((p) => p.stop()));
      await cp.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.started.map((p) => p.stop()));
    await this.cp.stop();
  }

  async apply(yaml: string): Promise<void> {
    await applyYaml(this.cp.server, yaml);
  }

  async remove(yaml: string): Promise<void> {
    const r = await runMesh(['delete', '-f', '-', '--server', this.cp.server], { input: yaml });
    assert.equal(r.code, 0, r.stderr + r.stdout);
  }

  /** reviews (v1 or v3, by its app port) calls ratings (its /echo, or `path`) through both sidecars. */
  async call(appPort: number, path?: string): Promise<{ status: number; body: string }> {
    const res = await fetch(`http://127.0.0.1:${appPort}/call?svc=ratings${path === undefined ? '' : `&path=${encodeURIComponent(path)}`}`);
    if (res.status === 200) this.okCalls.set(appPort, (this.okCalls.get(appPort) ?? 0) + 1);
    return { status: res.status, body: await res.text() };
  }

  /** The control plane's /metrics (its monitoring port). */
  async metrics(): Promise<string> {
    return (await fetch(`http://127.0.0.1:${this.cp.ports.monitoring}/metrics`)).text();
  }

  /** Check RPCs Mixer has answered (mixer_check_total, all codes). */
  async checkCalls(): Promise<number> {
    let n = 0;
    for (const m of (await this.metrics()).matchAll(/^mixer_check_total\{[^}]*\} (\d+)/gm)) n += Number(m[1]);
    return n;
  }
}

/** The lines `child` writes to its standard error from now on (a listener of its own beside any other). */
function collectLines(child: ChildProcess): string[] {
  const lines: string[] = [];
  let rest = '';
  child.stderr?.on('data', (d: Buffer) => {
    const parts = (rest + d.toString()).split('\n');
    rest = parts.pop()!;
    lines.push(...parts);
  });
  return lines;
}

async function applyYaml(server: string, yaml: string): Promise<void> {
  const r = await runMesh(['apply', '-f', '-', '--server', server], { input: yaml });
  assert.equal(r.code, 0, r.stderr + r.stdout);
}

const SAMPLE_ADAPTER = fileURLToPath(new URL('../../samples/mixer-adapter/adapter.ts', import.meta.url));

/** One line the sample adapter appended to its file. */
export interface AdapterRecord {
  readonly template: string;
  readonly instance: string;
  readonly dedup_id: string;
  readonly [field: string]: unknown;
}

/**
 * The sample out-of-process adapter (samples/mixer-adapter) as a real
 * process on 127.0.0.1, port 0; `delayMs` makes every answer that late.
 */
export class SampleAdapter {
  readonly child: ChildProcess;
  readonly address: string;

  private constructor(child: ChildProcess, address: string) {
    this.child = child;
    this.address = address;
  }

  static async start(options: { delayMs?: number; address?: string } = {}): Promise<SampleAdapter> {
    const child = spawn(NODE, ['--disable-warning=ExperimentalWarning', SAMPLE_ADAPTER, '--address', options.address ?? '127.0.0.1:0', '--delay-ms', String(options.delayMs ?? 0)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      const address = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout! }).on('line', (line) => {
          const entry = JSON.parse(line) as { msg?: string; address?: string };
          if (entry.msg === 'listening' && entry.address) resolve(entry.address);
        });
        child.once('exit', (code) => reject(new Error(`the sample adapter exited (${code}): ${stderr}`)));
      });
      return new SampleAdapter(child, address);
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
  }

  /** The `adapter` object for it (with its config descriptor), as `--print-adapter-yaml` prints it. */
  static async adapterYaml(name = 'sampleadapter', namespace = 'istio-system'): Promise<string> {
    const { stdout } = await execFileP(NODE, ['--disable-warning=ExperimentalWarning', SAMPLE_ADAPTER, '--print-adapter-yaml', '--name', name, '--namespace', namespace]);
    return stdout;
  }

  /** The JSON lines appended to `file` so far. */
  static records(file: string): AdapterRecord[] {
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as AdapterRecord);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}
