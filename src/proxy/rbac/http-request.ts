// An HTTP stream as RBAC (and ext_authz) sees it: headers with Envoy's
// pseudo-headers, the path without the query, the remote address after
// x-forwarded-for, and the stream's dynamic metadata.

import type { IncomingMessage } from 'node:http';
import type { HttpStream } from '../filters/http/http-filter.ts';
import { connectionFacts } from './connection-facts.ts';
import type { RbacRequest } from './rbac-engine.ts';
import { filterMetadata } from './stream-metadata.ts';

export function headerValue(req: IncomingMessage, host: string, name: string): string | undefined {
  switch (name) {
    case ':method':
      return req.method;
    case ':path':
      return req.url;
    case ':authority':
    case 'host':
      return host || (req.headers.host as string | undefined);
    case ':scheme':
      return (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  }
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

/** Envoy's remote address with xff_num_trusted_hops 0: the last x-forwarded-for entry, else the peer. */
export function remoteAddress(req: IncomingMessage, direct: string): string {
  const xff = req.headers['x-forwarded-for'];
  const text = Array.isArray(xff) ? xff.join(',') : xff;
  if (!text) return direct;
  const parts = text.split(',');
  return parts[parts.length - 1].trim() || direct;
}

export function rbacRequestOf(s: HttpStream): RbacRequest {
  const req = s.req;
  const conn = connectionFacts(req.socket);
  return {
    conn,
    header: (name) => headerValue(req, s.host, name),
    path: s.path,
    remoteIp: remoteAddress(req, conn.directRemoteIp),
    metadata: (filter) => filterMetadata(req, filter),
  };
}
