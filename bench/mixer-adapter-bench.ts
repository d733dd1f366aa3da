// Cost of an out-of-process Mixer adapter call (report only, no target):
// listentry checks and metric report batches through the sample adapter
// (samples/mixer-adapter, its own process) over gRPC, against the in-process
// listchecker for the same check.
//
//   node --disable-warning=ExperimentalWarning bench/mixer-adapter-bench.ts

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { Registry } from '../src/common/metrics.ts';
import { listcheckerAdapter } from '../src/mixer/index.ts';
import type { AdapterEnv, Instance } from '../src/mixer/index.ts';
import { AdapterConnections, outOfProcessAdapter } from '../src/mixer/out-of-process/index.ts';
import type { AdapterSpec } from '../src/mixer/out-of-process/index.ts';
import { SampleAdapter } from '../test/mixer/e2e-helpers.ts';

const env: AdapterEnv = { now: Date.now, metrics: new Registry(), write: () => undefined, handlerName: 'bench.istio-system' };
const check: Instance = { name: 'version.istio-system', template: 'listentry', fields: { value: 'v1' } };
const metric: Instance = { name: 'requestcount.istio-system', template: 'metric', fields: { value: 1, dimensions: new Map<string, string | number>([['source_version', 'v1'], ['response_code', 200]]) }, types: { value: 'INT64', dimensions: { source_version: 'STRING', response_code: 'INT64' } } };

async function timed(label: string, n: number, f: () => Promise<unknown>, concurrency = 1): Promise<void> {
  for (let i = 0; i < 200; i++) await f();
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let i = 0; i < n / concurrency; i++) await f();
  }));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(`${label.padEnd(48)} ${(ms * 1000 / n).toFixed(1).padStart(8)} µs/op  ${Math.round(n / (ms / 1000)).toString().padStart(7)} op/s`);
}

const dir = mkdtempSync(join(tmpdir(), 'mesh-adapter-bench-'));
const sample = await SampleAdapter.start();
try {
  const spec = (parse(await SampleAdapter.adapterYaml()) as { spec: AdapterSpec }).spec;
  const info = outOfProcessAdapter('sampleadapter', spec, { address: sample.address }, { connections: new AdapterConnections() });
  const remote = info.build(info.validate({ allow: ['v1'], file_path: join(dir, 'out.jsonl') }).params!, env);
  const local = listcheckerAdapter.build(listcheckerAdapter.validate({ overrides: ['v1'] }).params!, env);
  await timed('listentry check, in-process listchecker', 20_000, async () => local.handleCheck!(check));
  await timed('listentry check, out-of-process, 1 at a time', 2_000, async () => remote.handleCheck!(check));
  await timed('listentry check, out-of-process, 16 concurrent', 4_000, async () => remote.handleCheck!(check), 16);
  const batch = Array.from({ length: 100 }, () => metric);
  await timed('metric report, batch of 100 instances (per batch)', 300, async () => remote.handleReport!(batch));
  await remote.close();
} finally {
  await sample.stop();
  rmSync(dir, { recursive: true, force: true });
}
