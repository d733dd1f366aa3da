// What the HTTP and the network ext_authz filters share: the gRPC clients of
// envoy.service.auth.v3.Authorization, CheckResponse decoding (decision,
// Mixer's cache hints), the connection's
// attributes as Mixer names them (for the check cache), and
// filter_enabled_metadata.

import * as grpc from '@grpc/grpc-js';
import type { Socket } from 'node:net';
import { loadXdsProtos } from '../../../../xds/index.ts';
import { configError } from '../../../errors.ts';
import { plainStruct } from '../../../config/typed-struct.ts';
import type { ConnectionFacts } from '../../../rbac/connection-facts.ts';
import { valueMatcher } from '../../../rbac/rbac-engine.ts';
import { filterMetadata } from '../../../rbac/stream-metadata.ts';
import type { CacheHints, CachedDecision } from './check-cache.ts';

type D = Record<string, any>;

export const AUTHORIZATION_SERVICE = 'envoy.service.auth.v3.Authorization';
/** Where Mixer puts its caching hints in CheckResponse.dynamic_metadata. */
export const MIXER_CACHE_NAMESPACE = 'istio.mixer';

/** The signature of Authorization.Check on a client built from the service definition. */
export type CheckMethod = (request: D, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, response: D) => void) => grpc.ClientUnaryCall;

/** One gRPC client per upstream host address, shared by every stream of a filter config. */
export class GrpcClients {
  private readonly byAddress = new Map<string, grpc.Client>();

  get(address: string, authority: string): grpc.Client {
    let c = this.byAddress.get(address);
    if (!c) {
      const Ctor = loadXdsProtos().service(AUTHORIZATION_SERVICE);
      c = new Ctor(address, grpc.credentials.createInsecure(), authority ? { 'grpc.default_authority': authority } : {});
      this.byAddress.set(address, c);
    }
    return c;
  }

  close(): void {
    for (const c of this.byAddress.values()) c.close();
    this.byAddress.clear();
  }
}

let statusCodes: Record<string, number> | undefined;
/** envoy.type.v3.StatusCode arrives as its enum name (enums: String). */
export function httpStatusOf(code: unknown, fallback: number): number {
  if (typeof code === 'number') return code > 0 ? code : fallback;
  if (typeof code !== 'string' || code === '' || code === 'Empty') return fallback;
  statusCodes ??= loadXdsProtos().root.lookupEnum('envoy.type.v3.StatusCode').values;
  return statusCodes[code] ?? fallback;
}

function headerEdits(list: D[] | undefined): Array<readonly [string, string, boolean]> {
  return (list ?? []).map((h) => {
    const append = h.append_action ? h.append_action === 'APPEND_IF_EXISTS_OR_ADD' : h.append?.value === true;
    return [String(h.header?.key ?? '').toLowerCase(), String(h.header?.value ?? (h.header?.raw_value ? Buffer.from(h.header.raw_value).toString() : '')), append] as const;
  });
}

export function decisionOf(resp: D): { decision: CachedDecision; hints: CacheHints | undefined } {
  const code = Number(resp.status?.code ?? 0);
  const meta = plainStruct(resp.dynamic_metadata);
  const mixer = meta[MIXER_CACHE_NAMESPACE] as Record<string, unknown> | undefined;
  const hints = mixer
    ? {
      validDurationMs: Number(mixer.valid_duration_ms ?? 0),
      validUseCount: Number(mixer.valid_use_count ?? 0),
      referencedAttributes: Array.isArray(mixer.referenced_attributes) ? mixer.referenced_attributes.map(String) : [],
    }
    : undefined;
  if (code === 0) {
    const ok = resp.ok_response ?? {};
    return { decision: { allowed: true, status: 200, body: '', headers: headerEdits(ok.headers), headersToRemove: (ok.headers_to_remove ?? []).map((h: string) => h.toLowerCase()), responseHeaders: headerEdits(ok.response_headers_to_add) }, hints };
  }
  const denied = resp.denied_response ?? {};
  return { decision: { allowed: false, status: httpStatusOf(denied.status?.code, 403), body: String(denied.body ?? ''), headers: headerEdits(denied.headers), headersToRemove: [], responseHeaders: [] }, hints };
}

export function socketAddress(ip: string, port: number): D {
  return { socket_address: { address: ip, port_value: port } };
}

export function localPrincipal(socket: Socket): string {
  const local = (socket as { getCertificate?: () => { subjectaltname?: string } | null }).getCertificate?.();
  const m = /URI:([^,\s]+)/.exec(local?.subjectaltname ?? '');
  return m ? m[1] : '';
}

export function metadataEnabled(m: D, path: string): (req: object) => boolean {
  if (!m.filter) throw configError(`${path}.filter`, 'must not be empty');
  const keys: string[] = (m.path ?? []).map((x: D) => String(x.key));
  const match = valueMatcher(m.value, `${path}.value`);
  const invert = m.invert === true;
  return (req) => {
    let v: unknown = filterMetadata(req, m.filter);
    for (const k of keys) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
    return match(v) !== invert;
  };
}

/** The names connectionAttribute() answers. */
export const CONNECTION_ATTRIBUTES: ReadonlySet<string> = new Set(['source.ip', 'source.port', 'source.principal', 'source.namespace', 'destination.ip', 'destination.port', 'connection.requested_server_name', 'connection.mtls']);

/** An attribute of the connection alone, as Mixer's vocabulary names it (CONNECTION_ATTRIBUTES); undefined when absent. */
export function connectionAttribute(conn: ConnectionFacts, name: string): string | undefined {
  switch (name) {
    case 'source.ip': return conn.directRemoteIp;
    case 'source.port': return String(conn.directRemotePort);
    case 'source.principal': return conn.principal || undefined;
    case 'source.namespace': return /\/ns\/([^/]+)\//.exec(conn.principal)?.[1];
    case 'destination.ip': return conn.destinationIp;
    case 'destination.port': return String(conn.destinationPort);
    case 'connection.requested_server_name': return conn.sni || undefined;
    case 'connection.mtls': return String(conn.authenticated);
    default: return undefined;
  }
}
