// The control plane listens on loopback; captured sidecars live in network
// namespaces and reach the host only at the mesh bridge's address. The
// runtime outside the namespace relays exactly the two ports a sidecar needs
// (Pilot's xDS and Citadel's CA/registration port, both authenticated or
// config-only) from <bridge address>:<ephemeral> to the loopback ports, so
// the control plane does not listen on any other interface and the runtime
// API (bootstrap tokens: loopback only) stays unreachable from workloads.

import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';

export interface Relay {
  /** host:port to give the sidecar. */
  readonly address: string;
  close(): Promise<void>;
}

function splitHostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
}

/** Listens on `listenHost:0` and pipes every connection to `target` (host:port). */
export async function startRelay(listenHost: string, target: string): Promise<Relay> {
  const t = splitHostPort(target);
  const sockets = new Set<Socket>();
  const server: Server = createServer((down) => {
    const up = connect({ host: t.host, port: t.port });
    sockets.add(down).add(up);
    const end = (): void => {
      down.destroy();
      up.destroy();
      sockets.delete(down);
      sockets.delete(up);
    };
    down.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
    down.pipe(up);
    up.pipe(down);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, listenHost, () => resolve());
  });
  const a = server.address();
  const port = typeof a === 'object' && a ? a.port : 0;
  return {
    address: `${listenHost}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
