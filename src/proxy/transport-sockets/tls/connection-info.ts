// What the HTTP layer may know about a downstream TLS connection: the peer's
// identity (URI SANs such as SPIFFE ids), its certificate hash and subject,
// and our own URI SANs, computed once per connection on first use (XFCC,
// access logs, RBAC).

import { createHash } from 'node:crypto';
import { TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import type { PeerCertificate } from 'node:tls';
import { parseSubjectAltNames } from '../../secrets/secret.ts';

export interface TlsConnectionInfo {
  /** False when the peer presented no certificate. */
  readonly peerCertificatePresented: boolean;
  readonly uriSanPeerCertificate: readonly string[];
  readonly dnsSanPeerCertificate: readonly string[];
  /** RFC 2253 subject of the peer certificate (`CN=a,O=b`). */
  readonly subjectPeerCertificate: string;
  /** Hex SHA-256 of the peer certificate's DER. */
  readonly sha256PeerCertificateDigest: string;
  /** The peer certificate as PEM (XFCC `Cert=`). */
  readonly pemPeerCertificate: string;
  readonly uriSanLocalCertificate: readonly string[];
  readonly alpn: string;
  readonly sni: string;
}

const cache = new WeakMap<Socket, TlsConnectionInfo>();

function subjectOf(cert: PeerCertificate): string {
  const s = cert.subject as unknown as Record<string, string | string[]> | undefined;
  if (!s) return '';
  // RFC 2253 lists the most specific attribute first.
  return Object.entries(s)
    .reverse()
    .flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${k}=${x.replace(/([,+"\\<>;])/g, '\\$1')}`))
    .join(',');
}

/** TLS facts of a downstream connection, or undefined for plaintext. */
export function tlsConnectionInfo(socket: Socket | null | undefined): TlsConnectionInfo | undefined {
  if (!socket || !(socket instanceof TLSSocket)) return undefined;
  let info = cache.get(socket);
  if (info) return info;
  const peer = socket.getPeerCertificate();
  const presented = peer !== null && peer !== undefined && Object.keys(peer).length > 0 && peer.raw !== undefined;
  const peerSans = presented ? parseSubjectAltNames(peer.subjectaltname) : [];
  const local = socket.getCertificate() as PeerCertificate | null;
  const localSans = local && 'subjectaltname' in local ? parseSubjectAltNames(local.subjectaltname) : [];
  info = {
    peerCertificatePresented: presented,
    uriSanPeerCertificate: peerSans.filter(([t]) => t === 'URI').map(([, v]) => v),
    dnsSanPeerCertificate: peerSans.filter(([t]) => t === 'DNS').map(([, v]) => v),
    subjectPeerCertificate: presented ? subjectOf(peer) : '',
    sha256PeerCertificateDigest: presented ? createHash('sha256').update(peer.raw).digest('hex') : '',
    pemPeerCertificate: presented ? `-----BEGIN CERTIFICATE-----\n${peer.raw.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n` : '',
    uriSanLocalCertificate: localSans.filter(([t]) => t === 'URI').map(([, v]) => v),
    alpn: socket.alpnProtocol || '',
    sni: (socket as TLSSocket & { servername?: string }).servername || '',
  };
  cache.set(socket, info);
  return info;
}
