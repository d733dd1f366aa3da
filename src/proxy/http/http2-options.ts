// Envoy's core.v3.Http2ProtocolOptions -> the settings node:http2 takes, for
// both sides: the HCM's downstream codec and a cluster's upstream pool.
//
// Envoy's own window defaults are 256 MiB, but Envoy stops reading at its
// buffer watermarks (1 MiB per connection by default) long before a window
// fills. node:http2 has no watermark of its own: the window is the only
// bound on what a peer may push at us before backpressure bites. So unset
// windows default to 1 MiB, which gives the same effective bound.

import type { Settings } from 'node:http2';
import { configError } from '../errors.ts';
import { wrapped } from '../config/values.ts';

type D = Record<string, any>;

export interface Http2Options {
  /** SETTINGS_MAX_CONCURRENT_STREAMS we advertise (downstream) or respect (upstream). Envoy: 2147483647. */
  readonly maxConcurrentStreams: number;
  readonly initialStreamWindowSize: number;
  readonly initialConnectionWindowSize: number;
  /** Extended CONNECT (RFC 8441), for WebSocket over HTTP/2. */
  readonly allowConnect: boolean;
}

export const DEFAULT_WINDOW = 1024 * 1024;
const MAX_STREAMS = 2147483647;

export const DEFAULT_HTTP2_OPTIONS: Http2Options = Object.freeze({
  maxConcurrentStreams: MAX_STREAMS,
  initialStreamWindowSize: DEFAULT_WINDOW,
  initialConnectionWindowSize: DEFAULT_WINDOW,
  allowConnect: false,
});

/** Decodes an Http2ProtocolOptions (null/undefined gives the defaults); errors name `path`. */
export function decodeHttp2Options(o: D | null | undefined, path: string): Http2Options {
  if (!o) return DEFAULT_HTTP2_OPTIONS;
  const maxConcurrentStreams = wrapped(o.max_concurrent_streams, MAX_STREAMS);
  if (maxConcurrentStreams < 1) throw configError(`${path}.max_concurrent_streams`, `${maxConcurrentStreams} is not in [1, 2147483647]`);
  const window = (field: string): number => {
    const v = wrapped(o[field], DEFAULT_WINDOW);
    // Envoy's validation range for both windows.
    if (v < 65535 || v > 2147483647) throw configError(`${path}.${field}`, `${v} is not in [65535, 2147483647]`);
    return v;
  };
  return {
    maxConcurrentStreams,
    initialStreamWindowSize: window('initial_stream_window_size'),
    initialConnectionWindowSize: window('initial_connection_window_size'),
    allowConnect: o.allow_connect === true,
  };
}

/** The SETTINGS frame values for a session built from `o`. */
export function http2Settings(o: Http2Options, maxHeaderListSize?: number): Settings {
  const s: Settings = { maxConcurrentStreams: o.maxConcurrentStreams, initialWindowSize: o.initialStreamWindowSize, enableConnectProtocol: o.allowConnect };
  if (maxHeaderListSize !== undefined) s.maxHeaderListSize = maxHeaderListSize;
  return s;
}
