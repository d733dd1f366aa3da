// gRPC over HTTP as the proxy sees it: recognising gRPC requests, Envoy's
// mapping of local-reply HTTP statuses to grpc-status, and the grpc-timeout
// header. Shared by the connection manager (local replies) and the router
// (timeouts).

import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { ClusterAction } from '../config/route-config.ts';

/** Envoy's Grpc::Common::isGrpcRequestHeaders: content-type application/grpc or application/grpc+<codec>. */
export function isGrpcRequest(headers: IncomingHttpHeaders): boolean {
  const ct = headers['content-type'];
  if (ct === undefined || !ct.startsWith('application/grpc')) return false;
  return ct.length === 16 || ct.charCodeAt(16) === 43 /* + */ || ct.charCodeAt(16) === 59 /* ; */;
}

/**
 * grpc-status for a local reply with HTTP `status`, as Envoy's
 * Grpc::Utility::httpToGrpcStatus (the gRPC project's HTTP mapping).
 */
export function httpToGrpcStatus(status: number): number {
  switch (status) {
    case 400:
      return 13; // INTERNAL
    case 401:
      return 16; // UNAUTHENTICATED
    case 403:
      return 7; // PERMISSION_DENIED
    case 404:
      return 12; // UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return 14; // UNAVAILABLE
    default:
      return 2; // UNKNOWN
  }
}

const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/**
 * The grpc-timeout header in milliseconds ("100m", "5S"), or undefined when
 * absent or malformed (at most 8 digits and one unit, as the gRPC spec says).
 * Sub-millisecond values round up so a tiny deadline never means "none".
 */
export function parseGrpcTimeout(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string' || value.length < 2 || value.length > 9) return undefined;
  const unit = UNIT_MS[value[value.length - 1]];
  if (unit === undefined) return undefined;
  let n = 0;
  for (let i = 0; i < value.length - 1; i++) {
    const d = value.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return undefined;
    n = n * 10 + d;
  }
  return Math.ceil(n * unit);
}

/** grpc-message is percent-encoded: bytes outside printable ASCII, and '%'. */
export function encodeGrpcMessage(message: string): string {
  let plain = true;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return message;
  let out = '';
  for (const b of Buffer.from(message, 'utf8')) out += b < 0x20 || b > 0x7e || b === 0x25 ? `%${b.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(b);
  return out;
}

/**
 * A local reply to a gRPC request, as Envoy sends it: HTTP 200 with
 * grpc-status (mapped from `status`) and grpc-message in a trailers-only
 * response (one HEADERS frame ending the stream on HTTP/2). Headers already
 * set on `res` (server, x-envoy-overloaded) go along.
 */
export function sendGrpcLocalReply(req: IncomingMessage, res: ServerResponse, status: number, message: string): void {
  const headers = res.getHeaders() as OutgoingHttpHeaders;
  headers['content-type'] = 'application/grpc';
  headers['grpc-status'] = String(httpToGrpcStatus(status));
  if (message) headers['grpc-message'] = encodeGrpcMessage(message);
  const stream = req.httpVersionMajor === 2 ? (res as unknown as Http2ServerResponse).stream : undefined;
  if (stream && !stream.destroyed) {
    headers[':status'] = 200;
    stream.respond(headers, { endStream: true });
    return;
  }
  res.writeHead(200, headers);
  res.end();
}

/**
 * The route timeout for this request: with max_stream_duration's
 * grpc_timeout_header_max set, a gRPC request's grpc-timeout replaces the
 * route timeout, capped at the max when that is non-zero (a grpc-timeout of
 * 0 then means the max), less grpc_timeout_header_offset when it fits.
 * Envoy's FilterUtility::finalTimeout does the same.
 */
export function routeTimeoutMs(action: ClusterAction, headers: IncomingHttpHeaders): number {
  const max = action.grpcTimeoutHeaderMaxMs;
  if (max === undefined || !isGrpcRequest(headers)) return action.timeoutMs;
  const grpc = parseGrpcTimeout(headers['grpc-timeout']);
  if (grpc === undefined) return action.timeoutMs;
  let timeout = max > 0 && (grpc === 0 || grpc > max) ? max : grpc;
  const offset = action.grpcTimeoutHeaderOffsetMs;
  if (offset > 0 && timeout > offset) timeout -= offset;
  return timeout;
}
