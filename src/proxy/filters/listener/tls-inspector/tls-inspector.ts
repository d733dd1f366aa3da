// envoy.filters.listener.tls_inspector: peeks at the first bytes; a TLS
// ClientHello sets transport protocol `tls`, the SNI and the offered ALPN
// for filter chain matching. Nothing is consumed: the TLS transport socket
// (or a passthrough tcp_proxy) reads the same bytes afterwards.

import type { ListenerFilterExtension } from '../../../registry.ts';
import type { AcceptedConnection, ListenerFilterFactory, ListenerFilterStatus } from '../listener-filter.ts';

/** Envoy's limit on a ClientHello (max_client_hello_size). */
const MAX_CLIENT_HELLO = 64 * 1024;

export interface ClientHello {
  readonly serverName: string;
  readonly alpn: readonly string[];
}

/**
 * Parses a ClientHello from the start of a byte stream. Returns the hello,
 * 'not_tls', or 'need_more' while the message is incomplete. Handshake
 * messages may span several records; their payloads are joined.
 */
export function parseClientHello(buf: Buffer): ClientHello | 'not_tls' | 'need_more' {
  if (buf.length < 1) return 'need_more';
  if (buf[0] !== 0x16) return 'not_tls';
  if (buf.length < 3) return 'need_more';
  if (buf[1] !== 0x03 || buf[2] > 0x04) return 'not_tls';
  // Join handshake record payloads until the ClientHello is complete.
  const parts: Buffer[] = [];
  let have = 0;
  let off = 0;
  let need = -1;
  while (need < 0 || have < need) {
    if (off + 5 > buf.length) return 'need_more';
    if (buf[off] !== 0x16) return 'not_tls';
    const len = buf.readUInt16BE(off + 3);
    if (off + 5 + len > buf.length) {
      parts.push(buf.subarray(off + 5));
      have += buf.length - off - 5;
      if (need < 0 && have >= 4) need = 4 + Buffer.concat(parts).readUIntBE(1, 3);
      if (need >= 0 && have >= need) break;
      return 'need_more';
    }
    parts.push(buf.subarray(off + 5, off + 5 + len));
    have += len;
    off += 5 + len;
    if (need < 0 && have >= 4) {
      const head = parts.length === 1 ? parts[0] : Buffer.concat(parts);
      if (head[0] !== 0x01) return 'not_tls';
      need = 4 + head.readUIntBE(1, 3);
    }
  }
  const msg = parts.length === 1 ? parts[0] : Buffer.concat(parts);
  return parseHelloBody(msg.subarray(4, need)) ?? 'not_tls';
}

function parseHelloBody(b: Buffer): ClientHello | undefined {
  let p = 2 + 32; // client_version, random
  if (p + 1 > b.length) return undefined;
  p += 1 + b[p]; // session_id
  if (p + 2 > b.length) return undefined;
  p += 2 + b.readUInt16BE(p); // cipher_suites
  if (p + 1 > b.length) return undefined;
  p += 1 + b[p]; // compression_methods
  let serverName = '';
  const alpn: string[] = [];
  if (p + 2 > b.length) return { serverName, alpn };
  const end = Math.min(b.length, p + 2 + b.readUInt16BE(p));
  p += 2;
  while (p + 4 <= end) {
    const type = b.readUInt16BE(p);
    const len = b.readUInt16BE(p + 2);
    const ext = b.subarray(p + 4, Math.min(end, p + 4 + len));
    p += 4 + len;
    if (type === 0 && ext.length >= 5) {
      // server_name list: type 0 (host_name), then the name.
      let q = 2;
      while (q + 3 <= ext.length) {
        const nameLen = ext.readUInt16BE(q + 1);
        if (ext[q] === 0) {
          serverName = ext.toString('latin1', q + 3, q + 3 + nameLen).toLowerCase();
          break;
        }
        q += 3 + nameLen;
      }
    } else if (type === 16 && ext.length >= 2) {
      let q = 2;
      while (q < ext.length) {
        const l = ext[q];
        alpn.push(ext.toString('latin1', q + 1, q + 1 + l));
        q += 1 + l;
      }
    }
  }
  return { serverName, alpn };
}

export const tlsInspectorFilter: ListenerFilterFactory = {
  name: 'envoy.filters.listener.tls_inspector',
  maxReadBytes: MAX_CLIENT_HELLO,
  onAccept(): ListenerFilterStatus {
    return 'stop';
  },
  onData(conn: AcceptedConnection, peeked: Buffer): ListenerFilterStatus {
    const hello = parseClientHello(peeked);
    if (hello === 'need_more') return 'stop';
    if (hello !== 'not_tls') {
      conn.transportProtocol = 'tls';
      conn.serverName = hello.serverName;
      conn.applicationProtocols = hello.alpn;
    }
    return 'continue';
  },
};

export const tlsInspectorExtension: ListenerFilterExtension = {
  typeUrl: 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
  category: 'listener',
  create: () => tlsInspectorFilter,
};
