// The request hash for consistent-hash load balancing (route hash_policy):
// header, cookie (generated with Set-Cookie when absent and a ttl is set),
// source IP and query parameter; several policies combine as Envoy does,
// and a terminal policy that produced a hash ends the list.

import { randomBytes } from 'node:crypto';
import type { HashPolicy } from '../../../config/route-resilience.ts';
import { combineHash, hashString } from '../../../upstream/hash-lb.ts';
import type { HttpStream } from '../http-filter.ts';

export interface RequestHash {
  readonly hash: number | undefined;
  /** A Set-Cookie value to add to the response (a generated hash cookie). */
  readonly setCookie: string | undefined;
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
  }
  return undefined;
}

export function requestHash(s: HttpStream, policies: readonly HashPolicy[]): RequestHash {
  let hash: number | undefined;
  let setCookie: string | undefined;
  let params: URLSearchParams | undefined;
  for (const p of policies) {
    let key: string | undefined;
    switch (p.kind) {
      case 'header': {
        const v = s.req.headers[p.name];
        key = Array.isArray(v) ? v.join(',') : v;
        break;
      }
      case 'cookie': {
        key = cookieValue(s.req.headers.cookie, p.name);
        if (key === undefined && p.ttlMs !== undefined) {
          key = randomBytes(8).toString('hex');
          const maxAge = p.ttlMs > 0 ? `; Max-Age=${Math.floor(p.ttlMs / 1000)}` : '';
          setCookie = `${p.name}="${key}"${maxAge}${p.path ? `; Path=${p.path}` : ''}; HttpOnly`;
        }
        break;
      }
      case 'source_ip':
        key = s.req.socket.remoteAddress;
        break;
      case 'query_parameter':
        params ??= new URLSearchParams(s.query);
        key = params.get(p.name) ?? undefined;
        break;
    }
    if (key === undefined) continue;
    hash = combineHash(hash, hashString(key));
    if (p.terminal) break;
  }
  return { hash, setCookie };
}
