// `mesh run --capture`: one workload in its own network namespace (Istio's
// pod model on one host). This process stays on the host as root and is the
// runtime for the workload (the kubelet's role):
//
//   1. asks the control plane (loopback runtime API) for its addresses and
//      the services, declares the service with a VIP (ServiceEntry
//      `addresses`) when it is new, and waits for --wait-for-service hosts;
//   2. creates namespace mesh-<workload name> on the mesh bridge with
//      Istio's iptables rules (setupCapturedWorkload);
//   3. relays Pilot's xDS and Citadel's CA port from the bridge address to
//      the loopback control plane (relay.ts);
//   4. starts the sidecar inside the namespace as uid/gid 1337
//      (sidecar-main.ts) and hands it, over IPC, the addresses, the DNS
//      table (mesh names -> VIPs) and bootstrap tokens on request;
//   5. once the sidecar has its config and certificate, starts the app inside
//      the namespace as root (not 1337, so its traffic is captured) with no
//      <SVC>_SERVICE_HOST variables: it calls http://reviews:9080/;
//   6. keeps the DNS table current (services declared later);
//   7. on the app's exit or SIGINT/SIGTERM: unregister, the app stops,
//      the sidecar stops, the namespace (veth, rules, /etc/netns) and the
//      relays go. Exits with the app's code.
//
// A gateway (`mesh gateway --capture`, options.type `router`) is a pod too:
// its own namespace on the bridge, so workloads reach it at its bridge
// address (the egress gateway's whole point), but with no capture rules and
// `net.ipv4.ip_unprivileged_port_start=0` (as Istio's gateway pods set), so
// the router, as 1337, listens on its Gateways' ports (80, 443) and its DNS
// proxy is the namespace's nameserver on 127.0.0.1:53. No app: it registers
// once ready and runs until SIGINT/SIGTERM.

import type { ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { getCompileCacheDir } from 'node:module';
import { dirname, join } from 'node:path';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { findExecutable, setupCapturedWorkload, upstreamsFromResolvConf } from '../../agent/capture/index.ts';
import type { CapturedWorkload, NameTable, Upstream } from '../../agent/capture/index.ts';
import type { Logger } from '../../common/index.ts';
import { prefixLines } from '../sidecar/app-process.ts';
import { SIDECAR_NODE_FLAGS } from '../node-flags.ts';
import { ControlPlaneClient, serviceEntryFor } from '../sidecar/control-plane-client.ts';
import type { MeshServiceInfo } from '../sidecar/control-plane-client.ts';
import { declaredService } from '../sidecar/sidecar.ts';
import type { SidecarOptions, SidecarStatus } from '../sidecar/sidecar.ts';
import type { FromSidecar, ToSidecar } from './protocol.ts';
import { startRelay } from './relay.ts';
import type { Relay } from './relay.ts';
import { assignVips, nameTable } from './vips.ts';

/** How long the app has to exit after SIGTERM before SIGKILL. */
const APP_GRACE_MS = 7000;
/** The sidecar inside the namespace uses the compile cache `mesh` enabled (bin/mesh.js), through Node's variable. */
function compileCacheEnv(): Record<string, string> {
  const dir = getCompileCacheDir();
  return dir ? { NODE_COMPILE_CACHE: dirname(dir) } : {};
}

const SIDECAR_MAIN = fileURLToPath(new URL('./sidecar-main.ts', import.meta.url));
const SETPRIV = findExecutable('setpriv') ?? 'setpriv';

export interface CaptureNetworkOptions {
  /** Bridge suffix: mesh-br<suffix> (default "0"). */
  readonly bridgeSuffix?: string;
  /** Bridge subnet (default 10.213.0.0/24). */
  readonly subnet?: string;
  /** NAT the bridge out of the host (for DNS upstreams and the internet). */
  readonly egress?: boolean;
  /** DNS servers for names outside the mesh (default: the host's resolv.conf nameservers). */
  readonly dnsUpstreams?: readonly Upstream[];
  /** How often the DNS table is refreshed from the control plane (default 2 s). */
  readonly namesRefreshMs?: number;
}

/** The namespace for a workload: `mesh-<name>`, at most 40 characters. */
export function namespaceIdFor(workloadName: string): string {
  return workloadName.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 35);
}

async function retry<T>(fn: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function vipsOf(services: readonly MeshServiceInfo[]): Map<string, string> {
  const have = new Map<string, string>();
  for (const s of services) {
    const a = (s.addresses ?? []).find((x) => /^\d+\.\d+\.\d+\.\d+$/.test(x) && x !== '0.0.0.0');
    if (a) have.set(s.hostname, a);
  }
  return assignVips(services.map((s) => s.hostname), have);
}

/**
 * Serializes namespace creation on one bridge across processes (mesh up
 * starts every replica at once; the library picks the next free address by
 * looking at the existing namespaces). mkdir is atomic; a lock older than
 * 30 s is a crashed holder's.
 */
async function withBridgeLock<T>(bridge: string, fn: () => Promise<T>): Promise<T> {
  const dir = join(tmpdir(), `mesh-capture-${bridge}.lock`);
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      mkdirSync(dir);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      try {
        if (Date.now() - statSync(dir).mtimeMs > 30_000) rmSync(dir, { recursive: true, force: true });
      } catch {
        // gone meanwhile
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${dir}`, { cause: err });
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 30));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: 127, signal: null }));
  });
}

/** Runs one captured workload (or a gateway); resolves with the exit code (the app's, 128+signal, 1 if the sidecar failed; a gateway: 0 once stopped). */
export async function runCapturedSidecar(o: SidecarOptions, net: CaptureNetworkOptions = {}, onReady?: (status: SidecarStatus) => void): Promise<number> {
  const log: Logger = o.log;
  const router = o.type === 'router';
  if (!router && !o.command?.length) throw new Error('capture mode runs an app: give its command');
  if (router && o.command?.length) throw new Error('a gateway runs no app: give no command');
  const cp = new ControlPlaneClient(o.controlPlane);
  const waitMs = o.controlPlaneWaitMs ?? 30_000;
  const domain = 'cluster.local';
  const version = o.version ?? 'v1';
  const workloadName = o.workloadName ?? `${o.service}-${version}-${Math.random().toString(16).slice(2, 8)}`;
  let signalled: NodeJS.Signals | undefined;
  let onSignal: (sig: NodeJS.Signals) => void = (sig) => {
    signalled = sig;
  };
  const handler = (sig: NodeJS.Signals): void => onSignal(sig);
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);

  const info = await retry(() => cp.info(), waitMs);
  const host = `${o.service}.${o.namespace}.svc.${domain}`;
  const declared = declaredService(o);
  if (declared) {
    const path = `/apis/networking.istio.io/v1/namespaces/${o.namespace}/serviceentries/${o.service}`;
    if (!(await cp.exists(path))) {
      const vip = vipsOf([...(await cp.services()).filter((s) => s.hostname !== host), { hostname: host, namespace: o.namespace, ports: [] }]).get(host)!;
      await cp.apply([serviceEntryFor(o.service, o.namespace, declared.ports, domain, [vip], declared.selector)]);
    }
  }
  const wanted = [...(o.waitForServices ?? []), ...(declared ? [host] : [])];
  const services = await retry(async () => {
    const list = await cp.services();
    const missing = wanted.filter((h) => !list.some((s) => s.hostname === h));
    if (missing.length > 0) throw new Error(`services not declared yet: ${missing.join(', ')}`);
    return list;
  }, waitMs);
  let names: NameTable = nameTable(services, vipsOf(services));
  const dnsUpstreams = net.dnsUpstreams ?? upstreamsFromResolvConf();

  let workload: CapturedWorkload | undefined;
  const relays: Relay[] = [];
  let sidecar: ChildProcess | undefined;
  let app: ChildProcess | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    workload = await withBridgeLock(`mesh-br${net.bridgeSuffix ?? '0'}`, () => setupCapturedWorkload({ id: namespaceIdFor(workloadName), bridgeSuffix: net.bridgeSuffix, subnet: net.subnet, kubeNamespace: o.namespace, domain, egress: net.egress, ...(router ? { rules: false as const } : {}) }));
    for (const w of workload.warnings) log.warn({}, w);
    if (router) {
      // The router runs as 1337 and listens on its Gateways' ports, 80 and 443 included.
      const r = await workload.exec('sysctl', ['-w', 'net.ipv4.ip_unprivileged_port_start=0']);
      if (r.code !== 0) throw new Error(`sysctl net.ipv4.ip_unprivileged_port_start=0 in ${workload.namespace}: ${r.stderr.trim() || `exit ${r.code}`}`);
      log.info({ mode: 'capture', netns: workload.namespace, address: workload.address, bridge: workload.bridge.bridge, gateway: workload.gateway }, 'gateway namespace ready (no capture rules; every port bindable; DNS proxy on 127.0.0.1:53)');
    } else {
      log.info({ mode: 'capture', netns: workload.namespace, address: workload.address, bridge: workload.bridge.bridge, gateway: workload.gateway }, 'workload namespace ready (iptables: inbound -> 15006, outbound -> 15001, DNS -> 15053)');
    }
    const xds = await startRelay(workload.gateway, info.xdsAddress);
    relays.push(xds);
    const ca = await startRelay(workload.gateway, info.caAddress);
    relays.push(ca);

    // The sidecar, inside, as 1337.
    // setpriv: uid/gid 1337, and SIGKILL when this process dies (even by SIGKILL), so nothing outlives the runtime.
    const user = workload.proxyUser;
    const sc = workload.spawn(SETPRIV, ['--pdeathsig', 'SIGKILL', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--', process.execPath, '--disable-warning=ExperimentalWarning', ...SIDECAR_NODE_FLAGS, SIDECAR_MAIN], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: '/', env: { ...process.env, HOME: '/tmp', ...compileCacheEnv() } });
    sidecar = sc;
    const sidecarExit = exitOf(sc);
    const toSidecar = (m: ToSidecar): void => {
      if (sc.connected) sc.send(m);
    };
    const ready = new Promise<SidecarStatus>((resolve, reject) => {
      sc.on('message', (raw) => {
        const m = raw as FromSidecar;
        if (m.type === 'ready') resolve(m.status);
        else if (m.type === 'failed') reject(new Error(`sidecar failed: ${m.error}`));
        else if (m.type === 'token') {
          cp.bootstrapToken(o.namespace, o.serviceAccount).then(
            (token) => toSidecar({ type: 'token', id: m.id, token }),
            (err: unknown) => toSidecar({ type: 'token', id: m.id, error: (err as Error).message }),
          );
        }
      });
      void sidecarExit.then((e) => reject(new Error(`the sidecar exited (${e.code ?? e.signal}) before it was ready`)));
    });
    toSidecar({
      type: 'init',
      options: { type: o.type, service: o.service, version, namespace: o.namespace, serviceAccount: o.serviceAccount, ...(o.servicePort !== undefined ? { servicePort: o.servicePort } : {}), ...(o.labels ? { labels: o.labels } : {}), workloadName, ...(o.locality ? { locality: o.locality } : {}), ...(o.configTimeoutMs ? { configTimeoutMs: o.configTimeoutMs } : {}), ...(o.certTtlSeconds ? { certTtlSeconds: o.certTtlSeconds } : {}) },
      address: workload.address,
      info: { ...info, xdsAddress: xds.address, caAddress: ca.address },
      services,
      names,
      dnsUpstreams,
      dnsPort: router ? 53 : 15053,
    });
    const status = await Promise.race([ready, new Promise<never>((_, reject) => (onSignal = (sig) => reject(new Error(`${sig} before the sidecar was ready`))))]);
    if (signalled) throw new Error(`${signalled} before the sidecar was ready`);
    onReady?.(status);

    // DNS table: services declared later get names too.
    const refresh = async (): Promise<void> => {
      try {
        const list = await cp.services();
        const next = nameTable(list, vipsOf(list));
        if (JSON.stringify(next) !== JSON.stringify(names)) {
          names = next;
          toSidecar({ type: 'names', names });
        }
      } catch {
        // control plane away: keep the last table
      }
    };
    timer = setInterval(() => void refresh(), net.namesRefreshMs ?? 2000);
    timer.unref();

    if (router) {
      // A gateway: registered now (nothing to wait for), serving until a signal.
      toSidecar({ type: 'register' });
      const stopped = new Promise<NodeJS.Signals>((resolve) => (onSignal = resolve));
      const end = await Promise.race([stopped.then((signal) => ({ signal })), sidecarExit.then((e) => ({ ...e, sidecar: true as const }))]);
      if ('sidecar' in end) {
        log.error({ code: end.code, signal: end.signal }, 'the gateway proxy exited');
        return 1;
      }
      log.info({ signal: end.signal }, 'signal received: unregistering and stopping the gateway');
      toSidecar({ type: 'unregister' });
      return 0;
    }

    // The app, inside, as root (not 1337: its traffic is captured).
    // Nothing of the no-capture wiring leaks in: the app finds services by name.
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/_SERVICE_(HOST|PORT)(_|$)/.test(k)));
    const env: NodeJS.ProcessEnv = {
      ...inherited,
      ...(o.servicePort !== undefined ? { PORT: String(o.servicePort), HOST: '127.0.0.1' } : {}),
      SERVICE_VERSION: version,
      POD_NAME: workloadName,
      POD_NAMESPACE: o.namespace,
      POD_IP: workload.address,
      SERVICE_ACCOUNT: o.serviceAccount,
      ...o.env,
    };
    const [file, ...args] = o.command!;
    const a = workload.spawn(SETPRIV, ['--pdeathsig', 'SIGKILL', '--', file!, ...args], { env, stdio: ['inherit', 'pipe', 'pipe'] });
    app = a;
    prefixLines(a.stdout!, process.stdout, o.logPrefix ?? '');
    prefixLines(a.stderr!, process.stderr, o.logPrefix ?? '');
    const appExit = exitOf(a);
    toSidecar({ type: 'register', ...(o.servicePort !== undefined ? { port: o.servicePort } : {}) });
    let stops = 0;
    onSignal = (sig) => {
      if (stops++ > 0) {
        log.warn({ signal: sig }, 'second signal: killing the app');
        a.kill('SIGKILL');
        return;
      }
      log.info({ signal: sig }, 'signal received: unregistering and stopping the app; outbound traffic flows until it exits');
      toSidecar({ type: 'unregister' });
      a.kill(sig);
      // A grace period (Kubernetes' terminationGracePeriodSeconds), shorter than mesh up's 10 s.
      setTimeout(() => {
        if (a.exitCode === null && a.signalCode === null) {
          log.warn({ graceMs: APP_GRACE_MS }, 'the app did not exit in time: killing it');
          a.kill('SIGKILL');
        }
      }, APP_GRACE_MS).unref();
    };
    const exit = await Promise.race([appExit, sidecarExit.then((e) => ({ ...e, sidecar: true }))]);
    if ('sidecar' in exit) {
      log.error({ code: exit.code, signal: exit.signal }, 'the sidecar exited; stopping the app');
      a.kill('SIGTERM');
      await appExit;
      return 1;
    }
    log.info({ code: exit.code, signal: exit.signal }, 'app exited; draining the sidecar');
    if (exit.signal) return 128 + (constants.signals[exit.signal] ?? 0);
    return exit.code ?? 0;
  } finally {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
    if (timer) clearInterval(timer);
    if (app && app.exitCode === null && app.signalCode === null) {
      app.kill('SIGKILL');
      await exitOf(app);
    }
    if (sidecar && sidecar.exitCode === null && sidecar.signalCode === null) {
      if (sidecar.connected) sidecar.send({ type: 'stop' } satisfies ToSidecar);
      else sidecar.kill('SIGTERM');
      const t = setTimeout(() => sidecar?.kill('SIGKILL'), 10_000);
      await exitOf(sidecar);
      clearTimeout(t);
    }
    for (const r of relays) await r.close().catch(() => undefined);
    if (workload) {
      await workload.teardown().catch((err: unknown) => log.error({ err: (err as Error).message, netns: workload?.namespace }, 'namespace teardown failed'));
      log.info({ netns: workload.namespace }, 'workload namespace removed');
    }
  }
}
