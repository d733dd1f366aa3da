// Helpers for proxy tests: upstream servers on port 0, bootstrap builders,
// an in-process proxy from an Envoy bootstrap object, a keep-alive client.

import { Agent, createServer, request } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import { once } from 'node:events';
import { createServer as createTcpServer } from 'node:net';
import type { Socket, Server as TcpServer } from 'node:net';
import { Proxy, parseBootstrap } from '../../src/proxy/index.ts';

export const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
export const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
export const FAULT = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
export const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';

export interface Upstream {
  readonly server: Server;
  readonly port: number;
  close(): Promise<void>;
}

/** A node:http upstream; the default handler echoes method, url, headers and body as JSON. */
export async function startUpstream(name: string, handler?: (req: IncomingMessage, res: ServerResponse) => void): Promise<Upstream> {
  const server = createServer(
    { maxHeaderSize: 256 * 1024 },
    handler ??
      ((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const body = JSON.stringify({ upstream: name, method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
          res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': name });
          res.end(body);
        });
      }),
  );
  server.keepAliveTimeout = 30_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as { port: number }).port,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

export function staticCluster(name: string, ports: number[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: ports.map((p) => ({ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: p } } } })) }] },
    ...extra,
  };
}

export function hcmListener(name: string, routeConfig: unknown, extra: { httpFilters?: unknown[]; hcm?: Record<string, unknown>; port?: number } = {}): Record<string, unknown> {
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: extra.port ?? 0 } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM,
              stat_prefix: name,
              route_config: routeConfig,
              http_filters: [...(extra.httpFilters ?? []), { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
              ...extra.hcm,
            },
          },
        ],
      },
    ],
  };
}

/** A port nothing listens on: bound once, then closed. */
export async function deadPort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

export async function startProxy(bootstrap: Record<string, unknown>): Promise<Proxy> {
  return Proxy.start({ bootstrap: parseBootstrap(JSON.stringify(bootstrap), 'test bootstrap') });
}

export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  json<T = any>(): T;
}

// One keep-alive agent for all test requests: the proxy sees reused connections.
export const clientAgent = new Agent({ keepAlive: true, maxSockets: 64 });

/** A request through node:http (fetch forbids setting Host). */
export function get(port: number, path: string, init: { host?: string; method?: string; headers?: Record<string, string>; body?: string; agent?: Agent } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...init.headers };
    if (init.host) headers.host = init.host;
    const req = request({ host: '127.0.0.1', port, path, method: init.method ?? 'GET', headers, agent: init.agent ?? clientAgent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode!, headers: res.headers, body, json: () => JSON.parse(body) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

/** A TCP echo server on 127.0.0.1 (`echo:` + each chunk, ends when the client ends); `accepted` counts its connections. */
export interface TcpEcho {
  readonly server: TcpServer;
  readonly port: number;
  readonly accepted: number;
}

export async function startTcpEcho(): Promise<TcpEcho> {
  let accepted = 0;
  const server = createTcpServer((s) => {
    accepted++;
    s.on('data', (d) => s.write(`echo:${d.toString()}`));
    s.on('end', () => s.end());
    s.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return {
    server,
    port,
    get accepted() {
      return accepted;
    },
  };
}

/** A listener on 127.0.0.1 (port 0) with one chain: `filters`, then tcp_proxy to `cluster` (its config extended by `tcpProxy`), behind `transportSocket` when given; `listener` adds listener fields. */
export function tcpProxyListener(name: string, cluster: string, options: { readonly filters?: readonly object[]; readonly transportSocket?: object; readonly tcpProxy?: object; readonly listener?: object } = {}): Record<string, unknown> {
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    ...options.listener,
    filter_chains: [{
      ...(options.transportSocket ? { transport_socket: options.transportSocket } : {}),
      filters: [...(options.filters ?? []), { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY, stat_prefix: name, cluster, ...options.tcpProxy } }],
    }],
  };
}

/**
 * Drives a client socket that is opening: once `ready` (connect, or
 * secureConnect for TLS), writes each string of `steps` and waits each
 * number (ms), then ends it. Resolves with what it received before it closed.
 */
export async function converse(socket: Socket, steps: ReadonlyArray<string | number>, ready: 'connect' | 'secureConnect' = 'connect'): Promise<string> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => undefined);
  const closed = once(socket, 'close');
  await once(socket, ready);
  for (const step of steps) {
    if (typeof step === 'number') await new Promise((r) => setTimeout(r, step));
    else socket.write(step);
  }
  socket.end();
  await closed;
  return Buffer.concat(chunks).toString();
}
