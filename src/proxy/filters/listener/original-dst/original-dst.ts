// envoy.filters.listener.original_dst: restores the destination a connection
// had before iptables REDIRECT sent it to 15001/15006 (SO_ORIGINAL_DST).
// Node cannot call getsockopt(SO_ORIGINAL_DST) without a native addon, so
// the resolver is pluggable: the default falls back to the socket's local
// address (right whenever traffic reaches the proxy without redirection,
// e.g. on loopback), and the mesh runtime installs a native or FFI resolver
// with setOriginalDstResolver().

import type { Socket } from 'node:net';
import type { ListenerFilterExtension } from '../../../registry.ts';
import type { AcceptedConnection, ListenerFilterFactory, ListenerFilterStatus } from '../listener-filter.ts';
import { setRestoredDestination } from '../listener-filter.ts';

/** Reads the pre-NAT destination of an accepted socket; undefined when unknown. */
export type OriginalDstResolver = (socket: Socket) => { address: string; port: number } | undefined;

/** The fallback: the local address the connection arrived on. */
export const localAddressResolver: OriginalDstResolver = (socket) => (socket.localAddress && socket.localPort ? { address: socket.localAddress, port: socket.localPort } : undefined);

let resolver: OriginalDstResolver = localAddressResolver;

/** Installs the SO_ORIGINAL_DST reader (process-wide, like the socket option it wraps). */
export function setOriginalDstResolver(r: OriginalDstResolver | undefined): void {
  resolver = r ?? localAddressResolver;
}

export const originalDstFilter: ListenerFilterFactory = {
  name: 'envoy.filters.listener.original_dst',
  maxReadBytes: 0,
  onAccept(conn: AcceptedConnection): ListenerFilterStatus {
    const dst = resolver(conn.socket);
    if (dst) {
      conn.localAddress = dst.address.startsWith('::ffff:') ? dst.address.slice(7) : dst.address;
      conn.localPort = dst.port;
      conn.localAddressRestored = true;
      setRestoredDestination(conn.socket, conn.localAddress, dst.port);
    }
    return 'continue';
  },
  onData: () => 'continue',
};

export const originalDstExtension: ListenerFilterExtension = {
  typeUrl: 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst',
  category: 'listener',
  create: () => originalDstFilter,
};
