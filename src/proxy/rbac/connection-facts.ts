// What RBAC and ext_authz know about a downstream connection: addresses
// (the destination as original_dst restored it), SNI and the peer's
// authenticated identity from its certificate (URI SANs such as SPIFFE ids,
// else DNS SANs, else the subject, as Envoy's `authenticated` principal).

import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { restoredDestination } from '../filters/listener/listener-filter.ts';
import { tlsConnectionInfo } from '../transport-sockets/tls/connection-info.ts';

export interface ConnectionFacts {
  readonly directRemoteIp: string;
  readonly directRemotePort: number;
  readonly destinationIp: string;
  readonly destinationPort: number;
  readonly sni: string;
  /** True when the peer presented a verified certificate. */
  readonly authenticated: boolean;
  /** Names the peer is known by, in Envoy's order: URI SANs, else DNS SANs, else the subject. */
  readonly principals: readonly string[];
  /** The first URI SAN (`spiffe://td/ns/x/sa/y`), or ''. */
  readonly principal: string;
}

const cache = new WeakMap<Socket, ConnectionFacts>();

function unmapped(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

/** Facts of a downstream connection, computed once per socket. */
export function connectionFacts(socket: Socket): ConnectionFacts {
  let facts = cache.get(socket);
  if (facts) return facts;
  const raw = socket instanceof TLSSocket ? ((socket as unknown as { _parent?: Socket })._parent ?? socket) : socket;
  const restored = restoredDestination(raw) ?? restoredDestination(socket);
  const tls = tlsConnectionInfo(socket);
  // The TLS transport socket refuses unverified certificates (tls-transport-socket.ts verify()), so a presented one is verified.
  const authenticated = tls !== undefined && tls.peerCertificatePresented;
  let principals: readonly string[] = [];
  if (authenticated) {
    if (tls.uriSanPeerCertificate.length > 0) principals = tls.uriSanPeerCertificate;
    else if (tls.dnsSanPeerCertificate.length > 0) principals = tls.dnsSanPeerCertificate;
    else principals = [tls.subjectPeerCertificate];
  }
  facts = {
    directRemoteIp: unmapped(raw.remoteAddress ?? socket.remoteAddress ?? ''),
    directRemotePort: raw.remotePort ?? socket.remotePort ?? 0,
    destinationIp: unmapped(restored?.address ?? raw.localAddress ?? socket.localAddress ?? ''),
    destinationPort: restored?.port ?? raw.localPort ?? socket.localPort ?? 0,
    sni: tls?.sni ?? '',
    authenticated,
    principals,
    principal: tls?.uriSanPeerCertificate[0] ?? '',
  };
  cache.set(socket, facts);
  return facts;
}
