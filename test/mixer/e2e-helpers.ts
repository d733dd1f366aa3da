// Shared setup of the Mixer end-to-end tests (e2e-*.test.ts): a control
// plane and three `mesh run` workloads as real processes on 127.0.0.1:
// ratings v1 (port 9080) and reviews v1 and v3, whose apps call ratings
// through their own sidecar and ratings' sidecar (mTLS between them).

import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { NODE, runMesh, startControlPlane } from '../helpers/processes.ts';
import type { RunningControlPlane } from '../helpers/processes.ts';
import { eventually, startMesh } from '../runtime/helpers.ts';
import type { MeshProcess } from '../runtime/helpers.ts';

const APP = fileURLToPath(new URL('../runtime/fixtures/echo-app.mjs', import.meta.url));
export const RATINGS = 'ratings.default.svc.cluster.local';

export class MixerMesh {
  readonly cp: RunningControlPlane;
  readonly v1Port: number;
  readonly v3Port: number;
  private readonly started: MeshProcess[];

  private constructor(cp: RunningControlPlane, started: MeshProcess[], v1Port: number, v3Port: number) {
    this.cp = cp;
    this.started = started;
    this.v1Port = v1Port;
    this.v3Port = v3Port;
  }

  static async start(): Promise<MixerMesh> {
    const cp = await startControlPlane();
    const started: MeshProcess[] = [];
    const run = (args: string[]): MeshProcess => {
      const p = startMesh(['run', '--control-plane', cp.server, ...args]);
      started.push(p);
      return p;
    };
    try {
      const ratings = run(['--service', 'ratings', '--port', '9080', '--', NODE, APP]);
      await ratings.waitFor((e) => e.msg === 'workload registered');
      const v1 = run(['--service', 'reviews', '--version', 'v1', '--port', '9080', '--wait-for-service', RATINGS, '--', NODE, APP]);
      const v3 = run(['--service', 'reviews', '--version', 'v3', '--port', '9080', '--wait-for-service', RATINGS, '--', NODE, APP]);
      const [r1, r3] = await Promise.all([v1, v3].map((p) => p.waitFor((e) => e.msg === 'sidecar ready: config and certificate in place')));
      const mesh = new MixerMesh(cp, started, Number(r1.appPort), Number(r3.appPort));
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
    const r = await runMesh(['apply', '-f', '-', '--server', this.cp.server], { input: yaml });
    assert.equal(r.code, 0, r.stderr + r.stdout);
  }

  async remove(yaml: string): Promise<void> {
    const r = await runMesh(['delete', '-f', '-', '--server', this.cp.server], { input: yaml });
    assert.equal(r.code, 0, r.stderr + r.stdout);
  }

  /** reviews (v1 or v3, by its app port) calls ratings through both sidecars. */
  async call(appPort: number): Promise<{ status: number; body: string }> {
    const res = await fetch(`http://127.0.0.1:${appPort}/call?svc=ratings`);
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
