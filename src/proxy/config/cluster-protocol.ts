// Which HTTP protocol a cluster speaks upstream, decided as Envoy does:
// typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
// (explicit_http_config, use_downstream_protocol_config, auto_config) wins;
// else the legacy cluster fields (http2_protocol_options,
// protocol_selection USE_DOWNSTREAM_PROTOCOL); else HTTP/1.1.

import { configError } from '../errors.ts';
import type { Http2Options } from '../http/http2-options.ts';
import { DEFAULT_HTTP2_OPTIONS, decodeHttp2Options } from '../http/http2-options.ts';
import { decodeAny } from './proto-json.ts';

type D = Record<string, any>;

export const HTTP_PROTOCOL_OPTIONS_KEY = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const HTTP_PROTOCOL_OPTIONS_URL = `type.googleapis.com/${HTTP_PROTOCOL_OPTIONS_KEY}`;

export interface UpstreamProtocolConfig {
  /**
   * 'http1' or 'http2' always; 'downstream' follows the request's protocol
   * (HTTP/2 downstream -> HTTP/2 upstream). 'auto' picks by ALPN, which on a
   * plaintext connection means HTTP/1.1 (Envoy needs TLS for auto_config).
   */
  readonly kind: 'http1' | 'http2' | 'downstream' | 'auto';
  readonly http2: Http2Options;
}

export const HTTP1_UPSTREAM: UpstreamProtocolConfig = Object.freeze({ kind: 'http1', http2: DEFAULT_HTTP2_OPTIONS });

export function decodeUpstreamProtocol(c: D, path: string): UpstreamProtocolConfig {
  const typed: D = c.typed_extension_protocol_options ?? {};
  const any = typed[HTTP_PROTOCOL_OPTIONS_KEY];
  if (any) {
    const p = `${path}.typed_extension_protocol_options["${HTTP_PROTOCOL_OPTIONS_KEY}"]`;
    if (any.type_url !== HTTP_PROTOCOL_OPTIONS_URL) throw configError(p, `expected ${HTTP_PROTOCOL_OPTIONS_URL}, got ${any.type_url}`);
    const o = decodeAny<D>(any, p);
    switch (o.upstream_protocol_options) {
      case 'explicit_http_config': {
        const e = o.explicit_http_config;
        if (e.protocol_config === 'http2_protocol_options') return { kind: 'http2', http2: decodeHttp2Options(e.http2_protocol_options, `${p}.explicit_http_config.http2_protocol_options`) };
        if (e.protocol_config === 'http3_protocol_options') throw configError(`${p}.explicit_http_config.http3_protocol_options`, 'HTTP/3 upstreams are not supported');
        return HTTP1_UPSTREAM;
      }
      case 'use_downstream_protocol_config':
        return { kind: 'downstream', http2: decodeHttp2Options(o.use_downstream_protocol_config.http2_protocol_options, `${p}.use_downstream_protocol_config.http2_protocol_options`) };
      case 'auto_config':
        return { kind: 'auto', http2: decodeHttp2Options(o.auto_config.http2_protocol_options, `${p}.auto_config.http2_protocol_options`) };
      default:
        throw configError(p, 'one of explicit_http_config, use_downstream_protocol_config or auto_config is required');
    }
  }
  if (c.protocol_selection === 'USE_DOWNSTREAM_PROTOCOL') return { kind: 'downstream', http2: decodeHttp2Options(c.http2_protocol_options, `${path}.http2_protocol_options`) };
  if (c.http2_protocol_options) return { kind: 'http2', http2: decodeHttp2Options(c.http2_protocol_options, `${path}.http2_protocol_options`) };
  return HTTP1_UPSTREAM;
}
