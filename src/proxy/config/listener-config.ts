// Listener -> ListenerConfig: its address and a ListenerConnectionHandler
// holding every filter chain (match, transport socket, terminal network
// filter) and the listener filters, all built through the extension
// registry. Building a ListenerConfig creates its factories, so a config
// that fails here never reaches the listener manager (NACK).

import { configError } from '../errors.ts';
import type { FilterChainMatch } from '../filter-chain-match.ts';
import { decodeFilterChainMatch, matchKey } from '../filter-chain-match.ts';
import type { FilterChain } from '../filters/listener/listener-connection-handler.ts';
import { ListenerConnectionHandler } from '../filters/listener/listener-connection-handler.ts';
import type { ListenerFilterFactory } from '../filters/listener/listener-filter.ts';
import { originalDstFilter } from '../filters/listener/original-dst/original-dst.ts';
import type { FactoryContext, NetworkFilterFactory } from '../registry.ts';
import type { DownstreamTransportSocket } from '../transport-sockets/transport-socket.ts';
import { decodeAny } from './proto-json.ts';
import { resolveTypedConfig } from './typed-struct.ts';
import { durationMs, socketAddress, wrapped } from './values.ts';

export interface ListenerConfig {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  /** The listener's connection handler: listener filters, then the matching chain's network filter. */
  readonly filter: NetworkFilterFactory;
  /** bind_to_port: false listeners only receive connections handed off by use_original_dst. */
  readonly bindToPort: boolean;
  /** The decoded resource, for /config_dump and change detection. */
  readonly raw: unknown;
}

type D = Record<string, any>;

const RAW_BUFFER = 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer';

function decodeTransportSocket(ts: D | null | undefined, ctx: FactoryContext, path: string): DownstreamTransportSocket | undefined {
  if (!ts) return undefined;
  if (!ts.typed_config) throw configError(`${path}.typed_config`, `transport socket "${ts.name}" needs a typed_config`);
  if (ts.typed_config.type_url === RAW_BUFFER) return undefined;
  const ext = ctx.registry.get('transport_socket', ts.typed_config.type_url, path);
  const factory = ext.create(decodeAny(ts.typed_config, `${path}.typed_config`), ctx, `${path}.typed_config`, ts.name);
  if (!factory.downstream) throw configError(`${path}.typed_config`, `${ts.typed_config.type_url} is not a downstream transport socket`);
  return factory.downstream;
}

function decodeChain(chain: D, ctx: FactoryContext, path: string, built: NetworkFilterFactory[]): FilterChain {
  const filters: D[] = chain.filters ?? [];
  if (filters.length === 0) throw configError(`${path}.filters`, 'must not be empty');
  const match: FilterChainMatch = decodeFilterChainMatch(chain.filter_chain_match, `${path}.filter_chain_match`);
  const transportSocket = decodeTransportSocket(chain.transport_socket, ctx, `${path}.transport_socket`);
  // Non-terminal filters (istio.stats) come first and pass connections on (setNext); the last one takes them over.
  const factories = filters.map((f, i) => {
    const fp = `${path}.filters[${i}]`;
    if (!f.typed_config) throw configError(`${fp}.typed_config`, `filter "${f.name}" needs a typed_config`);
    const { typeUrl, config } = resolveTypedConfig(f.typed_config, `${fp}.typed_config`);
    const ext = ctx.registry.get('network', typeUrl, fp);
    const filter = ext.create(config, ctx, `${fp}.typed_config`, f.name);
    built.push(filter);
    if (i < filters.length - 1 && !filter.setNext) throw configError(fp, `"${f.name}" is a terminal network filter and must be the last one (got ${filters.length} filters)`);
    return filter;
  });
  for (let i = factories.length - 2; i >= 0; i--) factories[i].setNext!(factories[i + 1]);
  return { name: chain.name ?? '', match, transportSocket, filter: factories[0] };
}

export function decodeListener(l: D, ctx: FactoryContext, where = 'Listener'): ListenerConfig {
  if (!l.name) throw configError(`${where}.name`, 'must not be empty');
  const path = `${where} "${l.name}"`;
  const { address, port } = socketAddress(l.address, `${path}.address`);
  const built: NetworkFilterFactory[] = [];
  if (l.traffic_direction && l.traffic_direction !== 'UNSPECIFIED') ctx = { ...ctx, trafficDirection: l.traffic_direction };
  try {
    const chains: FilterChain[] = (l.filter_chains ?? []).map((c: D, i: number) => decodeChain(c, ctx, `${path}.filter_chains[${i}]`, built));
    const seen = new Map<string, number>();
    chains.forEach((c, i) => {
      const key = matchKey(c.match);
      const other = seen.get(key);
      if (other !== undefined) throw configError(`${path}.filter_chains[${i}].filter_chain_match`, `multiple filter chains with the same matching rules are defined (same as filter_chains[${other}])`);
      seen.set(key, i);
    });
    const defaultChain = l.default_filter_chain ? decodeChain(l.default_filter_chain, ctx, `${path}.default_filter_chain`, built) : undefined;
    if (chains.length === 0 && !defaultChain) throw configError(`${path}.filter_chains`, 'no filter chain (need filter_chains or a default_filter_chain)');
    const listenerFilters: ListenerFilterFactory[] = (l.listener_filters ?? []).map((f: D, i: number) => {
      const p = `${path}.listener_filters[${i}]`;
      if (f.config_type !== 'typed_config' || !f.typed_config) throw configError(`${p}.typed_config`, `listener filter "${f.name}" needs a typed_config`);
      return ctx.registry.get('listener', f.typed_config.type_url, p).create(decodeAny(f.typed_config, `${p}.typed_config`), ctx, `${p}.typed_config`, f.name);
    });
    // Envoy adds the original_dst listener filter itself when use_original_dst is set (Istio's virtualOutbound lists none).
    if (wrapped(l.use_original_dst, false) && !listenerFilters.includes(originalDstFilter)) listenerFilters.unshift(originalDstFilter);
    const filter = new ListenerConnectionHandler(
      {
        address,
        port,
        statPrefix: l.stat_prefix ?? '',
        listenerFilters,
        listenerFiltersTimeoutMs: durationMs(l.listener_filters_timeout, 15_000),
        continueOnListenerFiltersTimeout: l.continue_on_listener_filters_timeout === true,
        useOriginalDst: wrapped(l.use_original_dst, false),
        chains,
        defaultChain,
      },
      ctx.stats,
      ctx.listenerHandoff,
    );
    return { name: l.name, address, port, filter, bindToPort: wrapped(l.bind_to_port, true), raw: l };
  } catch (err) {
    for (const f of built) f.close();
    throw err;
  }
}
