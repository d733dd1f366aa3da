// What a listener does with an accepted connection, in Envoy's order: run
// the listener filters (peeking, with listener_filters_timeout), hand the
// connection to the listener of its original destination when
// use_original_dst asks for it, pick the filter chain (filter-chain-match),
// run the chain's transport socket (TLS handshake) and give the result to
// the chain's network filter. It is the listener's NetworkFilterFactory, so
// the listener manager's swap and drain logic covers every chain.

import type { Socket } from 'node:net';
import type { FilterChainMatch } from '../../filter-chain-match.ts';
import { selectFilterChain } from '../../filter-chain-match.ts';
import type { NetworkFilterFactory } from '../../registry.ts';
import type { Counter, Gauge, StatsStore } from '../../stats.ts';
import type { DownstreamTransportSocket } from '../../transport-sockets/transport-socket.ts';
import type { TlsStats } from '../../transport-sockets/tls/tls-stats.ts';
import { tlsStats } from '../../transport-sockets/tls/tls-stats.ts';
import type { AcceptedConnection, ListenerFilterFactory, ListenerHandoff } from './listener-filter.ts';
import { restoredDestination } from './listener-filter.ts';

/** One decoded filter chain: its match, optional transport socket and terminal network filter. */
export interface FilterChain {
  readonly name: string;
  readonly match: FilterChainMatch;
  readonly transportSocket: DownstreamTransportSocket | undefined;
  readonly filter: NetworkFilterFactory;
}

export interface ListenerConnectionSettings {
  readonly address: string;
  readonly port: number;
  /** Listener stat_prefix; `<address>_<port>` when empty. */
  readonly statPrefix: string;
  readonly listenerFilters: readonly ListenerFilterFactory[];
  /** listener_filters_timeout (Envoy: 15s; 0 disables). */
  readonly listenerFiltersTimeoutMs: number;
  readonly continueOnListenerFiltersTimeout: boolean;
  readonly useOriginalDst: boolean;
  readonly chains: readonly FilterChain[];
  readonly defaultChain: FilterChain | undefined;
}

interface ListenerStats {
  readonly no_filter_chain_match: Counter;
  readonly downstream_pre_cx_timeout: Counter;
  readonly downstream_pre_cx_active: Gauge;
  readonly tls: Map<FilterChain, TlsStats>;
  readonly prefix: string;
}

const EMPTY = Buffer.alloc(0);

/** Per-connection state while listener filters peek. */
class PendingConnection {
  readonly handler: ListenerConnectionHandler;
  readonly conn: AcceptedConnection;
  private index = 0;
  private waiting = false;
  private peeked: Buffer = EMPTY;
  private timer: NodeJS.Timeout | undefined;
  private done = false;
  private readonly onData = (): void => {
    let chunk: Buffer | null;
    while (!this.done && (chunk = this.conn.socket.read() as Buffer | null) !== null) this.data(chunk);
  };
  private readonly onEnd = (): void => this.abort();

  constructor(handler: ListenerConnectionHandler, conn: AcceptedConnection) {
    this.handler = handler;
    this.conn = conn;
  }

  start(timeoutMs: number): void {
    if (timeoutMs > 0) this.timer = setTimeout(() => this.timeout(), timeoutMs);
    this.conn.socket.once('close', this.onEnd);
    this.run();
  }

  private run(): void {
    const filters = this.handler.settings.listenerFilters;
    while (this.index < filters.length) {
      const f = filters[this.index];
      if (!this.waiting) {
        if (f.onAccept(this.conn) === 'continue' || f.maxReadBytes === 0) {
          this.index++;
          continue;
        }
        this.waiting = true;
        if (this.peeked.length > 0 && f.onData(this.conn, this.peeked) === 'continue') {
          this.waiting = false;
          this.index++;
          continue;
        }
      }
      this.read();
      return;
    }
    this.finish();
  }

  private read(): void {
    const s = this.conn.socket;
    if (s.listenerCount('readable') === 0) {
      // 'readable' + read() rather than 'data': the socket never enters flowing
      // mode, so once the listener is gone it is back to its initial state and
      // the next owner (network filter, TLS, another listener) starts it itself.
      s.on('readable', this.onData);
      s.once('end', this.onEnd);
    }
  }

  private data(chunk: Buffer): void {
    this.peeked = this.peeked.length === 0 ? chunk : Buffer.concat([this.peeked, chunk]);
    const f = this.handler.settings.listenerFilters[this.index];
    if (f.onData(this.conn, this.peeked) === 'continue' || this.peeked.length >= f.maxReadBytes) {
      this.waiting = false;
      this.index++;
      this.run();
    }
  }

  private stopReading(): void {
    const s = this.conn.socket;
    clearTimeout(this.timer);
    s.removeListener('readable', this.onData);
    s.removeListener('end', this.onEnd);
    s.removeListener('close', this.onEnd);
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.stopReading();
    // Nothing was consumed: the transport socket or network filter reads the same bytes.
    if (this.peeked.length > 0) this.conn.socket.unshift(this.peeked);
    this.handler.endPending(this);
    this.handler.dispatch(this.conn);
  }

  private timeout(): void {
    if (this.done) return;
    this.handler.stats().downstream_pre_cx_timeout.value++;
    if (this.handler.settings.continueOnListenerFiltersTimeout) this.finish();
    else this.abort();
  }

  /** The peer went away (or the listener closes) before the filters decided. */
  abort(): void {
    if (this.done) return;
    this.done = true;
    this.stopReading();
    this.handler.endPending(this);
    this.conn.socket.destroy();
  }
}

export class ListenerConnectionHandler implements NetworkFilterFactory {
  readonly settings: ListenerConnectionSettings;
  private readonly store: StatsStore;
  private readonly handoff: ListenerHandoff | undefined;
  private readonly pending = new Set<PendingConnection>();
  private listenerStats: ListenerStats | undefined;

  constructor(settings: ListenerConnectionSettings, store: StatsStore, handoff: ListenerHandoff | undefined) {
    this.settings = settings;
    this.store = store;
    this.handoff = handoff;
  }

  private get allChains(): FilterChain[] {
    return this.settings.defaultChain ? [...this.settings.chains, this.settings.defaultChain] : [...this.settings.chains];
  }

  get rdsNames(): readonly string[] {
    return [...new Set(this.allChains.flatMap((c) => c.filter.rdsNames))];
  }

  get activeConnections(): number {
    let n = this.pending.size;
    for (const c of this.allChains) n += c.filter.activeConnections;
    return n;
  }

  /** Stats under `listener.<address>_<port>.`; the port is known once a connection arrived (port 0 binds). */
  stats(socket?: Socket): ListenerStats {
    if (!this.listenerStats) {
      const s = this.settings;
      const port = s.port !== 0 ? s.port : (socket?.localPort ?? 0);
      const prefix = this.store.scope('listener', s.statPrefix || `${s.address}_${port}`);
      this.listenerStats = {
        prefix,
        no_filter_chain_match: this.store.counter(`${prefix}no_filter_chain_match`),
        downstream_pre_cx_timeout: this.store.counter(`${prefix}downstream_pre_cx_timeout`),
        downstream_pre_cx_active: this.store.gauge(`${prefix}downstream_pre_cx_active`),
        tls: new Map(),
      };
    }
    return this.listenerStats;
  }

  onConnection(socket: Socket): void {
    const stats = this.stats(socket);
    const restored = restoredDestination(socket);
    const conn: AcceptedConnection = {
      socket,
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      localAddress: restored?.address ?? socket.localAddress ?? '',
      localPort: restored?.port ?? socket.localPort ?? 0,
      localAddressRestored: restored !== undefined,
      transportProtocol: '',
      serverName: '',
      applicationProtocols: [],
    };
    if (this.settings.listenerFilters.length === 0) {
      this.dispatch(conn);
      return;
    }
    const p = new PendingConnection(this, conn);
    this.pending.add(p);
    stats.downstream_pre_cx_active.value++;
    p.start(this.settings.listenerFiltersTimeoutMs);
  }

  endPending(p: PendingConnection): void {
    if (this.pending.delete(p)) this.stats().downstream_pre_cx_active.value--;
  }

  /** After the listener filters: hand off, or choose a chain and run its transport socket. */
  dispatch(conn: AcceptedConnection): void {
    const socket = conn.socket;
    if (this.settings.useOriginalDst && conn.localAddressRestored && this.handoff?.handoff(socket, conn.localAddress, conn.localPort, this)) return;
    const chain = selectFilterChain(this.settings.chains, conn) ?? this.settings.defaultChain;
    const stats = this.stats();
    if (!chain) {
      stats.no_filter_chain_match.value++;
      socket.destroy();
      return;
    }
    const ts = chain.transportSocket;
    if (!ts) {
      chain.filter.onConnection(socket);
      return;
    }
    let tls = stats.tls.get(chain);
    if (!tls) stats.tls.set(chain, (tls = tlsStats(this.store, stats.prefix, 'downstream')));
    ts.accept(
      socket,
      tls,
      (secured) => {
        if (secured) chain.filter.onConnection(secured);
      },
      conn.transportProtocol === 'tls' ? conn.applicationProtocols : undefined,
    );
  }

  drain(): void {
    for (const c of this.allChains) c.filter.drain();
  }

  close(): void {
    for (const p of [...this.pending]) p.abort();
    for (const c of this.allChains) c.filter.close();
  }
}
