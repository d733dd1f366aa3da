// A cluster's transport_socket and transport_socket_matches, built through
// the extension registry: the decoded ClusterConfig gains its
// UpstreamTransportSocket(s) here, since cluster decoding itself does not
// see the registry or the secrets.

import { configError } from '../errors.ts';
import { decodeAny } from '../config/proto-json.ts';
import type { ClusterConfig } from '../config/cluster-config.ts';
import { structStrings } from '../config/cluster-config.ts';
import type { FactoryContext } from '../registry.ts';
import type { TransportSocketMatch, UpstreamTransportSocket } from './transport-socket.ts';

type D = Record<string, any>;

const RAW_BUFFER = 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer';

function upstreamSocket(ts: D | null | undefined, ctx: FactoryContext, path: string): UpstreamTransportSocket | undefined {
  if (!ts) return undefined;
  if (!ts.typed_config) throw configError(`${path}.typed_config`, `transport socket "${ts.name}" needs a typed_config`);
  if (ts.typed_config.type_url === RAW_BUFFER) return undefined;
  const ext = ctx.registry.get('transport_socket', ts.typed_config.type_url, path);
  const factory = ext.create(decodeAny(ts.typed_config, `${path}.typed_config`), ctx, `${path}.typed_config`, ts.name);
  if (!factory.upstream) throw configError(`${path}.typed_config`, `${ts.typed_config.type_url} is not an upstream transport socket`);
  return factory.upstream;
}

export function withTransportSocket(config: ClusterConfig, c: D, ctx: FactoryContext): ClusterConfig {
  const path = `Cluster "${config.name}"`;
  const transportSocket = upstreamSocket(c.transport_socket, ctx, `${path}.transport_socket`);
  const transportSocketMatches: TransportSocketMatch[] = (c.transport_socket_matches ?? []).map((m: D, i: number) => {
    const p = `${path}.transport_socket_matches[${i}]`;
    if (!m.name) throw configError(`${p}.name`, 'must not be empty');
    return { name: m.name, match: structStrings(m.match) ?? {}, socket: upstreamSocket(m.transport_socket, ctx, `${p}.transport_socket`) };
  });
  if (!transportSocket && transportSocketMatches.length === 0) return config;
  return { ...config, transportSocket, transportSocketMatches };
}
