// Proxy benchmark, Istio's method: a client at a fixed 1000 requests/s over
// 16 keep-alive connections to a 1 KiB response from a neutral upstream
// (nginx), through each path:
//   direct            client -> origin
//   mesh              client -> our client sidecar -> our server sidecar -> origin
//   mesh-mtls         the same, sidecar to sidecar over mTLS (SPIFFE certs)
//   nginx, nginx-mtls       an nginx pair, one worker each
//   haproxy, haproxy-mtls   a haproxy pair, one thread each
//   node-relay, node-relay-mtls   the runtime's floor: a node pair relaying bytes
//                     with no HTTP processing (proxy-bench/node-relay.ts), with
//                     our sidecars' V8 flags: no proxy on node can cost less
// It reports p50/p90/p99 at the fixed rate, the latency added over direct,
// max throughput (wrk, 16 connections), CPU µs per request of each proxy
// during that run (on a shared machine steadier than the rps), vCPU per 1000
// rps of each proxy (utime+stime from /proc/PID/stat over the fixed-rate run)
// and RSS.
// Installs nginx, haproxy and wrk with apt-get when missing (as root); every
// process it starts is stopped at the end, also on Ctrl-C.
//
// usage: node bench/proxy-bench.ts [--seconds 15] [--rate 1000] [--connections 16]
//          [--throughput-seconds 10] [--warmup-seconds 5] [--only mesh,mesh-mtls,...] [--no-stats] [--profile DIR] [--json FILE]
//          [--sidecar-flags="--max-semi-space-size=2 ..."]   (node flags for our sidecars instead of the
//          runtime's SIDECAR_NODE_FLAGS, to measure V8 settings; "none" for V8's defaults)

import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SIDECAR_NODE_FLAGS } from '../src/runtime/node-flags.ts';
import { makeBenchCerts } from './proxy-bench/certs.ts';
import type { BenchCerts } from './proxy-bench/certs.ts';
import type { PairPorts } from './proxy-bench/configs.ts';
import { clientSidecar, haproxyPair, nginxPair, originNginx, serverSidecar } from './proxy-bench/configs.ts';
import { children, freePort, killChildrenOnExit, stop, waitPort } from './proxy-bench/processes.ts';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '15' },
    rate: { type: 'string', default: '1000' },
    connections: { type: 'string', default: '16' },
    'throughput-seconds': { type: 'string', default: '10' },
    'warmup-seconds': { type: 'string', default: '5' },
    only: { type: 'string' },
    'no-stats': { type: 'boolean', default: false },
    profile: { type: 'string' },
    json: { type: 'string' },
    keep: { type: 'boolean', default: false },
    'sidecar-flags': { type: 'string', default: '' },
  },
});
const SECONDS = Number(args.seconds);
const RATE = Number(args.rate);
const CONNS = Number(args.connections);
const TPUT_SECONDS = Number(args['throughput-seconds']);
const WARMUP_SECONDS = Number(args['warmup-seconds']);
const NODE = process.execPath;
const NODE_FLAGS = ['--disable-warning=ExperimentalWarning'];
const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim() || 100);

killChildrenOnExit(['SIGINT']);

function which(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
}

/** nginx, haproxy and wrk from Debian when missing (root only). */
function ensureTools(): { nginx: boolean; haproxy: boolean; wrk: boolean } {
  const missing = [['nginx', 'nginx'], ['haproxy', 'haproxy'], ['wrk', 'wrk']].filter(([bin]) => !which(bin)).map(([, pkg]) => pkg);
  if (missing.length > 0 && process.getuid?.() === 0) {
    console.error(`installing ${missing.join(' ')} with apt-get ...`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env });
    spawnSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: 'ignore', env });
  }
  return { nginx: which('nginx'), haproxy: which('haproxy'), wrk: which('wrk') };
}

function start(name: string, cmd: string, argv: string[], dir: string, env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'], env });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  child.once('exit', (code, signal) => {
    children.delete(child);
    if (code && code !== 0 && signal === null) writeFileSync(join(dir, `${name}.exit.log`), err);
  });
  children.add(child);
  return child;
}

/** utime and stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat). */
function cpuTicks(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]), system: Number(f[12]) };
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

interface Latency {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  count: number;
  errors: number;
  rps: number;
}

async function fixedRate(port: number, seconds: number, warmup: number): Promise<Latency> {
  const child = spawn(NODE, [...NODE_FLAGS, here('./proxy-bench/fixed-rate-client.ts'), String(port), String(RATE), String(CONNS), String(seconds), String(warmup), '/1k.bin'], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await once(child, 'exit');
  children.delete(child);
  return JSON.parse(out.trim()) as Latency;
}

function wrk(port: number, seconds: number): { rps: number; requests: number } {
  const r = spawnSync('wrk', ['-t1', `-c${CONNS}`, `-d${seconds}s`, '-H', 'Host: server.bench.svc.cluster.local', `http://127.0.0.1:${port}/1k.bin`], { encoding: 'utf8' });
  const m = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout ?? '');
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(r.stdout ?? '');
  if (non2xx) console.error(`  wrk: ${non2xx[1]} non-2xx responses`);
  const requests = /(\d+) requests in/.exec(r.stdout ?? '');
  return { rps: m ? Math.round(Number(m[1])) : NaN, requests: requests ? Number(requests[1]) : NaN };
}

interface PathResult {
  path: string;
  latency: Latency;
  maxRps: number;
  /**
   * Per proxy process: vCPU per 1000 rps (and the share of it in user space), RSS (MB) idle and under
   * load, V8 heap after the fixed-rate run, and CPU µs per request during the max-throughput run (with
   * every core busy a steadier figure than max rps, and what bounds it).
   */
  proxies: Array<{ name: string; vcpuPer1000: number; userShare: number; rssMb: number; idleRssMb: number; heap?: { allocated: number; size: number }; usPerRequestAtMax?: number }>;
}

interface Running {
  readonly entry: number;
  /** adminPort: our sidecars' admin, for their heap figures (/memory). */
  readonly procs: Array<{ name: string; child: ChildProcess; adminPort?: number }>;
}

/** A sidecar's V8 heap (allocated, heap size) in MB from its admin /memory. */
async function heapMb(adminPort: number | undefined): Promise<{ allocated: number; size: number } | undefined> {
  if (!adminPort) return undefined;
  try {
    const m = (await (await fetch(`http://127.0.0.1:${adminPort}/memory`)).json()) as { allocated: string; heap_size: string };
    return { allocated: Number(m.allocated) / 1048576, size: Number(m.heap_size) / 1048576 };
  } catch {
    return undefined;
  }
}

/** Node flags for our sidecars and the node relays: by default those the runtime gives its sidecars. */
function sidecarFlags(): string[] {
  if (args['sidecar-flags'] === '') return [...SIDECAR_NODE_FLAGS];
  return args['sidecar-flags'] === 'none' ? [] : args['sidecar-flags'].split(' ').filter(Boolean);
}

async function startPath(path: string, dir: string, certs: BenchCerts, origin: number): Promise<Running> {
  if (path === 'direct') return { entry: origin, procs: [] };
  const ports: PairPorts = { client: await freePort(), server: await freePort(), origin };
  const mtls = path.endsWith('-mtls');
  const procs: Running['procs'] = [];
  if (path.startsWith('mesh')) {
    const stats = !args['no-stats'];
    const files = {
      client: join(dir, `${path}-client.json`),
      server: join(dir, `${path}-server.json`),
    };
    const admin = { client: await freePort(), server: await freePort() };
    writeFileSync(files.client, JSON.stringify(clientSidecar(ports, certs, mtls, stats, admin.client)));
    writeFileSync(files.server, JSON.stringify(serverSidecar(ports, certs, mtls, stats, admin.server)));
    const extra = sidecarFlags();
    const prof = (side: string): string[] => [...extra, ...(args.profile ? ['--cpu-prof', `--cpu-prof-dir=${join(args.profile, path, side)}`] : [])];
    procs.push({ name: 'server sidecar', adminPort: admin.server, child: start(`${path}-server`, NODE, [...NODE_FLAGS, ...prof('server'), here('./proxy-bench/run-proxy.ts'), files.server], dir) });
    await waitPort(ports.server, procs[0].child, `${path} server sidecar`);
    procs.push({ name: 'client sidecar', adminPort: admin.client, child: start(`${path}-client`, NODE, [...NODE_FLAGS, ...prof('client'), here('./proxy-bench/run-proxy.ts'), files.client], dir) });
    await waitPort(ports.client, procs[1].child, `${path} client sidecar`);
  } else if (path.startsWith('node-relay')) {
    const relay = here('./proxy-bench/node-relay.ts');
    const flags = sidecarFlags();
    // Through the compile cache from its first line, so that node does not load its TypeScript stripper.
    const env = { ...process.env, NODE_COMPILE_CACHE: here('../node_modules/.cache/mesh/v8') };
    const server = start(`${path}-server`, NODE, [...NODE_FLAGS, ...flags, relay, String(ports.server), String(ports.origin), mtls ? 'mtls-server' : 'plain', dir], dir, env);
    procs.push({ name: 'server relay', child: server });
    await waitPort(ports.server, server, `${path} server`);
    const client = start(`${path}-client`, NODE, [...NODE_FLAGS, ...flags, relay, String(ports.client), String(ports.server), mtls ? 'mtls-client' : 'plain', dir], dir, env);
    procs.push({ name: 'client relay', child: client });
    await waitPort(ports.client, client, `${path} client`);
  } else if (path.startsWith('nginx')) {
    const conf = nginxPair(dir, ports, certs, mtls);
    for (const side of ['server', 'client'] as const) {
      const file = join(dir, `${path}-${side}.conf`);
      mkdirSync(join(dir, `tmp-nginx-${side}`), { recursive: true });
      writeFileSync(file, conf[side]);
      const child = start(`${path}-${side}`, 'nginx', ['-c', file, '-p', dir, '-e', join(dir, `${path}-${side}.err`)], dir);
      procs.push({ name: `nginx ${side}`, child });
      await waitPort(ports[side], child, `${path} ${side}`);
    }
  } else {
    const conf = haproxyPair(ports, certs, mtls);
    for (const side of ['server', 'client'] as const) {
      const file = join(dir, `${path}-${side}.cfg`);
      writeFileSync(file, conf[side]);
      const child = start(`${path}-${side}`, 'haproxy', ['-db', '-f', file], dir);
      procs.push({ name: `haproxy ${side}`, child });
      await waitPort(ports[side], child, `${path} ${side}`);
    }
  }
  return { entry: ports.client, procs };
}

async function runPath(path: string, dir: string, certs: BenchCerts, origin: number, originPid: number): Promise<PathResult> {
  const run = await startPath(path, dir, certs, origin);
  try {
    const idleRss = new Map(run.procs.map((p) => [p.name, rssMb(p.child.pid!)]));
    // Warm-up: connection pools, TLS sessions, and the JIT. A sidecar runs
    // for hours; after 2 s at 1000 rps V8 is still compiling (about a tenth
    // of a sidecar's CPU in the next 10 s went to its compiler), so a short
    // run at full speed first measures the steady state.
    if (WARMUP_SECONDS > 0 && which('wrk')) wrk(run.entry, WARMUP_SECONDS);
    await fixedRate(run.entry, 2, 0);
    const pids = [...run.procs.map((p) => ({ name: p.name, pid: p.child.pid! })), { name: 'origin', pid: originPid }];
    const before = pids.map((p) => cpuTicks(p.pid));
    const t0 = performance.now();
    const latency = await fixedRate(run.entry, SECONDS, 1);
    const elapsed = (performance.now() - t0) / 1000;
    const after = pids.map((p) => cpuTicks(p.pid));
    const proxies: PathResult['proxies'] = pids
      .filter((p) => p.name !== 'origin')
      .map((p, i) => {
        const user = after[i].user - before[i].user;
        const cpuSeconds = (user + after[i].system - before[i].system) / CLK_TCK;
        return { name: p.name, vcpuPer1000: cpuSeconds / elapsed / (RATE / 1000), userShare: user / CLK_TCK / cpuSeconds, rssMb: rssMb(p.pid), idleRssMb: idleRss.get(p.name)! };
      });
    for (const p of proxies) p.heap = await heapMb(run.procs.find((x) => x.name === p.name)?.adminPort);
    const atMax0 = pids.map((p) => cpuTicks(p.pid));
    const max = which('wrk') ? wrk(run.entry, TPUT_SECONDS) : { rps: NaN, requests: NaN };
    const atMax1 = pids.map((p) => cpuTicks(p.pid));
    const maxRps = max.rps;
    proxies.forEach((p, i) => {
      p.usPerRequestAtMax = (1e6 * (atMax1[i].user + atMax1[i].system - atMax0[i].user - atMax0[i].system)) / CLK_TCK / max.requests;
    });
    for (const p of proxies) p.rssMb = Math.max(p.rssMb, rssMb(pids.find((x) => x.name === p.name)!.pid));
    return { path, latency, maxRps, proxies };
  } finally {
    for (const p of run.procs) await stop(p.child);
  }
}

const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '-');
const f3 = (n: number): string => (Number.isFinite(n) ? n.toFixed(3) : '-');

function table(results: PathResult[]): string {
  const direct = results.find((r) => r.path === 'direct');
  const rows = [['path', 'p50 ms', 'p90 ms', 'p99 ms', '+p50', '+p90', '+p99', 'errors', 'max rps', 'CPU µs/req at max (client, server)', 'vCPU/1k rps (client, server; user %)', 'RSS MB (client, server; idle)', 'heap MB used/size']];
  for (const r of results) {
    const l = r.latency;
    const add = (k: 'p50' | 'p90' | 'p99'): string => (direct && r !== direct ? f3(l[k] - direct.latency[k]) : '');
    const side = (n: string): PathResult['proxies'][number] | undefined => r.proxies.find((p) => p.name.includes(n));
    const pct = (p: PathResult['proxies'][number]): string => `${Math.round(100 * p.userShare)}%`;
    const cpu = r.proxies.length ? `${f3(side('client')!.vcpuPer1000)}, ${f3(side('server')!.vcpuPer1000)}; ${pct(side('client')!)}, ${pct(side('server')!)}` : '';
    const rss = r.proxies.length ? `${f2(side('client')!.rssMb)}, ${f2(side('server')!.rssMb)}; ${f2(side('client')!.idleRssMb)}, ${f2(side('server')!.idleRssMb)}` : '';
    const heap = (p: PathResult['proxies'][number] | undefined): string => (p?.heap ? `${p.heap.allocated.toFixed(0)}/${p.heap.size.toFixed(0)}` : '-');
    const heaps = r.proxies.length ? `${heap(side('client'))}, ${heap(side('server'))}` : '';
    const atMax = r.proxies.length ? `${(side('client')!.usPerRequestAtMax ?? NaN).toFixed(0)}, ${(side('server')!.usPerRequestAtMax ?? NaN).toFixed(0)}` : '';
    rows.push([r.path, f3(l.p50), f3(l.p90), f3(l.p99), add('p50'), add('p90'), add('p99'), String(l.errors), String(r.maxRps), atMax, cpu, rss, heaps]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return rows.map((row) => row.map((c, i) => c.padEnd(widths[i])).join('  ')).join('\n');
}

/** Top functions by self time across the .cpuprofile files under `dir`. */
function summarizeProfiles(dir: string): string {
  const self = new Map<string, number>();
  let total = 0;
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.cpuprofile')) {
        const prof = JSON.parse(readFileSync(p, 'utf8')) as { nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>; samples: number[] };
        const byId = new Map(prof.nodes.map((n) => [n.id, n]));
        for (const id of prof.samples) {
          const n = byId.get(id)!;
          const url = n.callFrame.url.replace(/^.*\/work\/main\//, '').replace(/^node:/, '');
          const key = `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`;
          self.set(key, (self.get(key) ?? 0) + 1);
          total++;
        }
      }
    }
  };
  walk(dir);
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 30)
    .map(([k, v]) => `${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`)
    .join('\n');
}

async function main(): Promise<void> {
  const tools = ensureTools();
  if (!tools.nginx) throw new Error('nginx is required for the origin (apt-get install nginx)');
  const dir = mkdtempSync(join(tmpdir(), 'mesh-proxy-bench-'));
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'www'));
  mkdirSync(join(dir, 'tmp-origin'));
  writeFileSync(join(dir, 'www', '1k.bin'), Buffer.alloc(1024, 'x'));
  const certs = await makeBenchCerts(dir);
  const originPort = await freePort();
  writeFileSync(join(dir, 'origin.conf'), originNginx(dir, originPort));
  const origin = start('origin', 'nginx', ['-c', join(dir, 'origin.conf'), '-p', dir, '-e', join(dir, 'origin.err')], dir);
  await waitPort(originPort, origin, 'origin nginx');
  if (args.profile) mkdirSync(args.profile, { recursive: true });
  const all = ['direct', 'mesh', 'mesh-mtls', 'node-relay', 'node-relay-mtls', 'nginx', 'nginx-mtls', 'haproxy', 'haproxy-mtls'];
  const wanted = args.only ? ['direct', ...args.only.split(',').filter((p) => p !== 'direct')] : all;
  const paths = wanted.filter((p) => (p.startsWith('haproxy') ? tools.haproxy : true));
  console.error(`proxy-bench: ${RATE} rps fixed rate, ${CONNS} connections, ${SECONDS}s per path; max throughput with wrk ${TPUT_SECONDS}s; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}; ${process.env.MESH_BENCH_NOTE ?? ''}`);
  const results: PathResult[] = [];
  try {
    for (const p of paths) {
      console.error(`- ${p} ...`);
      results.push(await runPath(p, dir, certs, originPort, origin.pid!));
    }
  } finally {
    await stop(origin);
    if (!args.keep) rmSync(dir, { recursive: true, force: true });
  }
  console.log(table(results));
  console.log(`load average at the end: ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  const mtls = results.find((r) => r.path === 'mesh-mtls');
  const direct = results.find((r) => r.path === 'direct');
  const nginxMtls = results.find((r) => r.path === 'nginx-mtls');
  if (mtls && direct) {
    const worstCpu = Math.max(...mtls.proxies.map((p) => p.vcpuPer1000));
    const worstRss = Math.max(...mtls.proxies.map((p) => p.rssMb));
    const check = (ok: boolean): string => (ok ? 'ok' : 'MISSED');
    console.log(`\ntargets (mesh-mtls): +p90 ${f3(mtls.latency.p90 - direct.latency.p90)} ms <= 0.5 ${check(mtls.latency.p90 - direct.latency.p90 <= 0.5)}; +p99 ${f3(mtls.latency.p99 - direct.latency.p99)} ms <= 1.0 ${check(mtls.latency.p99 - direct.latency.p99 <= 1.0)}; vCPU/1k rps ${f3(worstCpu)} <= 0.12 ${check(worstCpu <= 0.12)}; RSS ${f2(worstRss)} MB <= 50 ${check(worstRss <= 50)}${nginxMtls ? `; max rps ${mtls.maxRps} >= nginx-mtls/2 = ${Math.round(nginxMtls.maxRps / 2)} ${check(mtls.maxRps >= nginxMtls.maxRps / 2)}` : ''}`);
  }
  if (args.json) writeFileSync(args.json, JSON.stringify({ rate: RATE, connections: CONNS, seconds: SECONDS, results }, null, 2));
  if (args.profile && existsSync(args.profile)) console.log(`\nCPU profile, top self time (${args.profile}):\n${summarizeProfiles(args.profile)}`);
}

await main();
