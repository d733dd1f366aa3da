// Listeners by name with atomic swaps. A listener's net.Server stays bound
// across updates that keep its address; each accepted connection goes to the
// filter of the config current at accept time and keeps it, so in-flight
// requests finish on the config they started with. Replaced or removed
// configs drain: HTTP answers `connection: close`, then drain_timeout closes.

import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { once } from 'node:events';
import { isDeepStrictEqual } from 'node:util';
import { MeshError } from '../common/index.ts';
import type { ListenerConfig } from './config/listener-config.ts';
import { ProxyErrorCode } from './errors.ts';
import type { StatsStore } from './stats.ts';

export interface ActiveListener {
  readonly config: ListenerConfig;
  readonly version: string | undefined;
  readonly lastUpdated: Date;
  /** The bound port (differs from config.port when that is 0). */
  readonly boundPort: number;
}

interface Entry {
  info: ActiveListener;
  server: Server;
}

export class ListenerManager {
  private listeners = new Map<string, Entry>();
  private readonly store: StatsStore;

  constructor(store: StatsStore) {
    this.store = store;
  }

  all(): readonly ActiveListener[] {
    return [...this.listeners.values()].map((e) => e.info);
  }

  get(name: string): ActiveListener | undefined {
    return this.listeners.get(name)?.info;
  }

  rdsNames(): string[] {
    return [...new Set([...this.listeners.values()].flatMap((e) => e.info.config.filter.rdsNames))];
  }

  /**
   * Replaces the dynamic (or static) listeners with `configs`. Binds new
   * addresses first; if any bind fails nothing changes and the error says why.
   */
  async update(configs: readonly ListenerConfig[], version: string | undefined, isStatic = false): Promise<void> {
    const next = new Map<string, Entry>();
    for (const [name, e] of this.listeners) if ((e.info.version === undefined) !== isStatic) next.set(name, e);
    const opened: Entry[] = [];
    const retired: Entry[] = [];
    const counter = (n: string): void => void this.store.counter(`listener_manager.${n}`).value++;
    try {
      for (const config of configs) {
        const old = this.listeners.get(config.name);
        if (old && isDeepStrictEqual(old.info.config.raw, config.raw)) {
          // Unchanged: keep the serving filter, drop the freshly built one.
          config.filter.close();
          next.set(config.name, { ...old, info: { ...old.info, version } });
          continue;
        }
        if (old && old.info.config.address === config.address && (config.port === 0 || config.port === old.info.boundPort) && old.info.config.bindToPort === config.bindToPort) {
          // Same address: swap the filter in place; the socket never closes.
          const entry: Entry = { server: old.server, info: { config, version, lastUpdated: new Date(), boundPort: old.info.boundPort } };
          next.set(config.name, entry);
          retired.push(old);
          counter('listener_modified');
          continue;
        }
        const entry = await this.bind(config, version);
        opened.push(entry);
        next.set(config.name, entry);
        if (old) {
          retired.push(old);
          old.server.close();
          counter('listener_modified');
        } else counter('listener_added');
      }
    } catch (err) {
      for (const e of opened) e.server.close();
      throw err;
    }
    for (const [name, e] of this.listeners) {
      if (!next.has(name)) {
        e.server.close();
        retired.push(e);
        counter('listener_removed');
      }
    }
    // The swap: new connections see `next` from here on.
    for (const [name, e] of next) {
      const entry = e;
      entry.server.removeAllListeners('connection');
      entry.server.on('connection', this.acceptor(entry, name));
    }
    this.listeners = next;
    for (const e of retired) if (![...next.values()].some((n) => n.info.config.filter === e.info.config.filter)) e.info.config.filter.drain();
    this.store.gauge('listener_manager.total_listeners_active').value = next.size;
  }

  private acceptor(entry: Entry, _name: string): (socket: import('node:net').Socket) => void {
    const filter = entry.info.config.filter;
    const prefix = this.store.scope('listener', `${entry.info.config.address}_${entry.info.boundPort}`);
    const total = this.store.counter(`${prefix}downstream_cx_total`);
    const active = this.store.gauge(`${prefix}downstream_cx_active`);
    return (socket) => {
      total.value++;
      active.value++;
      socket.once('close', () => active.value--);
      filter.onConnection(socket);
    };
  }

  /**
   * use_original_dst: gives `socket` to the listener for address:port (an
   * exact address first, then 0.0.0.0 / ::), never back to `from`. Its
   * acceptor counts the connection and runs its listener filters and chains.
   */
  handoff(socket: import('node:net').Socket, address: string, port: number, from: object): boolean {
    let wildcard: Entry | undefined;
    for (const e of this.listeners.values()) {
      const c = e.info.config;
      if (c.filter === from || (c.port !== port && e.info.boundPort !== port)) continue;
      if (c.address === address) return e.server.emit('connection', socket);
      if (!wildcard && (c.address === '0.0.0.0' || c.address === '::')) wildcard = e;
    }
    return wildcard ? wildcard.server.emit('connection', socket) : false;
  }

  private async bind(config: ListenerConfig, version: string | undefined): Promise<Entry> {
    // Half-open: tcp_proxy must pass a client's FIN upstream and still send the reply.
    const server = createServer({ noDelay: true, allowHalfOpen: true });
    // bind_to_port: false (Istio's per-port outbound listeners) only receives hand-offs.
    if (config.bindToPort === false) return { server, info: { config, version, lastUpdated: new Date(), boundPort: config.port } };
    server.listen({ host: config.address, port: config.port, backlog: 1024 });
    try {
      await Promise.race([once(server, 'listening'), once(server, 'error').then(([e]) => Promise.reject(e as Error))]);
    } catch (err) {
      throw new MeshError(ProxyErrorCode.BIND, `Listener "${config.name}": cannot bind ${config.address}:${config.port}: ${(err as Error).message}`, { cause: err });
    }
    const port = (server.address() as { port: number }).port;
    return { server, info: { config, version, lastUpdated: new Date(), boundPort: port } };
  }

  /**
   * Admin /drain_listeners: stop accepting (the listening sockets close) and
   * drain open connections (graceful) or close them now. With inboundOnly,
   * only listeners whose traffic_direction is INBOUND.
   */
  drainListeners(options: { graceful: boolean; inboundOnly: boolean }): void {
    for (const e of this.listeners.values()) {
      if (options.inboundOnly && (e.info.config.raw as { traffic_direction?: string }).traffic_direction !== 'INBOUND') continue;
      e.server.close();
      this.store.counter('listener_manager.listener_stopped').value++;
      if (options.graceful) e.info.config.filter.drain();
      else e.info.config.filter.close();
    }
  }

  async close(): Promise<void> {
    const closing = [...this.listeners.values()].map((e) => {
      e.info.config.filter.close();
      return new Promise<void>((r) => e.server.close(() => r()));
    });
    this.listeners = new Map();
    await Promise.all(closing);
  }
}
