// HttpConnectionManager config -> immutable settings. Envoy's defaults:
// max_request_headers_kb 60, idle_timeout 1h, drain_timeout 5s, request IDs on,
// server name "envoy". The filter chain must end in a terminal filter (router).

import { configError } from '../../../errors.ts';
import type { RouteTable } from '../../../config/route-config.ts';
import { decodeRouteConfiguration } from '../../../config/route-config.ts';
import { durationMs, wrapped } from '../../../config/values.ts';
import type { AccessLogger } from '../../../access-log.ts';
import type { FactoryContext, HttpFilterFactory } from '../../../registry.ts';
import { decodeStreamTimeouts, streamTimeoutsFactory } from './stream-timeouts.ts';
import type { XfccSettings } from './xfcc.ts';
import { decodeXfccSettings } from './xfcc.ts';
import type { Http2Options } from '../../../http/http2-options.ts';
import { decodeHttp2Options } from '../../../http/http2-options.ts';
import { resolveTypedConfig } from '../../../config/typed-struct.ts';
import { accessLoggersFrom } from '../../../access-loggers/access-log-config.ts';
import { decodeHttpTracing } from '../../../tracing/http-tracer.ts';

export interface HcmSettings {
  readonly statPrefix: string;
  /** Inline route table, or the RDS name to look up per request. */
  readonly routeTable: RouteTable | undefined;
  readonly rdsName: string | undefined;
  readonly filters: readonly HttpFilterFactory[];
  readonly maxRequestHeadersKb: number;
  readonly idleTimeoutMs: number;
  readonly drainTimeoutMs: number;
  /** request_headers_timeout: a request head must arrive within this long (node's 60 s when unset; 0 disables). */
  readonly requestHeadersTimeoutMs: number;
  readonly generateRequestId: boolean;
  readonly useRemoteAddress: boolean;
  readonly serverName: string;
  readonly stripAnyHostPort: boolean;
  readonly accessLoggers: readonly AccessLogger[];
  /** stream_idle_timeout / request_timeout / max_stream_duration as a first per-stream filter (stream-timeouts.ts); undefined when all are off. */
  readonly streamTimeouts?: HttpFilterFactory;
  /** forward_client_cert_details / set_current_client_cert_details (xfcc.ts). */
  readonly xfcc: XfccSettings;
  /** AUTO tells HTTP/2 (the h2 preface, or ALPN "h2") from HTTP/1.1 per connection. */
  readonly codecType: 'AUTO' | 'HTTP1' | 'HTTP2';
  readonly http2: Http2Options;
  /** upgrade_configs: lower-cased upgrade type ("websocket", "connect") -> enabled. */
  readonly upgrades: ReadonlyMap<string, boolean>;
  /** tracing (envoy.tracers.zipkin): a first per-stream filter that starts and ends the span (tracing/http-tracer.ts). */
  readonly tracing?: HttpFilterFactory;
}

type D = Record<string, any>;

export function decodeHcmSettings(c: D, ctx: FactoryContext, path: string): HcmSettings {
  if (!c.stat_prefix) throw configError(`${path}.stat_prefix`, 'must not be empty');
  if (c.codec_type !== 'AUTO' && c.codec_type !== 'HTTP1' && c.codec_type !== 'HTTP2') throw configError(`${path}.codec_type`, `${c.codec_type} is not supported (AUTO, HTTP1 or HTTP2)`);
  let routeTable: RouteTable | undefined;
  let rdsName: string | undefined;
  if (c.route_specifier === 'route_config') routeTable = decodeRouteConfiguration(c.route_config, `${path}.route_config`, (t, cfg, p) => ctx.registry.validatePerRoute(t, cfg, p));
  else if (c.route_specifier === 'rds') {
    rdsName = c.rds.route_config_name;
    if (!rdsName) throw configError(`${path}.rds.route_config_name`, 'must not be empty');
  } else throw configError(path, `route_config or rds is required${c.route_specifier ? ` (${c.route_specifier} is not supported)` : ''}`);
  const filterContext: FactoryContext = { ...ctx, statPrefix: c.stat_prefix };
  const filters: HttpFilterFactory[] = [];
  (c.http_filters ?? []).forEach((f: D, i: number) => {
    const p = `${path}.http_filters[${i}]`;
    if (f.disabled) return;
    if (!f.typed_config) throw configError(`${p}.typed_config`, `filter "${f.name}" needs a typed_config`);
    const { typeUrl, config } = resolveTypedConfig(f.typed_config, `${p}.typed_config`);
    if (f.is_optional && !ctx.registry.has(typeUrl)) return;
    const ext = ctx.registry.get('http', typeUrl, p);
    filters.push(ext.create(config, filterContext, `${p}.typed_config`, f.name));
  });
  const last = filters[filters.length - 1];
  if (!last || !last.terminal) throw configError(`${path}.http_filters`, 'the last HTTP filter must be a terminal filter (envoy.filters.http.router)');
  const terminalAt = filters.findIndex((f) => f.terminal);
  if (terminalAt !== filters.length - 1) throw configError(`${path}.http_filters[${terminalAt}]`, `terminal filter "${filters[terminalAt].name}" must be the last one`);
  const kb = wrapped(c.max_request_headers_kb, 60);
  if (kb < 1 || kb > 8192) throw configError(`${path}.max_request_headers_kb`, `${kb} is not in [1, 8192]`);
  const accessLoggers = accessLoggersFrom(c.access_log, ctx, `${path}.access_log`);
  return {
    statPrefix: c.stat_prefix,
    routeTable,
    rdsName,
    filters,
    maxRequestHeadersKb: kb,
    idleTimeoutMs: durationMs(c.common_http_protocol_options?.idle_timeout, 3_600_000),
    drainTimeoutMs: durationMs(c.drain_timeout, 5000),
    requestHeadersTimeoutMs: durationMs(c.request_headers_timeout, 60_000),
    generateRequestId: wrapped(c.generate_request_id, true),
    useRemoteAddress: wrapped(c.use_remote_address, false),
    serverName: c.server_name || 'envoy',
    stripAnyHostPort: c.strip_any_host_port === true,
    accessLoggers,
    streamTimeouts: streamTimeoutsFactory(decodeStreamTimeouts(c), ctx),
    xfcc: decodeXfccSettings(c),
    codecType: c.codec_type,
    http2: decodeHttp2Options(c.http2_protocol_options, `${path}.http2_protocol_options`),
    upgrades: decodeUpgrades(c.upgrade_configs, `${path}.upgrade_configs`),
    tracing: c.tracing ? decodeHttpTracing(c.tracing, ctx, `${path}.tracing`) : undefined,
  };
}

function decodeUpgrades(list: D[] | undefined, path: string): Map<string, boolean> {
  const out = new Map<string, boolean>();
  (list ?? []).forEach((u, i) => {
    const type = String(u.upgrade_type ?? '').toLowerCase();
    if (!type) throw configError(`${path}[${i}].upgrade_type`, 'must not be empty');
    if (u.filters?.length) throw configError(`${path}[${i}].filters`, 'per-upgrade filter chains are not supported');
    out.set(type, wrapped(u.enabled, true));
  });
  return out;
}
