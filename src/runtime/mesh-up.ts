// `mesh up`: a declared topology on one host. Starts the control plane
// (unless the topology names one), declares every service to Pilot as a
// ServiceEntry, then one `mesh run` sidecar process per replica and the
// ingress gateway, each with its own log file under the run directory and a
// prefixed console view. A pid file lets `mesh down` stop it; SIGINT/SIGTERM
// stop everything: sidecars first (each stops its app), the control plane last.
// With capture (mesh.yaml `capture`, or --capture), every replica is a
// `mesh run --capture` in its own network namespace, every service gets a VIP
// in its ServiceEntry, the ingress gateway stays on the host (it reaches the
// workloads over the mesh bridge), the egress gateway gets a namespace of its
// own so workloads reach it; the bridge goes when the last workload has.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { ControlPlaneClient, serviceEntryFor } from './sidecar/control-plane-client.ts';
import { listenFd, listenPreferred } from './sidecar/local-addresses.ts';
import { SIDECAR_NODE_FLAGS } from './node-flags.ts';
import type { Topology } from './topology.ts';
import { BRIDGE_PREFIX, deleteBridge, runCommand } from '../agent/capture/index.ts';
import type { CaptureDecision, CaptureSetting } from './capture/mode.ts';
import { decideCapture } from './capture/mode.ts';
import { assignVips } from './capture/vips.ts';

const MESH_BIN = fileURLToPath(new URL('../../bin/mesh.js', import.meta.url));

export interface MeshUpOptions {
  readonly topology: Topology;
  /** Logs, pid file and the control plane's data (default .mesh/run). */
  readonly runDir: string;
  /** Console output (the prefixed view); undefined keeps the console quiet. */
  readonly console?: (line: string) => void;
  /** Log level of the child processes (default info). */
  readonly logLevel?: string;
  /** Overrides the topology's `capture` mode (mesh up --capture). */
  readonly capture?: CaptureSetting;
}

export interface PidFile {
  readonly pid: number;
  readonly children: readonly number[];
  readonly controlPlane: string;
}

interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  readonly ready: Promise<void>;
  readonly exited: Promise<number | null>;
}

export class MeshUp {
  readonly options: MeshUpOptions;
  private readonly children: Child[] = [];
  private controlPlaneChild: Child | undefined;
  private stopping: Promise<void> | undefined;
  controlPlane = '';
  startedAt = 0;
  /** The mode the runtime picked (set by start()). */
  captureDecision: CaptureDecision | undefined;

  constructor(options: MeshUpOptions) {
    this.options = options;
  }

  get pidFile(): string {
    return join(this.options.runDir, 'mesh-up.pid');
  }

  /** Starts everything; resolves once every sidecar and the gateway are ready. */
  async start(): Promise<void> {
    this.startedAt = Date.now();
    const { topology, runDir } = this.options;
    const captureCfg = topology.capture ?? { mode: 'off' };
    const decision = decideCapture(this.options.capture ?? captureCfg.mode);
    this.captureDecision = decision;
    this.options.console?.(`${'mesh-up'.padEnd(22)}| ${decision.reason}`);
    const captureArgs = decision.capture
      ? ['--capture', ...(captureCfg.bridge ? ['--capture-bridge', captureCfg.bridge] : []), ...(captureCfg.subnet ? ['--capture-subnet', captureCfg.subnet] : []), ...(captureCfg.egress ? ['--capture-egress'] : [])]
      : [];
    mkdirSync(join(runDir, 'logs'), { recursive: true });
    this.writePidFile();
    // The sidecars start alongside the control plane (loading a process costs more than
    // anything else here); they wait for it, then for the declared services, on their own.
    let cpReady: Promise<void> = Promise.resolve();
    if (topology.controlPlane) {
      this.controlPlane = topology.controlPlane;
    } else {
      const dataDir = join(runDir, 'data');
      // The usual API port when it is free, so `mesh apply` needs no --server. Bug fix (two
      // `mesh up` at once both took 15080: each checked it was free, then its control plane
      // bound it seconds later): mesh up binds the port and hands the listening socket to the
      // control plane as fd 3, so the bind is the check and the sidecars, started alongside,
      // know the address at once.
      const api = await listenPreferred(15080);
      const apiPort = (api.address() as AddressInfo).port;
      const fd = listenFd(api);
      if (fd === undefined) await new Promise((r) => api.close(r));
      const cp = this.spawnChild('control-plane', ['control-plane', '--data-dir', dataDir, ...(fd === undefined ? ['--api-port', String(apiPort)] : ['--api-fd', '3']), '--monitoring-port', '0', '--galley-port', '0', '--xds-port', '0', '--mixer-port', '0', '--ca-port', '0'], (entry) => entry.msg === 'control plane ready', fd);
      // The control plane holds its own copy now: it alone owns the port (and frees it when it exits).
      if (fd !== undefined) api.close();
      this.controlPlaneChild = cp;
      cpReady = cp.ready;
      this.controlPlane = `http://127.0.0.1:${apiPort}`;
    }
    const hosts = topology.services.map((s) => `${s.name}.${s.namespace}.svc.cluster.local`);
    const wait = hosts.flatMap((h) => ['--wait-for-service', h]);
    const certTtlArgs = topology.certTtlSeconds !== undefined ? ['--cert-ttl', `${topology.certTtlSeconds}s`] : [];
    const ready: Promise<void>[] = [];
    for (const s of topology.services) {
      for (const v of s.versions) {
        for (let i = 0; i < v.replicas; i++) {
          const name = `${s.name}-${v.version}-${i}`;
          const command = (v.command ?? s.command).map((part, k) => (k === 0 && part === 'node' ? process.execPath : part));
          const envArgs = Object.entries({ ...s.env, ...v.env }).flatMap(([k, val]) => ['--env', `${k}=${val}`]);
          const child = this.spawnChild(name, ['run', ...captureArgs, '--service', s.name, '--version', v.version, '--port', String(s.port), '--sa', s.serviceAccount, '-n', s.namespace, '--name', `${name}-${Math.random().toString(16).slice(2, 8)}`, '--control-plane', this.controlPlane, ...certTtlArgs, ...wait, ...envArgs, '--', ...command], sidecarReady);
          ready.push(child.ready);
        }
      }
    }
    // The ingress and the egress gateway: the same router, told apart by the labels Gateways select.
    // The ingress gateway stays on the host (reached at 127.0.0.1, like a NodePort); the egress
    // gateway, reached by the workloads, gets its own namespace on the bridge under capture and
    // declares Istio's istio-egressgateway Service (http2 80, https 443) for VirtualServices to name.
    for (const g of [topology.gateway, topology.egressGateway]) {
      if (!g) continue;
      const labels = Object.entries(g.labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
      const egress = g === topology.egressGateway ? [...captureArgs, '--service-port', 'http2:80', '--service-port', 'https:443'] : [];
      const child = this.spawnChild(g.name, ['gateway', '--name', g.name, '-n', g.namespace, ...labels, ...egress, '--control-plane', this.controlPlane], sidecarReady);
      ready.push(child.ready);
    }
    this.writePidFile();
    await cpReady;
    const client = new ControlPlaneClient(this.controlPlane);
    const vips = decision.capture ? assignVips(hosts) : new Map<string, string>();
    await client.apply(topology.services.map((s) => {
      const vip = vips.get(`${s.name}.${s.namespace}.svc.cluster.local`);
      return serviceEntryFor(s.name, s.namespace, s.port, 'cluster.local', vip ? [vip] : []);
    }));
    for (const file of topology.apply) {
      const objects = parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as unknown).filter((o) => o);
      await client.apply(objects);
    }
    await Promise.all(ready);
  }

  /**
   * Resolves when a sidecar exits on its own. The control plane exiting is
   * only reported: the proxies keep serving on their last config, as Envoy
   * does when istiod goes away.
   */
  firstExit(): Promise<string> {
    void this.controlPlaneChild?.exited.then((code) => {
      if (!this.stopping) this.options.console?.(`control-plane         | exited with ${code}; the sidecars keep serving on their last config`);
    });
    return Promise.race(this.children.map((c) => c.exited.then((code) => `${c.name} exited with ${code}`)));
  }

  /** Stops the sidecars (each stops its app), then the control plane; removes the pid file. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const kill = async (c: Child): Promise<void> => {
        if (c.process.exitCode !== null || c.process.signalCode !== null) return;
        c.process.kill('SIGTERM');
        const timer = setTimeout(() => c.process.kill('SIGKILL'), 10_000);
        await c.exited;
        clearTimeout(timer);
      };
      await Promise.all(this.children.map(kill));
      if (this.controlPlaneChild) await kill(this.controlPlaneChild);
      if (this.captureDecision?.capture) await this.removeIdleBridge();
      rmSync(this.pidFile, { force: true });
    })();
    return this.stopping;
  }

  /** The mesh bridge, once no workload namespace is attached to it any more. */
  private async removeIdleBridge(): Promise<void> {
    const bridge = `${BRIDGE_PREFIX}${this.options.topology.capture?.bridge ?? '0'}`;
    try {
      const ports = await runCommand('ip', ['-o', 'link', 'show', 'master', bridge]);
      if (ports.code === 0 && ports.stdout.trim() === '') await deleteBridge(bridge);
    } catch (err) {
      this.options.console?.(`${'mesh-up'.padEnd(22)}| cannot remove ${bridge}: ${(err as Error).message}`);
    }
  }

  private writePidFile(): void {
    const content: PidFile = { pid: process.pid, children: [...this.children, ...(this.controlPlaneChild ? [this.controlPlaneChild] : [])].map((c) => c.process.pid ?? 0).filter(Boolean), controlPlane: this.controlPlane };
    writeFileSync(this.pidFile, `${JSON.stringify(content)}\n`);
  }

  /** `passFd`: a descriptor the child inherits as its fd 3. */
  private spawnChild(name: string, args: string[], isReady: (entry: Record<string, unknown>) => boolean, passFd?: number): Child {
    const v8Flags = args[0] === 'control-plane' ? [] : SIDECAR_NODE_FLAGS;
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', ...v8Flags, MESH_BIN, ...args], {
      cwd: this.options.topology.workingDir,
      env: { ...process.env, MESH_LOG_LEVEL: this.options.logLevel ?? process.env.MESH_LOG_LEVEL ?? 'info' },
      stdio: ['ignore', 'pipe', 'pipe', ...(passFd === undefined ? [] : [passFd])],
    });
    const file: WriteStream = createWriteStream(join(this.options.runDir, 'logs', `${name}.log`), { flags: 'a' });
    const prefix = `${name.padEnd(22)}| `;
    let markReady!: () => void;
    let failReady!: (err: Error) => void;
    const ready = new Promise<void>((res, rej) => {
      markReady = res;
      failReady = rej;
    });
    let isUp = false;
    const onLine = (line: string): void => {
      file.write(`${line}\n`);
      this.options.console?.(`${prefix}${line}`);
      if (isUp || !line.startsWith('{')) return;
      try {
        if (isReady(JSON.parse(line) as Record<string, unknown>)) {
          isUp = true;
          markReady();
        }
      } catch {
        // an app's line that looks like JSON but is not
      }
    };
    createInterface({ input: child.stdout! }).on('line', onLine);
    createInterface({ input: child.stderr! }).on('line', onLine);
    const exited = new Promise<number | null>((res) => child.once('exit', (code) => {
      if (!isUp) failReady(new Error(`${name} exited with ${code} before it was ready; see ${join(this.options.runDir, 'logs', `${name}.log`)}`));
      file.end();
      res(code);
    }));
    ready.catch(() => undefined);
    const entry = { name, process: child, ready, exited };
    if (name !== 'control-plane') this.children.push(entry);
    return entry;
  }
}

function sidecarReady(entry: Record<string, unknown>): boolean {
  return entry.msg === 'workload registered' || (entry.msg === 'sidecar ready: config and certificate in place' && String(entry.scope ?? '').startsWith('gateway'));
}

/** `mesh down`: stops the `mesh up` recorded in the run directory; resolves false when none runs. */
export async function meshDown(runDir: string, timeoutMs = 20_000): Promise<boolean> {
  const file = resolve(runDir, 'mesh-up.pid');
  let pidFile: PidFile;
  try {
    pidFile = JSON.parse(readFileSync(file, 'utf8')) as PidFile;
  } catch {
    return false;
  }
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (alive(pidFile.pid)) process.kill(pidFile.pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (alive(pidFile.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  // Whatever is left (mesh up was killed hard, or did not stop in time): sidecars get SIGTERM
  // (each stops its app), then anything still there SIGKILL.
  const left = [pidFile.pid, ...pidFile.children].filter(alive);
  for (const pid of left) process.kill(pid, 'SIGTERM');
  const hard = Date.now() + 5000;
  while (left.some(alive) && Date.now() < hard) await new Promise((r) => setTimeout(r, 100));
  for (const pid of left) if (alive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(file, { force: true });
  return true;
}
