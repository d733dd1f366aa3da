// Shared plumbing of the Bookinfo services: an HTTP server with an access log,
// limits and graceful shutdown; Kubernetes-style discovery of the other
// services; propagation of trace headers; a small HTTP client with a timeout.
//
// Only Node's standard library: the apps know nothing of the mesh.

import { request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import { hostname } from 'node:os';

/** Headers each service copies from its incoming request to every outgoing call. */
export const PROPAGATED_HEADERS: readonly string[] = [
  'x-request-id',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
  'b3',
  'traceparent',
  'tracestate',
  'x-ot-span-context',
  'x-cloud-trace-context',
  'grpc-trace-bin',
  'sw8',
  'x-datadog-trace-id',
  'x-datadog-parent-id',
  'x-datadog-sampling-priority',
  'end-user',
  'user-agent',
];

/** Access-logged subset of the propagated headers (user-agent is logged apart). */
const LOGGED_HEADERS = PROPAGATED_HEADERS.filter((h) => h !== 'user-agent');

/** Largest request body any service accepts (POST /login, POST /ratings). */
export const MAX_BODY_BYTES = 64 * 1024;
/** Largest response body read from another service. */
export const MAX_UPSTREAM_BODY_BYTES = 1024 * 1024;

export type Env = Readonly<Record<string, string | undefined>>;

export interface ServiceIdentity {
  readonly service: string;
  readonly version: string;
  /** The instance ("pod") name: POD_NAME, else HOSTNAME, else service-version-host. */
  readonly instance: string;
}

export function identity(service: string, env: Env = process.env, defaultVersion = 'v1'): ServiceIdentity {
  const version = env.SERVICE_VERSION || defaultVersion;
  const instance = env.POD_NAME || env.HOSTNAME || `${service}-${version}-${hostname()}`;
  return { service, version, instance };
}

/** Writes one JSON line to stdout. */
export function log(fields: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...fields })}\n`);
}

/**
 * The base URL of another service, found the way a Kubernetes app finds it:
 * by plain name and port (`http://reviews:9080`), or through the
 * `<SVC>_SERVICE_HOST` / `<SVC>_SERVICE_PORT` variables when they are set.
 * Istio's own `<SVC>_HOSTNAME` and `SERVICES_DOMAIN` are honoured too.
 */
export function serviceUrl(name: string, env: Env = process.env): string {
  const key = name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
  let host = env[`${key}_SERVICE_HOST`];
  if (!host) {
    host = env[`${key}_HOSTNAME`] || name;
    if (env.SERVICES_DOMAIN) host += `.${env.SERVICES_DOMAIN}`;
  }
  const port = env[`${key}_SERVICE_PORT`] || '9080';
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `http://${h}:${port}`;
}

/** The trace (and end-user) headers of an incoming request, to send on. */
export function forwardHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of PROPAGATED_HEADERS) {
    const v = headers[name];
    if (typeof v === 'string') out[name] = v;
    else if (Array.isArray(v) && v.length > 0) out[name] = v.join(', ');
  }
  return out;
}

export interface UpstreamResponse {
  readonly status: number;
  readonly body: string;
}

/**
 * GET (or another method) with an overall timeout covering connect, headers
 * and body. Rejects on network errors, timeouts and oversized bodies.
 */
export function call(url: string, options: { method?: string; headers?: OutgoingHttpHeaders; timeoutMs: number; body?: string }): Promise<UpstreamResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: options.method ?? 'GET', headers: { accept: 'application/json', ...options.headers } });
    const timer = setTimeout(() => req.destroy(new Error(`timeout after ${options.timeoutMs} ms calling ${url}`)), options.timeoutMs);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      reject(err);
    };
    req.on('error', fail);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_UPSTREAM_BODY_BYTES) {
          req.destroy(new Error(`response from ${url} exceeds ${MAX_UPSTREAM_BODY_BYTES} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', fail);
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.end(options.body);
  });
}

/** Parses JSON, or returns undefined. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** Reads a request body, at most `limit` bytes (413 beyond). */
export function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      reject(new HttpError(413, `request body exceeds ${limit} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        done = true;
        reject(new HttpError(413, `request body exceeds ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', (err) => {
      if (!done) reject(err);
      done = true;
    });
    req.on('end', () => {
      if (!done) resolve(Buffer.concat(chunks).toString('utf8'));
      done = true;
    });
  });
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

export interface StartedService {
  readonly server: Server;
  readonly port: number;
}

/**
 * Starts a service: listens on HOST:PORT (defaults 0.0.0.0:9080), logs one
 * JSON line per request to stdout, applies header/request timeouts, and
 * shuts down gracefully on SIGTERM / SIGINT.
 */
export function serve(id: ServiceIdentity, handler: Handler, env: Env = process.env): Promise<StartedService> {
  let shuttingDown = false;
  const server = createServer({ headersTimeout: 10_000, requestTimeout: 30_000, maxHeaderSize: 16 * 1024 }, (req, res) => {
    const started = process.hrtime.bigint();
    if (shuttingDown) res.setHeader('connection', 'close');
    res.on('finish', () => {
      const trace: Record<string, string> = {};
      for (const h of LOGGED_HEADERS) {
        const v = req.headers[h];
        if (typeof v === 'string') trace[h] = v;
      }
      log({
        service: id.service,
        version: id.version,
        instance: id.instance,
        method: req.method,
        path: req.url,
        status: res.statusCode,
        duration_ms: Number((process.hrtime.bigint() - started) / 1000n) / 1000,
        remote: req.socket.remoteAddress,
        user_agent: req.headers['user-agent'],
        headers: trace,
      });
    });
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      sendJson(res, 400, { error: 'bad request URL' });
      return;
    }
    Promise.resolve()
      .then(() => handler(req, res, url))
      .catch((err: unknown) => {
        const status = err instanceof HttpError ? err.status : 500;
        const message = err instanceof Error ? err.message : String(err);
        if (status === 500) log({ service: id.service, level: 'error', msg: 'handler failed', error: message });
        if (!res.headersSent) {
          if (status === 413) res.setHeader('connection', 'close');
          sendJson(res, status, { error: message });
        } else res.destroy();
      });
  });
  server.keepAliveTimeout = 5_000;
  const port = Number(env.PORT ?? 9080);
  const host = env.HOST || '0.0.0.0';
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT: invalid port "${env.PORT}"`);

  const shutdown = (signal: string): void => {
    if (shuttingDown) return;
    shuttingDown = true;
    log({ service: id.service, instance: id.instance, msg: 'shutting down', signal });
    server.close(() => {
      log({ service: id.service, instance: id.instance, msg: 'stopped' });
      process.exit(0);
    });
    server.closeIdleConnections();
    setTimeout(() => {
      server.closeAllConnections();
      process.exit(0);
    }, Number(env.SHUTDOWN_GRACE_MS ?? 5_000)).unref();
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const address = server.address();
      const actual = typeof address === 'object' && address ? address.port : port;
      log({ service: id.service, version: id.version, instance: id.instance, msg: 'listening', address: host, port: actual });
      resolve({ server, port: actual });
    });
  });
}

/** Runs `main` and exits with a message if it fails to start. */
export function run(main: () => Promise<unknown>): void {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
