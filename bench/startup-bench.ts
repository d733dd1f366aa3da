// `npm run bench:startup [-- --runs 3 --capture]`: how long `npm start`
// (mesh up -f samples/bookinfo/mesh.yaml) takes to serve, and what each
// process costs. Per run: wall time to the "ready in" line and to the first
// complete /productpage through the ingress gateway, then the CPU time
// (user + system, from /proc/<pid>/stat) each process of the mesh has used
// by then: the sidecars (`mesh run`, `mesh gateway`), the control plane,
// mesh up itself. The machine's load average is printed beside, since wall
// time on a shared host says little on its own; CPU per sidecar says more.
// Set MESH_CACHE_DIR=off to measure without the parsed-proto cache.

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const MESH = join(ROOT, 'bin/mesh.js');
const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, capture: { type: 'boolean', default: false } } });
const TICK_MS = 1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** CPU ms (user + system) a process has used so far. */
function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return NaN;
  }
}

function processes(): Array<{ pid: number; ppid: number; args: string }> {
  return execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' }).trim().split('\n').map((l) => {
    const m = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(l)!;
    return { pid: Number(m[1]), ppid: Number(m[2]), args: m[3]! };
  });
}

async function once(run: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-startup-bench-'));
  const topology = parseAllDocuments(readFileSync(join(ROOT, 'samples/bookinfo/mesh.yaml'), 'utf8'))[0]!.toJS() as Record<string, unknown>;
  topology.workingDir = ROOT;
  topology.apply = [join(ROOT, 'samples/bookinfo/networking/bookinfo-gateway.yaml')];
  if (values.capture) topology.capture = true;
  writeFileSync(join(dir, 'mesh.yaml'), stringify(topology));
  const load = loadavg()[0]!.toFixed(1);
  const started = Date.now();
  const up = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', MESH, 'up', '-f', join(dir, 'mesh.yaml'), '--run-dir', join(dir, 'run'), '--quiet'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const readyMs = await new Promise<number>((resolve, reject) => {
      createInterface({ input: up.stdout }).on('line', (line) => {
        if (line.startsWith('mesh up: ') && line.includes('ready in')) resolve(Date.now() - started);
      });
      up.once('exit', (code) => reject(new Error(`mesh up exited with ${code}`)));
    });
    let servingMs = NaN;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
      const ok = await fetch('http://127.0.0.1:8080/productpage', { signal: AbortSignal.timeout(3000) }).then(async (r) => r.status === 200 && (await r.text()).includes('Reviews served by:'), () => false);
      if (ok) {
        servingMs = Date.now() - started;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const all = processes();
    const tree = new Set([up.pid!]);
    for (let grew = true; grew;) {
      grew = false;
      for (const p of all) if (tree.has(p.ppid) && !tree.has(p.pid)) {
        tree.add(p.pid);
        grew = true;
      }
    }
    const mine = all.filter((p) => tree.has(p.pid) && p.args.includes('bin/mesh.js'));
    const sidecars = mine.filter((p) => / (run|gateway) /.test(p.args)).map((p) => cpuMs(p.pid));
    const controlPlane = mine.filter((p) => p.args.includes(' control-plane ')).map((p) => cpuMs(p.pid));
    const avg = sidecars.reduce((a, b) => a + b, 0) / sidecars.length;
    console.log(`run ${run}: ready ${readyMs} ms, /productpage through the gateway ${servingMs} ms; CPU: ${sidecars.length} sidecars ${avg.toFixed(0)} ms each (min ${Math.min(...sidecars).toFixed(0)}, max ${Math.max(...sidecars).toFixed(0)}), control plane ${controlPlane[0]?.toFixed(0)} ms, mesh up ${cpuMs(up.pid!).toFixed(0)} ms; load average before ${load}`);
  } finally {
    execFileSync(process.execPath, ['--disable-warning=ExperimentalWarning', MESH, 'down', '--run-dir', join(dir, 'run')], { cwd: ROOT, stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  }
}

for (let i = 1; i <= Number(values.runs); i++) await once(i);
