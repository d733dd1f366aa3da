// Addresses of a workload on one host without network namespaces: its own
// loopback IP (Linux routes all of 127.0.0.0/8 to lo), so Pilot tells
// workloads apart by address as it does pods, and free loopback ports for
// the app and its outbound listeners.

import { createServer } from 'node:net';
import { randomInt } from 'node:crypto';

/** A random 127.x.y.z in 127.1.0.1 - 127.254.255.254 (never 127.0.0.x: 127.0.0.1 is shared, 127.0.0.6 marks inbound passthrough). */
export function randomLoopbackIp(): string {
  return `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;
}

/** A port free on `host` now (the OS picks it; a tiny race with other processes remains). */
export function freePort(host = '127.0.0.1'): Promise<number> {
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

/** `preferred` when it is free on `host` (so users reach the usual port), else a free one. */
export function preferredPort(preferred: number, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(freePort(host)));
    server.listen(preferred, host, () => server.close(() => resolve(preferred)));
  });
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
