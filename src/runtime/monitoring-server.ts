// The monitoring endpoint of a mesh process: Prometheus `/metrics`, `/ready`
// (200 once every component is up) and `/healthz` (the process answers).

import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Registry } from '../common/index.ts';

export interface MonitoringServerOptions {
  readonly registry: Registry;
  /** Names of components that are not ready yet; empty means ready. */
  readonly notReady: () => string[];
  /** Component debug endpoints (Pilot's /debug/...): each returns false for paths it does not own. */
  readonly debugHandlers?: readonly ((req: IncomingMessage, res: ServerResponse) => boolean)[];
}

export function createMonitoringServer(options: MonitoringServerOptions): Server {
  const server = createServer({ maxHeaderSize: 8 * 1024, requestTimeout: 10_000 }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405).end();
      return;
    }
    if (path === '/metrics') {
      options.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': options.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(err.message),
      );
      return;
    }
    if (path === '/ready') {
      const waiting = options.notReady();
      if (waiting.length === 0) res.writeHead(200, { 'content-type': 'text/plain' }).end('ready\n');
      else res.writeHead(503, { 'content-type': 'text/plain' }).end(`not ready: ${waiting.join(', ')}\n`);
      return;
    }
    if (path?.startsWith('/debug/')) {
      for (const handler of options.debugHandlers ?? []) if (handler(req, res)) return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  server.maxConnections = 64;
  return server;
}
