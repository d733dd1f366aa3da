// The control plane's config API over HTTP, Kubernetes-style paths, JSON bodies.
// The `mesh` CLI is its client (apply, get, delete). Every request is bounded:
// body size, header size, time, and connection count.
//
//   GET    /status                                   store name, revision, backend status
//   POST   /apply?dryRun=true&namespace=NS          body {"objects":[...]}
//   GET    /apis/GROUP/VERSION/PLURAL                (all namespaces; the core group: /api/v1/PLURAL)
//   GET    /apis/GROUP/VERSION/namespaces/NS/PLURAL
//   GET    /apis/GROUP/VERSION/namespaces/NS/PLURAL/NAME
//   DELETE /apis/GROUP/VERSION/namespaces/NS/PLURAL/NAME?resourceVersion=RV&dryRun=true

import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { KindRegistry } from '../api/index.ts';
import { describeObject } from '../api/index.ts';
import { isMeshError } from '../common/index.ts';
import type { Logger } from '../common/index.ts';
import type { ConfigStore } from './config-store.ts';
import { GalleyErrorCode } from './errors.ts';
import { ingest, ValidationFailedError } from './ingestion.ts';

export interface HttpApiLimits {
  /** Largest request body accepted; larger gets 413. */
  readonly maxBodyBytes: number;
  /** Largest request head accepted by Node; larger gets 431. */
  readonly maxHeaderBytes: number;
  /** Whole-request deadline. */
  readonly requestTimeoutMs: number;
  readonly maxConnections: number;
}

export const DEFAULT_HTTP_API_LIMITS: HttpApiLimits = {
  maxBodyBytes: 8 * 1024 * 1024,
  maxHeaderBytes: 16 * 1024,
  requestTimeoutMs: 30_000,
  maxConnections: 256,
};

export interface HttpApiOptions {
  readonly store: ConfigStore;
  readonly registry: KindRegistry;
  readonly log: Logger;
  readonly limits?: Partial<HttpApiLimits>;
  /** Counts each apply/delete outcome, for /metrics. */
  readonly onChange?: (action: string) => void;
  /** Other components' read-only endpoints (Pilot's /debug/...), tried before the config API's own paths. */
  readonly extraHandlers?: readonly ((req: IncomingMessage, res: ServerResponse) => boolean)[];
}

class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function createHttpApiServer(options: HttpApiOptions): Server {
  const limits = { ...DEFAULT_HTTP_API_LIMITS, ...options.limits };
  const server = createServer({ maxHeaderSize: limits.maxHeaderBytes, requestTimeout: limits.requestTimeoutMs, headersTimeout: Math.min(10_000, limits.requestTimeoutMs) }, (req, res) => {
    for (const extra of options.extraHandlers ?? []) if (extra(req, res)) return;
    handle(req, res, options, limits).catch((err: unknown) => sendError(res, err, options.log));
  });
  server.maxConnections = limits.maxConnections;
  server.keepAliveTimeout = 5_000;
  return server;
}

async function handle(req: IncomingMessage, res: ServerResponse, options: HttpApiOptions, limits: HttpApiLimits): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  // Kubernetes serves its core group (Secret) at /api/v1/..., the others at /apis/GROUP/VERSION/...
  if (parts[0] === 'api') parts.splice(0, 1, 'apis', '');
  const dryRun = url.searchParams.get('dryRun') === 'true';

  if (parts[0] === 'status' && parts.length === 1 && req.method === 'GET') {
    sendJson(res, 200, { store: options.store.name, revision: options.store.revision(), ...(options.store.status?.() as object | undefined) });
    return;
  }

  if (parts[0] === 'apply' && parts.length === 1) {
    if (req.method !== 'POST') throw new HttpError(405, 'MESH_ERR_HTTP_METHOD', 'use POST /apply');
    const body = await readJsonBody(req, limits.maxBodyBytes);
    const objects = (body as { objects?: unknown }).objects;
    if (!Array.isArray(objects)) throw new HttpError(400, 'MESH_ERR_HTTP_BAD_REQUEST', 'the body must be {"objects": [...]}');
    const outcome = await ingest(options.store, options.registry, objects, { dryRun, defaultNamespace: url.searchParams.get('namespace') ?? undefined });
    for (const a of outcome.applied) options.onChange?.(a.action);
    sendJson(res, 200, { applied: outcome.applied, ignored: outcome.ignored.map((r) => r.ignored), warnings: outcome.warnings });
    return;
  }

  if (parts[0] === 'apis') {
    const [, group, version, ...rest] = parts;
    let namespace: string | undefined;
    let plural: string | undefined;
    let name: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) [, namespace, plural, name] = rest;
    else if (rest.length === 1) plural = rest[0];
    const kind = group !== undefined && plural ? options.registry.all().find((d) => d.group === group && d.plural === plural) : undefined;
    if (!kind || !version || !kind.versions.includes(version) || rest.length > 4) throw new HttpError(404, GalleyErrorCode.NOT_FOUND, `no such resource path ${url.pathname}`);
    if (name !== undefined) {
      const key = { group: kind.group, kind: kind.kind, namespace: namespace!, name };
      if (req.method === 'GET') {
        const obj = await options.store.get(key);
        if (!obj) throw new HttpError(404, GalleyErrorCode.NOT_FOUND, `${kind.kind} ${namespace}/${name} not found`);
        sendJson(res, 200, obj);
        return;
      }
      if (req.method === 'DELETE') {
        const deleted = await options.store.delete(key, { resourceVersion: url.searchParams.get('resourceVersion') ?? undefined, dryRun });
        if (!deleted) throw new HttpError(404, GalleyErrorCode.NOT_FOUND, `${kind.kind} ${namespace}/${name} not found`);
        if (!dryRun) options.onChange?.('deleted');
        sendJson(res, 200, { deleted, message: `${describeObject(deleted)} deleted${dryRun ? ' (dry run)' : ''}` });
        return;
      }
      throw new HttpError(405, 'MESH_ERR_HTTP_METHOD', `use GET or DELETE on ${url.pathname}`);
    }
    if (req.method !== 'GET') throw new HttpError(405, 'MESH_ERR_HTTP_METHOD', `use GET on ${url.pathname}`);
    const items = await options.store.list({ group: kind.group, kind: kind.kind, namespace });
    items.sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));
    sendJson(res, 200, { items, revision: options.store.revision() });
    return;
  }
  throw new HttpError(404, GalleyErrorCode.NOT_FOUND, `no such path ${url.pathname}`);
}

/** Reads a JSON body, refusing more than `limit` bytes (413) without buffering it. */
async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) {
    req.resume();
    throw new HttpError(413, 'MESH_ERR_HTTP_TOO_LARGE', `request body of ${declared} bytes exceeds the limit of ${limit} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new HttpError(413, 'MESH_ERR_HTTP_TOO_LARGE', `request body exceeds the limit of ${limit} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch (err) {
    throw new HttpError(400, 'MESH_ERR_HTTP_BAD_REQUEST', `the body is not valid JSON: ${(err as Error).message}`);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, err: unknown, log: Logger): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err instanceof HttpError) {
    // The client may still be sending a body we refused; close instead of draining it.
    res.setHeader('connection', 'close');
    sendJson(res, err.status, { code: err.code, message: err.message });
    return;
  }
  if (err instanceof ValidationFailedError) {
    sendJson(res, 422, {
      code: err.code,
      message: err.message,
      results: err.results.map((r) => ({ object: { apiVersion: r.object.apiVersion, kind: r.object.kind, metadata: r.object.metadata }, diagnostics: r.diagnostics })),
    });
    return;
  }
  if (isMeshError(err, GalleyErrorCode.CONFLICT)) {
    sendJson(res, 409, { code: err.code, message: err.message });
    return;
  }
  if (isMeshError(err, GalleyErrorCode.READ_ONLY)) {
    sendJson(res, 405, { code: err.code, message: err.message });
    return;
  }
  log.error({ err }, 'config API request failed');
  sendJson(res, 500, { code: 'MESH_ERR_INTERNAL', message: (err as Error).message ?? String(err) });
}
