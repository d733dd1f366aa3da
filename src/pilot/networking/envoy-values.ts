// Small builders for the Envoy value types every generator uses: durations,
// percentages, wrappers, addresses, typed configs and SDS sources. Kept in one
// place so every resource encodes them the same way (and packMessage accepts them).

import { TypeUrl, typeUrlOf } from '../../xds/index.ts';
import { SDS_CLUSTER } from './names.ts';

export interface EnvoyDuration {
  readonly seconds: number;
  readonly nanos?: number;
}

const UNIT_NS: Record<string, number> = { h: 3600e9, m: 60e9, s: 1e9, ms: 1e6, us: 1e3, 'µs': 1e3, ns: 1 };

/** Go-style durations as Istio writes them (`1.5s`, `100ms`, `1h30m`) -> Envoy Duration; undefined when malformed. */
export function duration(text: string | undefined): EnvoyDuration | undefined {
  if (text === undefined) return undefined;
  const re = /(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/gy;
  let total = 0;
  let matched = 0;
  for (const m of text.matchAll(re)) {
    total += Number(m[1]) * UNIT_NS[m[2]!]!;
    matched += m[0].length;
  }
  if (matched === 0 || matched !== text.length) return undefined;
  return nanosToDuration(Math.round(total));
}

export function nanosToDuration(ns: number): EnvoyDuration {
  const seconds = Math.floor(ns / 1e9);
  const nanos = ns - seconds * 1e9;
  return nanos === 0 ? { seconds } : { seconds, nanos };
}

export function seconds(n: number): EnvoyDuration {
  return { seconds: n };
}

export function u32(value: number): { value: number } {
  return { value };
}

export function bool(value: boolean): { value: boolean } {
  return { value };
}

/** Istio percentages (0..100, fractional) -> FractionalPercent per million, as Istio's translatePercentToFractionalPercent. */
export function fractionalPercent(value: number): { numerator: number; denominator: 'MILLION' } {
  return { numerator: Math.round(value * 10000), denominator: 'MILLION' };
}

export function socketAddress(address: string, port: number): { socket_address: { address: string; port_value: number } } {
  return { socket_address: { address, port_value: port } };
}

/** `{ '@type': url, ...fields }`: how a nested Any is written for packMessage. */
export function typed(typeUrlOrName: string, fields: Record<string, unknown> = {}): Record<string, unknown> {
  const url = typeUrlOrName.startsWith('type.googleapis.com/') ? typeUrlOrName : typeUrlOf(typeUrlOrName);
  return { '@type': url, ...fields };
}

/** Config source for resources on the ADS stream itself. */
export function adsConfigSource(): Record<string, unknown> {
  return { ads: {}, initial_fetch_timeout: seconds(0), resource_api_version: 'V3' };
}

/** Secrets come from the agent's SDS server, reached through the bootstrap's `sds-grpc` cluster. */
export function sdsSecretConfig(name: string): Record<string, unknown> {
  return {
    name,
    sds_config: {
      api_config_source: {
        api_type: 'GRPC',
        set_node_on_first_message_only: true,
        transport_api_version: 'V3',
        grpc_services: [{ envoy_grpc: { cluster_name: SDS_CLUSTER } }],
      },
      initial_fetch_timeout: seconds(0),
      resource_api_version: 'V3',
    },
  };
}

export function routerFilter(): Record<string, unknown> {
  return { name: 'envoy.filters.http.router', typed_config: typed(TypeUrl.Router) };
}

export function tcpProxyFilter(statPrefix: string, cluster: string | { name: string; weight: number }[]): Record<string, unknown> {
  const target = typeof cluster === 'string'
    ? { cluster }
    : cluster.length === 1 ? { cluster: cluster[0]!.name } : { weighted_clusters: { clusters: cluster } };
  return { name: 'envoy.filters.network.tcp_proxy', typed_config: typed(TypeUrl.TcpProxy, { stat_prefix: statPrefix, ...target }) };
}

/** A plain JSON value as a google.protobuf.Value in the encoder's object shape (protobufjs names well-known types camelCase). */
function structValue(v: unknown): Record<string, unknown> {
  if (v === null || v === undefined) return { nullValue: 0 };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(structValue) } };
  return { structValue: struct(v as Record<string, unknown>) };
}

/** A plain JSON object as a google.protobuf.Struct (metadata.filter_metadata values). */
export function struct(o: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return { fields: Object.fromEntries(Object.entries(o).map(([k, v]) => [k, structValue(v)])) };
}
