// Transport sockets (Envoy's envoy.transport_sockets.*): what sits between
// the TCP connection and the network filter (downstream) or the connection
// pool (upstream). Plaintext has no transport socket object at all; TLS is
// the one implementation (tls/).

import type { Socket } from 'node:net';
import type { TlsStats } from './tls/tls-stats.ts';

/** Built once per filter chain config. */
export interface DownstreamTransportSocket {
  /**
   * Runs the server side of the handshake on an accepted connection. `done`
   * receives the socket the network filter reads (a TLSSocket), or
   * undefined when the connection was refused (it is destroyed already).
   * `clientAlpn` is what the ClientHello offered, when tls_inspector saw it.
   */
  accept(socket: Socket, stats: TlsStats, done: (socket: Socket | undefined) => void, clientAlpn?: readonly string[]): void;
}

/** Built once per cluster config. */
export interface UpstreamTransportSocket {
  /**
   * Opens a connection to host:port (a TLSSocket). It emits 'secureConnect'
   * once the handshake and peer verification passed, or 'error' with
   * `transportFailureReason` set when they failed.
   */
  connect(host: string, port: number, stats: TlsStats): Socket;
  /** ALPN protocols offered (alpn_protocols); the pool may read `socket.alpnProtocol`. */
  readonly alpn: readonly string[];
}

/** What a transport socket extension makes from its config; one side or the other. */
export interface TransportSocketFactory {
  readonly downstream?: DownstreamTransportSocket;
  readonly upstream?: UpstreamTransportSocket;
}

/** Set on an upstream connection error caused by TLS (Envoy's %UPSTREAM_TRANSPORT_FAILURE_REASON%). */
export interface TransportFailure extends Error {
  transportFailureReason?: string;
}

/** One transport_socket_matches entry: endpoints whose `envoy.transport_socket_match` metadata has every `match` pair use `socket` (undefined: plaintext). */
export interface TransportSocketMatch {
  readonly name: string;
  readonly match: Readonly<Record<string, string>>;
  readonly socket: UpstreamTransportSocket | undefined;
}

/** The first entry matching an endpoint's metadata, as Envoy picks it; undefined when none does. */
export function matchTransportSocket(matches: readonly TransportSocketMatch[], metadata: Readonly<Record<string, string>> | undefined): TransportSocketMatch | undefined {
  for (const m of matches) {
    let ok = true;
    for (const k in m.match) {
      if (metadata?.[k] !== m.match[k]) {
        ok = false;
        break;
      }
    }
    if (ok) return m;
  }
  return undefined;
}
