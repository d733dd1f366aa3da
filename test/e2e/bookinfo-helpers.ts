// End-to-end helpers: one Bookinfo mesh per test file, Istio's sample rules
// applied unchanged, requests through the ingress gateway.
//
// Each file starts its own control plane on free ports (`startControlPlane`)
// and `mesh up` joins it (`controlPlane:` in a generated mesh.yaml): two
// `mesh up` started together would otherwise both pick the usual API port
// 15080 (mesh up checks that it is free, then the control plane binds it
// seconds later). The gateway listens on a free port, not on 8080: the
// generated topology applies a Gateway `bookinfo-gateway` (the same object as
// Istio's bookinfo-gateway.yaml except for the port number) and Istio's
// `bookinfo` VirtualService unchanged, so the e2e files run in parallel with
// each other and with test/runtime/mesh-up.test.ts, which uses 8080.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { REPO_ROOT, runMesh, SAMPLES, startControlPlane, tempDir } from '../helpers/processes.ts';
import type { RunningControlPlane } from '../helpers/processes.ts';
import { freePort } from '../../src/runtime/sidecar/local-addresses.ts';
import { alive, eventually, startMesh } from '../runtime/helpers.ts';
import type { MeshProcess } from '../runtime/helpers.ts';

export { eventually } from '../runtime/helpers.ts';

export const NETWORKING = join(SAMPLES, 'bookinfo/networking');
export const UNAVAILABLE = 'Sorry, product reviews are currently unavailable for this book.';
export const RATINGS_UNAVAILABLE = 'Ratings service is currently unavailable';

export interface Page {
  readonly status: number;
  readonly text: string;
  readonly ms: number;
}

export interface Bookinfo {
  readonly runDir: string;
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
  stop(): Promise<void>;
}

/** Every descendant pid of `pid`. */
function descendants(pid: number): number[] {
  let rows: Array<[number, number]>;
  try {
    rows = execFileSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' }).trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number) as [number, number]);
  } catch {
    return [];
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const [child, parent] of rows) if (parent === p) {
      out.push(child);
      walk(child);
    }
  };
  walk(pid);
  return out;
}

/** Istio's bookinfo-gateway.yaml with the Gateway's server port changed to `port`; the VirtualService as it is. */
function gatewayYaml(port: number): string {
  const docs = parseAllDocuments(readFileSync(join(NETWORKING, 'bookinfo-gateway.yaml'), 'utf8')).map((d) => d.toJS() as Record<string, unknown>);
  const gw = docs.find((d) => d.kind === 'Gateway') as { spec: { servers: Array<{ port: { number: number } }> } };
  assert.equal(gw.spec.servers.length, 1);
  gw.spec.servers[0]!.port.number = port;
  return docs.map((d) => stringify(d)).join('---\n');
}

/** Starts Bookinfo (samples/bookinfo/mesh.yaml's services) with its own control plane and gateway port; resolves once /productpage serves through the gateway. */
export async function startBookinfo(prefix: string): Promise<Bookinfo> {
  const startedAt = Date.now();
  const runDir = tempDir(`e2e-${prefix}-`);
  let cp: RunningControlPlane | undefined;
  let up: MeshProcess | undefined;
  let pids: number[] = [];
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      if (up?.child.pid) pids = [...new Set([...pids, ...descendants(up.child.pid)])];
      const t0 = Date.now();
      if (up) await runMesh(['down', '--run-dir', join(runDir, 'run')]);
      process.stdout.write(`# ${prefix}: mesh down ${Date.now() - t0} ms\n`);
      await up?.stop('SIGKILL');
      await cp?.stop();
      // Whatever outlived mesh down (it should be nothing).
      for (const pid of pids) if (alive(pid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
    })());
  try {
    cp = await startControlPlane([], join(runDir, 'data'));
    // Claimed host-wide like the sidecars' ports, so no sidecar takes it before the gateway binds it.
    const port = await freePort('0.0.0.0');
    writeFileSync(join(runDir, 'gateway.yaml'), gatewayYaml(port));
    const topology = parseAllDocuments(readFileSync(join(REPO_ROOT, 'samples/bookinfo/mesh.yaml'), 'utf8'))[0]!.toJS() as Record<string, unknown>;
    topology.workingDir = REPO_ROOT;
    topology.controlPlane = cp.server;
    topology.apply = ['gateway.yaml'];
    writeFileSync(join(runDir, 'mesh.yaml'), stringify(topology));
    up = startMesh(['up', '-f', join(runDir, 'mesh.yaml'), '--run-dir', join(runDir, 'run'), '--quiet']);
    await up.waitFor((_e, line) => line.startsWith('mesh up: ') && line.includes('ready in'), 60_000);
    pids = descendants(up.child.pid!);
    const gateway = `http://127.0.0.1:${port}`;
    const server = cp.server;
    let files = 0;
    const bi: Bookinfo = {
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
      stop,
    };
    await eventually(async () => {
      const p = await bi.get('/productpage', { timeoutMs: 5000 });
      return p.status === 200 && p.text.includes('Reviews served by:') ? true : undefined;
    }, 'productpage through the gateway', 30_000);
    process.stdout.write(`# ${prefix}: Bookinfo serving through the gateway in ${Date.now() - startedAt} ms\n`);
    return bi;
  } catch (err) {
    await stop();
    throw err;
  }
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
