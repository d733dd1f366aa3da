// samples/quota-job against a real control plane with the sample's Mixer
// config: the job runs as a real process and calls Mixer's Quota and Report
// through MixerClient. Budget: 10 CPU-seconds a minute per job name; each
// run here asks for 4, so two runs are granted and the third is refused.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NODE, runMesh, startControlPlane, tempDir } from '../helpers/processes.ts';
import type { RunResult, RunningControlPlane } from '../helpers/processes.ts';
import { eventually } from '../runtime/helpers.ts';

const JOB = fileURLToPath(new URL('../../samples/quota-job/job.ts', import.meta.url));
const CONFIG = fileURLToPath(new URL('../../samples/quota-job/mixer-config.yaml', import.meta.url));
/** The job's exit code when the quota is refused (EX_TEMPFAIL). */
const EXIT_QUOTA_REFUSED = 75;

let cp: RunningControlPlane;
let dataDir: string;

before(async () => {
  dataDir = tempDir();
  cp = await startControlPlane([], dataDir);
  const r = await runMesh(['apply', '-f', '-', '--server', cp.server], { input: readFileSync(CONFIG, 'utf8') });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  // Mixer serves the sample's table once its prometheus handler's metric is registered and no problem kept the snapshot out
  // (before any table, Mixer grants every quota).
  await eventually(async () => {
    const text = await metrics();
    return /^# TYPE istio_job_cpu_seconds_total counter$/m.test(text) && /^mixer_config_problems 0$/m.test(text) ? true : undefined;
  }, 'Mixer serving the sample config');
});

after(async () => {
  await cp?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function metrics(): Promise<string> {
  return (await fetch(`http://127.0.0.1:${cp.ports.monitoring}/metrics`)).text();
}

/** Runs the job as its own process, as a user would. */
async function runJob(args: readonly string[]): Promise<RunResult> {
  const child = spawn(NODE, ['--disable-warning=ExperimentalWarning', JOB, '--mixer', `127.0.0.1:${cp.ports.mixer}`, '--rounds', '20000', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

/** The CPU-seconds a finished run printed (to three decimals). */
function usedCpuSeconds(r: RunResult): number {
  const m = /used (\d+\.\d{3}) CPU-seconds/.exec(r.stdout);
  assert.ok(m, `no usage in: ${r.stdout}`);
  return Number(m[1]);
}

const reportedUsage = new Map<string, number>();

test('runs are granted until the per-minute CPU-seconds are used, then refused with exit 75 and a clear message', { timeout: 60_000 }, async () => {
  for (let run = 1; run <= 2; run++) {
    const r = await runJob(['--name', 'nightly-report', '--cpu-seconds', '4']);
    assert.equal(r.code, 0, `run ${run}: ${r.stderr}${r.stdout}`);
    assert.match(r.stdout, /granted 4 CPU-seconds to job "nightly-report"/);
    reportedUsage.set('nightly-report', (reportedUsage.get('nightly-report') ?? 0) + usedCpuSeconds(r));
  }
  // 8 of 10 used: 4 more would exceed the budget, and memquota grants all or nothing.
  const refused = await runJob(['--name', 'nightly-report', '--cpu-seconds', '4']);
  assert.equal(refused.code, EXIT_QUOTA_REFUSED, refused.stderr + refused.stdout);
  assert.match(refused.stderr, /quota refused: job "nightly-report" asked for 4 CPU-seconds of quota "cpu-seconds"/);
  assert.doesNotMatch(refused.stdout, /working/, 'a refused job does not start its work');
});

test('a job with another name has its own allotment', { timeout: 30_000 }, async () => {
  const r = await runJob(['--name', 'weekly-rollup', '--cpu-seconds', '4']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  reportedUsage.set('weekly-rollup', usedCpuSeconds(r));
});

test('the CPU-seconds the runs reported reach Mixer: istio_job_cpu_seconds_total per job on the control plane /metrics', { timeout: 30_000 }, async () => {
  assert.equal(reportedUsage.size, 2, 'the tests above ran');
  for (const [job, used] of reportedUsage) {
    const value = await eventually(async () => {
      const m = new RegExp(`^istio_job_cpu_seconds_total\\{job_name="${job}"\\} (\\S+)$`, 'm').exec(await metrics());
      return m ? Number(m[1]) : undefined;
    }, `istio_job_cpu_seconds_total for ${job}`);
    // The job prints three decimals of what it sent; the refused run sent nothing.
    assert.ok(Math.abs(value - used) < 0.002, `${job}: Mixer counted ${value}, the runs reported ${used}`);
  }
});

test('bad arguments and an unreachable Mixer fail with their own exit codes and messages', { timeout: 30_000 }, async () => {
  const usage = await runJob(['--name', 'nightly-report', '--cpu-seconds', '0']);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--cpu-seconds: "0" must be a whole number of CPU-seconds, at least 1/);
  const noName = await runJob(['--cpu-seconds', '1']);
  assert.equal(noName.code, 2);
  assert.match(noName.stderr, /--name: "" must be/);
  // A port nothing listens on: Mixer's Quota RPC fails, and the job does not run unchecked.
  const unreachable = await runJob(['--name', 'nightly-report', '--cpu-seconds', '1', '--mixer', '127.0.0.1:1']);
  assert.equal(unreachable.code, 1, unreachable.stderr + unreachable.stdout);
  assert.match(unreachable.stderr, /quota-job: failed: Mixer ShouldRateLimit failed/);
  assert.doesNotMatch(unreachable.stdout, /working/);
});
