// End-to-end helpers: one Bookinfo mesh per test file, Istio's sample rules
// applied unchanged, requests through the ingress gateway, in either of the
// runtime's two modes:
//
// - `no-capture`: every app gets `<SVC>_SERVICE_HOST/PORT` (a sidecar port
//   per service on loopback);
// - `capture`: every replica in its own network namespace on a private mesh
//   bridge (random free 10.x /24), iptables sending its traffic to the
//   sidecar, the apps calling each other by name (`http://reviews:9080`)
//   through the DNS proxy. Needs root, iproute2 and iptables; the task files
//   skip with the reason otherwise.
//
// The task files (`*-tasks.ts`) define the tests once; one small `.test.ts`
// per mode runs them. `mesh up` starts its own control plane (its API port
// is bound race-free, so several meshes start side by side). The gateway
// listens on a free port, not on 8080: the generated topology applies a
// Gateway `bookinfo-gateway` (the same object as Istio's
// bookinfo-gateway.yaml except for the port number) and Istio's `bookinfo`
// VirtualService unchanged, so the e2e files run in parallel with each other
// and with test/runtime/mesh-up.test.ts, which uses 8080. The gateway stays
// on the host in both modes, so the tests reach it at 127.0.0.1.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseAllDocuments, stringify } from 'yaml';
import { deleteBridge, deleteWorkloadNamespace, hostVethName, listNamespaces, runCommand } from '../../src/agent/capture/index.ts';
import { captureAvailable } from '../../src/runtime/capture/mode.ts';
import { freeSubnet } from '../helpers/free-subnet.ts';
import { REPO_ROOT, runMesh, SAMPLES, tempDir } from '../helpers/processes.ts';
import { freePort } from '../../src/runtime/sidecar/local-addresses.ts';
import { alive, descendants, eventually, startMesh } from '../runtime/helpers.ts';
import type { MeshProcess } from '../runtime/helpers.ts';

export { eventually } from '../runtime/helpers.ts';

export const NETWORKING = join(SAMPLES, 'bookinfo/networking');
export const UNAVAILABLE = 'Sorry, product reviews are currently unavailable for this book.';
export const RATINGS_UNAVAILABLE = 'Ratings service is currently unavailable';

/** How the runtime connects apps to their sidecars (docs/runtime.md, docs/capture.md). */
export type Mode = 'no-capture' | 'capture';

/** Why `mode` cannot run on this host (the reason, for `skip`), or false when it can. */
export function modeSkip(mode: Mode): string | false {
  if (mode === 'no-capture') return false;
  const support = captureAvailable();
  return support.ok ? false : `traffic capture unavailable: ${support.reason}`;
}

/**
 * How long `mesh up` may take to serve (an upper bound: on a 2-core host
 * shared with other test runs a start has taken a minute). Capture mode sets up a network
 * namespace, a veth and iptables rules per replica; on a loaded 2-core host
 * that alone has taken tens of seconds.
 */
export function setupTimeoutMs(mode: Mode): number {
  return mode === 'capture' ? 180_000 : 120_000;
}

export interface Page {
  readonly status: number;
  readonly text: string;
  readonly ms: number;
}

/** What outlived `mesh down` (every list empty when it cleaned up). */
export interface Leftovers {
  /** How many processes and namespaces the mesh had just before (so an empty list means something). */
  readonly had: { readonly processes: number; readonly namespaces: number };
  readonly processes: readonly string[];
  readonly namespaces: readonly string[];
  readonly bridges: readonly string[];
  readonly iptablesRules: readonly string[];
}

export interface Bookinfo {
  readonly mode: Mode;
  readonly runDir: string;
  /** The control plane's config API (mesh up's own control plane). */
  readonly server: string;
  /** http://127.0.0.1:<gateway port> */
  readonly gateway: string;
  /** `mesh apply -f` of each file (a path, or YAML text written to the run dir first). */
  apply(...files: string[]): Promise<void>;
  /** GET through the gateway (with the session cookie when given). */
  get(path: string, options?: { cookie?: string; headers?: Record<string, string>; timeoutMs?: number }): Promise<Page>;
  /** POST /login through the gateway; the session cookie. */
  login(user: string): Promise<string>;
  /** The text of <run-dir>/logs/<process>.log (process: `reviews-v2-0`, ...). */
  log(process: string): string;
  /** The control plane's pid (mesh up's pid file). */
  controlPlanePid(): number;
  /** `mesh down`, then what is left of this mesh: processes, namespaces, the bridge, host iptables rules. */
  down(): Promise<Leftovers>;
  /** Removes whatever is left, also after a failure (idempotent). */
  stop(): Promise<void>;
}

/** Every descendant pid of `pid`; none when `ps` cannot run (cleanup goes on without them). */
function descendantsOrNone(pid: number): number[] {
  try {
    return descendants(pid);
  } catch {
    return [];
  }
}

/** Istio's bookinfo-gateway.yaml with the Gateway's server port changed to `port`; the VirtualService as it is. */
function gatewayYaml(port: number): string {
  const docs = parseAllDocuments(readFileSync(join(NETWORKING, 'bookinfo-gateway.yaml'), 'utf8')).map((d) => d.toJS() as Record<string, unknown>);
  const gw = docs.find((d) => d.kind === 'Gateway') as { spec: { servers: Array<{ port: { number: number } }> } };
  assert.equal(gw.spec.servers.length, 1);
  gw.spec.servers[0]!.port.number = port;
  return docs.map((d) => stringify(d)).join('---\n');
}

/** The capture resources of one mesh: namespaces whose veth is on its bridge, the bridge, host rules naming it. */
async function captureResources(bridge: string, knownNamespaces: readonly string[]): Promise<Omit<Leftovers, 'processes' | 'had'>> {
  const ports = await runCommand('ip', ['-o', 'link', 'show', 'master', bridge]);
  const all = await listNamespaces();
  const namespaces = all.filter((ns) => knownNamespaces.includes(ns) || (ports.code === 0 && ports.stdout.includes(`: ${hostVethName(ns)}@`)));
  const bridges = (await runCommand('ip', ['link', 'show', 'dev', bridge])).code === 0 ? [bridge] : [];
  const rules: string[] = [];
  for (const table of ['filter', 'nat']) {
    const saved = await runCommand('iptables-save', ['-t', table]);
    rules.push(...saved.stdout.split('\n').filter((l) => l.includes(bridge)));
  }
  return { namespaces, bridges, iptablesRules: rules };
}

/** Starts Bookinfo (samples/bookinfo/mesh.yaml's services) in `mode` with its own gateway port; resolves once /productpage serves through the gateway. */
export async function startBookinfo(prefix: string, mode: Mode = 'no-capture'): Promise<Bookinfo> {
  const startedAt = Date.now();
  const label = `${prefix} (${mode})`;
  const runDir = tempDir(`e2e-${prefix}-${mode}-`);
  const tag = randomBytes(3).toString('hex');
  const bridge = `mesh-br${tag}`;
  let up: MeshProcess | undefined;
  let pids: number[] = [];
  let namespaces: string[] = [];
  const track = (): void => {
    if (up?.child.pid) pids = [...new Set([...pids, up.child.pid, ...descendantsOrNone(up.child.pid)])];
  };
  const leftovers = async (had: Leftovers['had']): Promise<Leftovers> => {
    const processes = pids.filter(alive);
    const described = processes.length ? (await runCommand('ps', ['-o', 'pid=,args=', '-p', processes.join(',')])).stdout.trim().split('\n') : [];
    const capture = mode === 'capture' ? await captureResources(bridge, namespaces) : { namespaces: [], bridges: [], iptablesRules: [] };
    return { had, processes: described, ...capture };
  };
  let downed: Promise<Leftovers> | undefined;
  const down = (): Promise<Leftovers> =>
    (downed ??= (async () => {
      track();
      if (mode === 'capture') namespaces = (await captureResources(bridge, [])).namespaces.slice();
      const t0 = Date.now();
      if (up) await runMesh(['down', '--run-dir', join(runDir, 'run')]);
      await up?.exited;
      process.stdout.write(`# ${label}: mesh down ${Date.now() - t0} ms\n`);
      return leftovers({ processes: pids.length, namespaces: namespaces.length });
    })());
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      await down().catch(() => undefined);
      await up?.stop('SIGKILL');
      // Whatever outlived mesh down (it should be nothing; the down test says so).
      for (const pid of pids) if (alive(pid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
      if (mode === 'capture') {
        const left = await captureResources(bridge, namespaces);
        for (const ns of left.namespaces) await deleteWorkloadNamespace(ns).catch(() => undefined);
        await deleteBridge(bridge).catch(() => undefined);
      }
    })());
  try {
    // Claimed host-wide like the sidecars' ports, so no sidecar takes it before the gateway binds it.
    const port = await freePort('0.0.0.0');
    writeFileSync(join(runDir, 'gateway.yaml'), gatewayYaml(port));
    const topology = parseAllDocuments(readFileSync(join(REPO_ROOT, 'samples/bookinfo/mesh.yaml'), 'utf8'))[0]!.toJS() as Record<string, unknown>;
    topology.workingDir = REPO_ROOT;
    topology.apply = ['gateway.yaml'];
    if (mode === 'capture') topology.capture = { mode: 'on', bridge: tag, subnet: await freeSubnet({ from: 150, count: 100 }) };
    writeFileSync(join(runDir, 'mesh.yaml'), stringify(topology));
    up = startMesh(['up', '-f', join(runDir, 'mesh.yaml'), '--run-dir', join(runDir, 'run'), '--quiet']);
    await up.waitFor((_e, line) => line.startsWith('mesh up: ') && line.includes('ready in'), setupTimeoutMs(mode));
    track();
    const readyLine = up.lines.find((l) => l.startsWith('mesh up: ') && l.includes('ready in'))!;
    const server = /control plane (http:\/\/127\.0\.0\.1:\d+)/.exec(readyLine)?.[1];
    assert.ok(server, `the control plane's address in "${readyLine}"`);
    const gateway = `http://127.0.0.1:${port}`;
    let files = 0;
    const bi: Bookinfo = {
      mode,
      runDir,
      server,
      gateway,
      async apply(...args) {
        const paths = args.map((f) => {
          if (existsSync(f)) return f;
          const p = join(runDir, `inline-${++files}.yaml`);
          writeFileSync(p, f);
          return p;
        });
        const r = await runMesh(['apply', '--server', server, ...paths.flatMap((p) => ['-f', p])]);
        assert.equal(r.code, 0, `mesh apply ${args.join(' ')}: ${r.stderr}${r.stdout}`);
      },
      async get(path, options = {}) {
        const started = Date.now();
        const headers: Record<string, string> = { ...options.headers };
        if (options.cookie) headers.cookie = options.cookie;
        const res = await fetch(`${gateway}${path}`, { headers, signal: AbortSignal.timeout(options.timeoutMs ?? 15_000) });
        const text = await res.text();
        return { status: res.status, text, ms: Date.now() - started };
      },
      async login(user) {
        const res = await fetch(`${gateway}/login`, { method: 'POST', body: new URLSearchParams({ username: user, passwd: 'password' }), redirect: 'manual', signal: AbortSignal.timeout(10_000) });
        await res.text();
        assert.equal(res.status, 302, 'POST /login redirects');
        const cookie = res.headers.get('set-cookie');
        assert.ok(cookie, 'POST /login sets the session cookie');
        return cookie.split(';')[0]!;
      },
      log(process) {
        const p = join(runDir, 'run', 'logs', `${process}.log`);
        return existsSync(p) ? readFileSync(p, 'utf8') : '';
      },
      controlPlanePid() {
        const pidFile = JSON.parse(readFileSync(join(runDir, 'run', 'mesh-up.pid'), 'utf8')) as { children: number[] };
        const pid = pidFile.children[pidFile.children.length - 1]!;
        assert.match(execFileSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8' }), /control-plane/);
        return pid;
      },
      down,
      stop,
    };
    await eventually(async () => {
      const p = await bi.get('/productpage', { timeoutMs: 5000 });
      return p.status === 200 && p.text.includes('Reviews served by:') ? true : undefined;
    }, 'productpage through the gateway', 30_000);
    process.stdout.write(`# ${label}: Bookinfo serving through the gateway in ${Date.now() - startedAt} ms\n`);
    return bi;
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The closing test of a task file: `mesh down` stops every process and, with capture, removes every namespace, the bridge and any host rule for it. */
export function downLeavesNothing(bookinfo: () => Bookinfo): void {
  test('mesh down leaves no process, network namespace, bridge or iptables rule behind', { timeout: 45_000 }, async () => {
    const bi = bookinfo();
    const left = await bi.down();
    // mesh up, the control plane (unless a test killed it), the gateway, and per replica its runtime, sidecar and app.
    assert.ok(left.had.processes >= 12, `the mesh's processes were seen: ${left.had.processes}`);
    if (bi.mode === 'capture') assert.equal(left.had.namespaces, 6, 'one namespace per Bookinfo replica');
    assert.deepEqual({ processes: left.processes, namespaces: left.namespaces, bridges: left.bridges, iptablesRules: left.iptablesRules }, { processes: [], namespaces: [], bridges: [], iptablesRules: [] });
  });
}

/** The reviews version that served a product page or API answer (from "reviews-vN-..."). */
export function reviewsVersion(text: string): string | undefined {
  return /reviews-(v\d+)-/.exec(text)?.[1];
}

export function stars(text: string): 'none' | 'black' | 'red' {
  if (!text.includes('glyphicon-star')) return 'none';
  return /color="red"/.test(text) ? 'red' : 'black';
}

/** Polls until `n` consecutive product pages satisfy `ok` (the rule has reached the proxies). */
export async function converge(bi: Bookinfo, what: string, ok: (p: Page) => boolean, options: { cookie?: string; n?: number; timeoutMs?: number } = {}): Promise<void> {
  await eventually(async () => {
    for (let i = 0; i < (options.n ?? 4); i++) {
      const p = await bi.get('/productpage', options.cookie ? { cookie: options.cookie } : {});
      if (!ok(p)) return undefined;
    }
    return true;
  }, what, options.timeoutMs ?? 20_000);
}

/** |observed - n p| <= k sigma of Binomial(n, p). */
export function assertBinomial(observed: number, n: number, p: number, what: string, k = 4): void {
  const sigma = Math.sqrt(n * p * (1 - p));
  const expected = n * p;
  assert.ok(Math.abs(observed - expected) <= k * sigma, `${what}: ${observed} of ${n}, expected ${expected.toFixed(1)} ± ${(k * sigma).toFixed(1)} (${k} sigma)`);
}
