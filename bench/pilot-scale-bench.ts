// Pilot scale benchmark (a command, not a test):
//   npm run bench:pilot [-- --services 1000 --clients 2000 --protocol mixed --rounds 3]
//
// Starts a real control plane (ControlPlane.start, as `mesh control-plane`
// runs it, in a child process), loads N services (ServiceEntry STATIC,
// MESH_INTERNAL, one HTTP port, workloadSelector) with 2 WorkloadEntries each,
// plus VirtualServices and DestinationRules through the config API (POST
// /apply in batches), then connects M simulated sidecars from a separate
// process (bench/pilot-scale/ads-clients.ts: SotW and delta ADS streams that
// subscribe and ACK as Envoy does). Reports
//  - time to first complete config per proxy (CDS+LDS ACKed, every RDS/EDS
//    name it asked for received), p50/p99;
//  - convergence after a VirtualService change and after an endpoint change
//    (a WorkloadEntry's address): per proxy, from the apply request to the
//    last ACK of a response carrying the affected resource; p50/p99/max;
//  - control-plane CPU seconds per phase (/proc/PID/stat utime+stime) and peak
//    RSS (VmHWM from /proc/PID/status).
// Everything runs on 127.0.0.1; every child is ended on exit, failure or
// Ctrl-C, and the children end themselves when this process disappears.

import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { TypeUrl } from '../src/xds/index.ts';
import type { ClientSpec, CollectResult } from './pilot-scale/ads-clients.ts';
import type { ConfigObject } from './pilot-scale/config.ts';
import { hostOf, meshConfig, namespaceOf, portOf, routedServices, virtualService, workloadEntry, workloadIp, workloadName } from './pilot-scale/config.ts';

const { values } = parseArgs({
  options: {
    services: { type: 'string', default: '1000' },
    clients: { type: 'string', default: '2000' },
    routes: { type: 'string', default: '100' },
    protocol: { type: 'string', default: 'mixed' },
    rounds: { type: 'string', default: '3' },
    'batch-size': { type: 'string', default: '250' },
    'streams-per-channel': { type: 'string', default: '100' },
    'ramp-ms': { type: 'string', default: '0' },
    'timeout-s': { type: 'string', default: '900' },
    'cpu-prof': { type: 'boolean', default: false },
    'client-cpu-prof': { type: 'boolean', default: false },
    'cp-semi-space-mb': { type: 'string', default: '0' },
    'cp-log-level': { type: 'string', default: 'info' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  console.log(`Usage: node bench/pilot-scale-bench.ts [options]
  --services N            services (ServiceEntries), 2 WorkloadEntries each (default 1000)
  --clients N             simulated sidecars (default 2000)
  --routes N              VirtualServices, and as many DestinationRules (default 100)
  --protocol P            sotw | delta | mixed (half each; default mixed)
  --rounds N              changes of each kind measured (default 3)
  --batch-size N          objects per POST /apply (default 250)
  --streams-per-channel N ADS streams per gRPC connection of the client process (default 100)
  --ramp-ms N             spread the clients' connects over N ms (default 0: all at once)
  --timeout-s N           give up after N seconds (default 900)
  --cpu-prof              run the control plane with --cpu-prof (profile in the working directory)
  --client-cpu-prof       run the client process with --cpu-prof (profile in the working directory)
  --cp-semi-space-mb N    run the control plane with --max-semi-space-size=N (default 0: V8's default)
  --cp-log-level L        MESH_LOG_LEVEL of the control plane (default info)`);
  process.exit(0);
}

const SERVICES = Number(values.services);
const CLIENTS = Number(values.clients);
const ROUTES = Number(values.routes);
const ROUNDS = Number(values.rounds);
const BATCH = Number(values['batch-size']);
const PROTOCOL = values.protocol as 'sotw' | 'delta' | 'mixed';
if (![SERVICES, CLIENTS, ROUTES, ROUNDS, BATCH].every((n) => Number.isInteger(n) && n >= 0) || SERVICES < 1 || CLIENTS < 1 || BATCH < 1) throw new Error('--services, --clients, --routes, --rounds and --batch-size take whole numbers (services, clients, batch size >= 1)');
if (!['sotw', 'delta', 'mixed'].includes(PROTOCOL)) throw new Error('--protocol is sotw, delta or mixed');

const TARGETS = { routeP99Ms: 1000, endpointP99Ms: 500, rssBytes: 0.75 * 1024 ** 3 };
const nowAbs = (): number => performance.timeOrigin + performance.now();
const children: ChildProcess[] = [];

// ---- helpers ------------------------------------------------------------------

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const fmtMs = (ms: number): string => (Number.isNaN(ms) ? '-' : ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`);
const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;

/** utime+stime of a process in seconds, from /proc. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime is field 14, stime 15.
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
}

function procStatus(pid: number, key: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

function post(port: number, path: string, body: unknown): Promise<{ status: number; body: string }> {
  const data = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': data.length }, timeout: 120_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('timeout', () => req.destroy(new Error(`POST ${path} timed out`)));
    req.on('error', reject);
    req.end(data);
  });
}

async function apply(port: number, objects: ConfigObject[]): Promise<void> {
  const res = await post(port, '/apply', { objects });
  if (res.status !== 200) throw new Error(`POST /apply answered ${res.status}: ${res.body.slice(0, 2000)}`);
}

/** Request/response over a child's IPC channel. */
class Rpc {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly child: ChildProcess;
  constructor(child: ChildProcess, onEvent: (msg: Record<string, unknown>) => void) {
    this.child = child;
    child.once('exit', (code) => {
      for (const p of this.pending.values()) p.reject(new Error(`child ${child.pid} exited (${code}) with a request pending`));
      this.pending.clear();
    });
    child.on('message', (msg: Record<string, unknown>) => {
      const id = msg.id as number | undefined;
      if (id !== undefined && this.pending.has(id)) {
        this.pending.get(id)!.resolve(msg.result ?? msg.usage);
        this.pending.delete(id);
      } else onEvent(msg);
    });
  }
  call<T>(msg: Record<string, unknown>): Promise<T> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ ...msg, id });
    });
  }
}

function killAll(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

// ---- phases -------------------------------------------------------------------

interface ControlPlaneChild {
  child: ChildProcess;
  pid: number;
  ports: { api: number; monitoring: number; galley: number; xds: number };
  logs: string[];
}

async function startControlPlane(dataDir: string): Promise<ControlPlaneChild> {
  const semiSpace = Number(values['cp-semi-space-mb']);
  const execArgv = ['--disable-warning=ExperimentalWarning', ...(semiSpace > 0 ? [`--max-semi-space-size=${semiSpace}`] : []), ...(values['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', process.cwd()] : [])];
  const child = fork(new URL('./pilot-scale/control-plane.ts', import.meta.url).pathname, [dataDir], {
    execArgv,
    env: { ...process.env, MESH_LOG_LEVEL: values['cp-log-level'] },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  children.push(child);
  const logs: string[] = [];
  let partial = '';
  // Keep the few lines about pushes; drop the rest (but always read, so the pipe never blocks the child).
  child.stdout!.on('data', (d: Buffer) => {
    const text = partial + d.toString();
    const lines = text.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line.includes('"msg":"push"') || line.includes('"level":50') || line.includes('"level":40')) logs.push(line);
  });
  const msg = await new Promise<{ ports: ControlPlaneChild['ports']; pid: number }>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`control plane exited (${code}) before it was ready`)));
    child.on('message', (m: { ready?: boolean; ports: ControlPlaneChild['ports']; pid: number }) => m.ready && resolve(m));
  });
  return { child, pid: msg.pid, ports: msg.ports, logs };
}

function clientSpecs(): ClientSpec[] {
  const out: ClientSpec[] = [];
  const workloads = SERVICES * 2;
  for (let c = 0; c < CLIENTS; c++) {
    const protocol = PROTOCOL === 'mixed' ? (c % 2 === 0 ? 'sotw' : 'delta') : PROTOCOL;
    if (c < workloads) {
      // The sidecar of workload c.
      const ns = namespaceOf(Math.floor(c / 2));
      out.push({ id: `sidecar~${workloadIp(c)}~${workloadName(c)}.${ns}~${ns}.svc.cluster.local`, protocol });
    } else {
      // More proxies than workloads: sidecars with no WorkloadEntry (outbound config only).
      const ns = namespaceOf(c);
      out.push({ id: `sidecar~${workloadIp(c, 100)}~extra-${c}.${ns}~${ns}.svc.cluster.local`, protocol });
    }
  }
  return out;
}

interface Row {
  what: string;
  p50: number;
  p99: number;
  max: number;
  n: string;
  target?: string;
}

async function main(): Promise<void> {
  const started = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'mesh-pilot-bench-'));
  const rows: Row[] = [];
  const cpu: { phase: string; seconds: number; wallMs: number }[] = [];
  try {
    console.log(`Pilot scale benchmark: ${SERVICES} services x 2 workloads, ${Math.min(ROUTES, SERVICES)} VirtualServices + DestinationRules, ${CLIENTS} ${PROTOCOL} ADS clients; Node ${process.version}, ${(await import('node:os')).cpus().length} CPUs`);
    const cp = await startControlPlane(join(dir, 'data'));
    console.log(`  control plane pid ${cp.pid}: api ${cp.ports.api}, xds ${cp.ports.xds}`);
    let cpuMark = cpuSeconds(cp.pid);
    let wallMark = performance.now();
    const phase = (name: string): void => {
      const s = cpuSeconds(cp.pid);
      const t = performance.now();
      cpu.push({ phase: name, seconds: s - cpuMark, wallMs: t - wallMark });
      cpuMark = s;
      wallMark = t;
    };

    // 1. Config.
    const objects = meshConfig(SERVICES, ROUTES);
    const tLoad = performance.now();
    for (let i = 0; i < objects.length; i += BATCH) await apply(cp.ports.api, objects.slice(i, i + BATCH));
    const loadMs = performance.now() - tLoad;
    console.log(`  applied ${objects.length} objects in ${fmtMs(loadMs)} (${Math.ceil(objects.length / BATCH)} batches)`);
    // Let the debounced pushes of the load settle before the clients come.
    await new Promise((r) => setTimeout(r, 1500));
    phase('load config');

    // 2. Clients.
    const completions: number[] = [];
    let allComplete: () => void = () => undefined;
    const allDone = new Promise<void>((r) => (allComplete = r));
    const clientChild = fork(new URL('./pilot-scale/ads-clients.ts', import.meta.url).pathname, [], { execArgv: ['--disable-warning=ExperimentalWarning', '--max-old-space-size=4096', ...(values['client-cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', process.cwd(), '--cpu-prof-name', 'ads-clients.cpuprofile'] : [])], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(clientChild);
    const clients = new Rpc(clientChild, (msg) => {
      if (msg.event === 'complete') {
        completions.push(msg.ms as number);
        if (completions.length === CLIENTS) allComplete();
      }
    });
    // Memory of the control plane during the connect storm, sampled: where the peak is (heap or buffers).
    const cpRpc = new Rpc(cp.child, () => undefined);
    const peakMem = { rss: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
    const sampler = setInterval(() => {
      void cpRpc.call<{ memory: NodeJS.MemoryUsage }>({ cmd: 'usage' }).then(({ memory }) => {
        for (const k of ['rss', 'heapUsed', 'external', 'arrayBuffers'] as const) peakMem[k] = Math.max(peakMem[k], memory[k]);
      }, () => undefined);
    }, 1000);
    const specs = clientSpecs();
    const tConnect = performance.now();
    clientChild.send({ cmd: 'start', target: `127.0.0.1:${cp.ports.xds}`, clients: specs, streamsPerChannel: Number(values['streams-per-channel']), rampMs: Number(values['ramp-ms']) });
    const connectTimeout = Math.max(60_000, Number(values['timeout-s']) * 1000 - (performance.now() - started));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([allDone, new Promise<void>((r) => (timer = setTimeout(r, connectTimeout)))]);
    clearTimeout(timer);
    clearInterval(sampler);
    const connectMs = performance.now() - tConnect;
    rows.push({ what: 'first complete config (per proxy)', p50: percentile(completions, 50), p99: percentile(completions, 99), max: percentile(completions, 100), n: `${completions.length}/${CLIENTS}` });
    console.log(`  ${completions.length}/${CLIENTS} proxies complete after ${fmtMs(connectMs)}; control plane during connect (1 s samples, peaks): rss ${mib(peakMem.rss)}, heap used ${mib(peakMem.heapUsed)}, external ${mib(peakMem.external)} (array buffers ${mib(peakMem.arrayBuffers)})`);
    phase(`connect ${CLIENTS} proxies`);
    if (completions.length < CLIENTS) throw new Error(`only ${completions.length} of ${CLIENTS} proxies got a complete config in ${fmtMs(connectTimeout)}`);
    await new Promise((r) => setTimeout(r, 1000));
    const usageAfterConnect = await clients.call<{ responses: number; bytes: number; errors: number }>({ cmd: 'usage' });
    console.log(`  initial sync: ${usageAfterConnect.responses} responses, ${mib(usageAfterConnect.bytes)} of resources to the clients, ${usageAfterConnect.errors} stream errors`);

    // 3. Changes.
    const routed = routedServices(SERVICES, ROUTES);
    const xdsStats = async (): Promise<{ responses: number; drainWaits: number } | undefined> => (await cpRpc.call<{ xds?: { responses: number; drainWaits: number } }>({ cmd: 'usage' })).xds;
    const measure = async (label: string, typeUrl: string, match: string, change: () => Promise<void>, quietMs: number): Promise<CollectResult> => {
      await clients.call({ cmd: 'mark' });
      const statsBefore = await xdsStats();
      const since = nowAbs();
      await change();
      const result = await clients.call<CollectResult>({ cmd: 'collect', since, typeUrl, match, quietMs, timeoutMs: 60_000 });
      const d = result.delays;
      // When Pilot started the push (its `push` log line): the part of the delay spent before any proxy is served (Galley + both debounces).
      const pushAt = cp.logs.map((l) => { try { return JSON.parse(l) as { msg?: string; time?: string }; } catch { return {}; } }).filter((e) => e.msg === 'push' && e.time && Date.parse(e.time) >= since - 1).map((e) => Date.parse(e.time!) - since);
      const statsAfter = await xdsStats();
      // Pushes that waited for a stream's 'drain' (write backpressure) during this change.
      const drainNote = statsBefore && statsAfter ? `  drain waits ${statsAfter.drainWaits - statsBefore.drainWaits}` : '';
      const pushNote = (pushAt.length > 0 ? `  push started +${fmtMs(pushAt[0]!)}` : '') + drainNote;
      console.log(`  ${label.padEnd(40)} p50 ${fmtMs(percentile(d, 50)).padStart(7)}  p99 ${fmtMs(percentile(d, 99)).padStart(7)}  max ${fmtMs(percentile(d, 100)).padStart(7)}  proxies ${d.length}/${CLIENTS}  responses ${JSON.stringify(result.responsesByType)} (${Object.entries(result.bytesByType).map(([t, b]) => `${t} ${mib(b)}`).join(', ')})${pushNote}`);
      return result;
    };
    const routeDelays: number[] = [];
    let routeMissing = 0;
    if (routed.length > 0) {
      const svc = routed[0]!;
      for (let r = 0; r < ROUNDS; r++) {
        const weight = r % 2 === 0 ? 50 : 80;
        const res = await measure(`VirtualService svc-${svc} weights -> ${weight}/${100 - weight}`, TypeUrl.RouteConfiguration, String(portOf(svc)), () => apply(cp.ports.api, [virtualService(svc, weight)]), 1500);
        routeDelays.push(...res.delays);
        routeMissing += res.missing;
      }
      rows.push({ what: 'route change (VirtualService) -> last ACK', p50: percentile(routeDelays, 50), p99: percentile(routeDelays, 99), max: percentile(routeDelays, 100), n: `${routeDelays.length}/${CLIENTS * ROUNDS}`, target: `p99 < ${fmtMs(TARGETS.routeP99Ms)}` });
      phase(`${ROUNDS} route changes`);
    }
    const endpointDelays: number[] = [];
    let endpointMissing = 0;
    for (let r = 0; r < ROUNDS; r++) {
      // Move workload 2r (service r) to another address, a different service each round.
      const w = (2 * r) % (SERVICES * 2);
      const svc = Math.floor(w / 2);
      const res = await measure(`WorkloadEntry ${workloadName(w)} address -> ${workloadIp(w, 64)}`, TypeUrl.ClusterLoadAssignment, `|${hostOf(svc)}`, () => apply(cp.ports.api, [workloadEntry(w, 64)]), 1500);
      endpointDelays.push(...res.delays);
      endpointMissing += res.missing;
    }
    rows.push({ what: 'endpoint change (WorkloadEntry) -> last ACK', p50: percentile(endpointDelays, 50), p99: percentile(endpointDelays, 99), max: percentile(endpointDelays, 100), n: `${endpointDelays.length}/${CLIENTS * ROUNDS}`, target: `p99 < ${fmtMs(TARGETS.endpointP99Ms)}` });
    phase(`${ROUNDS} endpoint changes`);

    const cpUsage = await cpRpc.call<{ cpu: NodeJS.CpuUsage; memory: NodeJS.MemoryUsage }>({ cmd: 'usage' });
    const peakRss = procStatus(cp.pid, 'VmHWM');
    const clientUsage = await clients.call<{ cpu: NodeJS.CpuUsage; memory: NodeJS.MemoryUsage }>({ cmd: 'usage' });
    const clientPeak = procStatus(clientChild.pid!, 'VmHWM');

    // ---- report ----
    const routeP99 = percentile(routeDelays, 99);
    const endpointP99 = percentile(endpointDelays, 99);
    console.log('');
    console.log(`Results (${SERVICES} services, ${SERVICES * 2} workloads, ${routed.length} VS + ${routed.length} DR, ${CLIENTS} proxies ${PROTOCOL}, ${ROUNDS} rounds per change)`);
    console.log(`| ${'measure'.padEnd(44)} | ${'p50'.padStart(8)} | ${'p99'.padStart(8)} | ${'max'.padStart(8)} | ${'n'.padStart(11)} | target`);
    console.log(`|${'-'.repeat(46)}|${'-'.repeat(10)}|${'-'.repeat(10)}|${'-'.repeat(10)}|${'-'.repeat(13)}|--------`);
    for (const r of rows) {
      const verdict = r.target ? `${r.target} ${r.p99 < (r.what.startsWith('route') ? TARGETS.routeP99Ms : TARGETS.endpointP99Ms) && !r.n.startsWith('0/') ? 'PASS' : 'FAIL'}` : '';
      console.log(`| ${r.what.padEnd(44)} | ${fmtMs(r.p50).padStart(8)} | ${fmtMs(r.p99).padStart(8)} | ${fmtMs(r.max).padStart(8)} | ${r.n.padStart(11)} | ${verdict}`);
    }
    console.log('');
    console.log(`| ${'control-plane CPU by phase'.padEnd(44)} | ${'CPU s'.padStart(8)} | ${'wall'.padStart(8)} |`);
    console.log(`|${'-'.repeat(46)}|${'-'.repeat(10)}|${'-'.repeat(10)}|`);
    for (const c of cpu) console.log(`| ${c.phase.padEnd(44)} | ${c.seconds.toFixed(1).padStart(8)} | ${fmtMs(c.wallMs).padStart(8)} |`);
    // CPU per push is what to compare between runs: wall times follow the machine's load, CPU seconds much less.
    for (const c of cpu.filter((x) => x.phase.endsWith('changes'))) console.log(`  CPU per push (${c.phase.replace(/^\d+ /, '').replace(/s$/, '')}): ${((c.seconds / ROUNDS) * 1000).toFixed(0)} ms`);
    console.log(`| ${'total (process.cpuUsage of the child)'.padEnd(44)} | ${((cpUsage.cpu.user + cpUsage.cpu.system) / 1e6).toFixed(1).padStart(8)} |`);
    console.log('');
    console.log(`  config apply: ${objects.length} objects in ${fmtMs(loadMs)}`);
    console.log(`  control plane peak RSS (VmHWM): ${mib(peakRss)}  (target < ${mib(TARGETS.rssBytes)}: ${peakRss < TARGETS.rssBytes ? 'PASS' : 'FAIL'}); heap used now ${mib(cpUsage.memory.heapUsed)}`);
    console.log(`  client process: CPU ${((clientUsage.cpu.user + clientUsage.cpu.system) / 1e6).toFixed(1)} s, peak RSS ${mib(clientPeak)}`);
    if (routeMissing || endpointMissing) console.log(`  proxies that never saw an affected response: route ${routeMissing}, endpoint ${endpointMissing}`);
    console.log(`  pushes logged by Pilot: ${cp.logs.filter((l) => l.includes('"msg":"push"')).length}; warnings/errors: ${cp.logs.filter((l) => !l.includes('"msg":"push"')).length}`);
    for (const l of cp.logs.filter((l) => !l.includes('"msg":"push"')).slice(0, 5)) console.log(`    ${l.slice(0, 300)}`);
    const pass = routeP99 < TARGETS.routeP99Ms && endpointP99 < TARGETS.endpointP99Ms && peakRss < TARGETS.rssBytes && !routeMissing && !endpointMissing;
    console.log(`  overall: ${pass ? 'all targets met' : 'targets NOT met'}  (bench wall time ${fmtMs(performance.now() - started)})`);

    clientChild.send({ cmd: 'stop' });
    await stopChild(clientChild, 3000);
    await stopChild(cp.child, 10_000);
  } finally {
    killAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}
process.on('exit', killAll);
const deadline = setTimeout(() => {
  console.error(`pilot-scale-bench: giving up after ${values['timeout-s']} s`);
  killAll();
  process.exit(1);
}, Number(values['timeout-s']) * 1000);
deadline.unref();

try {
  await main();
} catch (err) {
  console.error('pilot-scale-bench failed:', err instanceof Error ? err.message : err);
  killAll();
  process.exitCode = 1;
}
