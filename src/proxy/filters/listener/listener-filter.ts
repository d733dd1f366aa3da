// Listener filters (Envoy's envoy.filters.listener.*) run on an accepted
// connection before a filter chain is chosen. They peek at the first bytes
// without consuming them (tls_inspector, http_inspector) or read socket
// facts (original_dst), and record what they learn on the AcceptedConnection
// that filter-chain matching then reads.

import type { Socket } from 'node:net';

/** One accepted connection while listener filters run; filter chain matching reads it. */
export interface AcceptedConnection {
  readonly socket: Socket;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** The destination: the socket's local address, or the original one original_dst restored. */
  localAddress: string;
  localPort: number;
  localAddressRestored: boolean;
  /** 'tls' (tls_inspector) or '' (matched as raw_buffer). */
  transportProtocol: string;
  /** SNI from the ClientHello, lowercase; '' when none. */
  serverName: string;
  /** ALPN offered in the ClientHello, or what http_inspector found ('http/1.1', 'http/1.0', 'h2c'). */
  applicationProtocols: readonly string[];
}

export type ListenerFilterStatus = 'continue' | 'stop';

/** Built once per listener config and shared by its connections: keep per-connection facts on the AcceptedConnection. */
export interface ListenerFilterFactory {
  readonly name: string;
  /** How many bytes this filter may need to peek; 0 when onAccept decides alone. */
  readonly maxReadBytes: number;
  onAccept(conn: AcceptedConnection): ListenerFilterStatus;
  /** Every byte peeked so far (none consumed); 'continue' once decided. Called again as more arrives. */
  onData(conn: AcceptedConnection, peeked: Buffer): ListenerFilterStatus;
  /** The peer closed or `maxReadBytes` were peeked without a decision. */
  onGiveUp?(conn: AcceptedConnection): void;
}

/** Finds the listener for a restored destination (use_original_dst); the proxy's listener manager implements it. */
export interface ListenerHandoff {
  /** Gives `socket` to the listener for address:port other than `from`; false when there is none. */
  handoff(socket: Socket, address: string, port: number, from: object): boolean;
}

/** The destination restored by original_dst travels with the socket across a hand-off. */
const restored = new WeakMap<Socket, { address: string; port: number }>();

export function setRestoredDestination(socket: Socket, address: string, port: number): void {
  restored.set(socket, { address, port });
}

export function restoredDestination(socket: Socket): { address: string; port: number } | undefined {
  return restored.get(socket);
}

/**
 * A downstream connection's destination for ORIGINAL_DST clusters: what
 * original_dst restored (on the socket or, under TLS, its raw parent).
 * Undefined when nothing was restored: the socket's own local address is the
 * proxy itself, and connecting there would loop.
 */
export function originalDestinationOf(socket: Socket): { address: string; port: number } | undefined {
  const parent = (socket as unknown as { _parent?: Socket })._parent;
  return restored.get(socket) ?? (parent ? restored.get(parent) : undefined);
}
