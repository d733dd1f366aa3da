// Addresses of a workload on one host without network namespaces: its own
// loopback IP (Linux routes all of 127.0.0.0/8 to lo), so Pilot tells
// workloads apart by address as it does pods, and free loopback ports for
// the app and its outbound listeners.

import { mkdirSync, statSync, writeFileSync } from 'node:fs';
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

/** A port free on `host` now (the OS picks it) and not handed out to another process of this host in the last two minutes. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
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
