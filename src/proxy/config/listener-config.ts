// Listener -> ListenerConfig: its address and the terminal network filter
// (HCM or tcp_proxy) of the filter chain it serves, built through the
// extension registry. Building a ListenerConfig creates its factories, so a
// config that fails here never reaches the listener manager (NACK).

import { configError } from '../errors.ts';
import type { FactoryContext, NetworkFilterFactory } from '../registry.ts';
import { decodeAny } from './proto-json.ts';
import { socketAddress } from './values.ts';

export interface ListenerConfig {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly filter: NetworkFilterFactory;
  /** The decoded resource, for /config_dump and change detection. */
  readonly raw: unknown;
}

type D = Record<string, any>;

function chainMatches(chain: D, port: number): boolean {
  const m = chain.filter_chain_match;
  if (!m) return true;
  // Only destination_port is honoured; chains matching on SNI, ALPN,
  // transport or source are for TLS/capture and are skipped here.
  if (m.server_names?.length || m.application_protocols?.length || m.transport_protocol || m.source_prefix_ranges?.length) return false;
  return !m.destination_port || m.destination_port.value === port;
}

export function decodeListener(l: D, ctx: FactoryContext, where = 'Listener'): ListenerConfig {
  if (!l.name) throw configError(`${where}.name`, 'must not be empty');
  const path = `${where} "${l.name}"`;
  const { address, port } = socketAddress(l.address, `${path}.address`);
  const chains: D[] = l.filter_chains ?? [];
  const index = chains.findIndex((c) => chainMatches(c, port));
  const chain = index >= 0 ? chains[index] : l.default_filter_chain;
  if (!chain) throw configError(`${path}.filter_chains`, 'no filter chain applies (need one without filter_chain_match, or a default_filter_chain)');
  const chainPath = index >= 0 ? `${path}.filter_chains[${index}]` : `${path}.default_filter_chain`;
  if (chain.transport_socket) throw configError(`${chainPath}.transport_socket`, 'TLS transport sockets are not supported yet');
  const filters: D[] = chain.filters ?? [];
  if (filters.length === 0) throw configError(`${chainPath}.filters`, 'must not be empty');
  if (filters.length > 1) {
    throw configError(`${chainPath}.filters[0]`, `only a single terminal network filter is supported (got ${filters.length})`);
  }
  const f = filters[0];
  const fp = `${chainPath}.filters[0]`;
  if (!f.typed_config) throw configError(`${fp}.typed_config`, `filter "${f.name}" needs a typed_config`);
  const ext = ctx.registry.get('network', f.typed_config.type_url, fp);
  const filter = ext.create(decodeAny(f.typed_config, `${fp}.typed_config`), ctx, `${fp}.typed_config`, f.name);
  return { name: l.name, address, port, filter, raw: l };
}
