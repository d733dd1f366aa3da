// Addresses of a workload on one host without network namespaces: its own
// loopback IP (Linux routes all of 127.0.0.0/8 to lo), so Pilot tells
// workloads apart by address as it does pods, and free loopback ports for
// the app and its outbound listeners.

import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';

/** A random 127.x.y.z in 127.1.0.1 - 127.254.255.254 (never 127.0.0.x: 127.0.0.1 is shared, 127.0.0.6 marks inbound passthrough). */
export function randomLoopbackIp(): string {
  return `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;
}

// Bug fix (found by test/e2e/bookinfo-*.test.ts running two meshes side by
// side): a port from a bind(0) probe is free only until the probe closes; the
// app or the proxy binds it seconds later (CSR, config, start-up on a loaded
// host), and meanwhile another sidecar's probe, in this mesh or another one,
// could be handed the same port: the second app then died with EADDRINUSE and
// took `mesh up` down. Each port handed out is now claimed host-wide for two
// minutes (an exclusive file per port under the temp dir), and a probe that
// returns a claimed port probes again.
const CLAIMS_DIR = join(tmpdir(), `mesh-port-claims-${process.getuid?.() ?? 'user'}`);
const CLAIM_TTL_MS = 120_000;

/** Claims `port` for this process; false when another process claimed it recently. */
function claimPort(port: number): boolean {
  const file = join(CLAIMS_DIR, String(port));
  try {
    mkdirSync(CLAIMS_DIR, { recursive: true });
    writeFileSync(file, String(process.pid), { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return true; // no claims possible here: as before
    try {
      if (Date.now() - statSync(file).mtimeMs < CLAIM_TTL_MS) return false;
      writeFileSync(file, String(process.pid));
    } catch {
      // gone meanwhile
    }
    return true;
  }
}

// Second fix (a CI run where the gateway of a test mesh never bound its
// port): a port from a bind(0) probe lies in the kernel's ephemeral range,
// which the kernel also hands to outgoing connections and other binds to 0
// at any moment, claims or not. Ports are now picked below that range, where
// only explicit binds (claimed ones) can take them; bind(0) is the fallback.
const FIRST_PICKED_PORT = 20_000;

/** The kernel's ephemeral port range (outgoing connections, binds to port 0). */
function ephemeralRange(): { low: number; high: number } {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low && high && low <= high) return { low, high };
  } catch {
    // not Linux: the IANA dynamic range
  }
  return { low: 49152, high: 65535 };
}

function canListen(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

function probePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A port free on `host` now, outside the ephemeral range where there is room, and not handed out to another process of this host in the last two minutes. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const { low } = ephemeralRange();
  if (low - FIRST_PICKED_PORT >= 1000) {
    for (let i = 0; i < 50; i++) {
      const port = randomInt(FIRST_PICKED_PORT, low);
      if ((await canListen(port, host)) && claimPort(port)) return port;
    }
  }
  for (let i = 0; ; i++) {
    const port = await probePort(host);
    if (claimPort(port) || i >= 20) return port;
  }
}

/**
 * A server bound to `preferred` on `host`, or to a free port when another
 * process holds it. Binding is the check, so two callers at the same moment
 * cannot both get `preferred` (a probe that closes before the real bind can:
 * the `mesh up` API-port race). The caller hands the socket on (listenFd) or closes it.
 */
export function listenPreferred(preferred: number, host = '127.0.0.1'): Promise<Server> {
  const bind = (port: number): Promise<Server> =>
    new Promise((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen({ port, host, exclusive: true }, () => {
        server.off('error', reject);
        resolve(server);
      });
    });
  return bind(preferred).catch(() => bind(0));
}

/** The file descriptor of a listening server, to pass to a child process (libuv's handle; undefined where there is none). */
export function listenFd(server: Server): number | undefined {
  const fd = (server as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** Checks that `ip` can be bound (some systems route only 127.0.0.1). */
export function canBind(ip: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(0, ip, () => server.close(() => resolve(true)));
  });
}

/** `reviews.default.svc.cluster.local` -> `REVIEWS`, as Kubernetes names service env variables. */
export function serviceEnvPrefix(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}
