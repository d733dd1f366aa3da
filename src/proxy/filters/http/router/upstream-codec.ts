// The router's choice of upstream codec, and what crosses between codecs.
// HTTP/1.1 upstreams take the cluster's raw-socket pool (or node's Agent); HTTP/2 ones the
// cluster's multiplexing pool (upstream/http2-pool.ts), both driven through
// the same ClientRequest surface. Pseudo-headers never reach an HTTP/1.1
// upstream (`host` carries the authority); an HTTP/2 upstream gets them
// from method, path and host. Response trailers (gRPC's grpc-status) pass
// to HTTP/2 downstreams; HTTP/1.1 ones drop them, as Envoy does by default.

import { request } from 'node:http';
import type { ClientRequest, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Http2ServerResponse, IncomingHttpHeaders as Http2Headers } from 'node:http2';
import { env } from '../../../../common/index.ts';
import { isGrpcRequest } from '../../../http/grpc.ts';
import type { Cluster } from '../../../upstream/cluster.ts';
import type { Host } from '../../../upstream/host.ts';
import type { HttpStream } from '../http-filter.ts';

/**
 * HTTP/1.1 upstreams go through the raw-socket pool (upstream/http1-pool.ts)
 * unless MESH_PROXY_HTTP1_UPSTREAM=node asks for node:http's Agent.
 */
const RAW_HTTP1 = env('MESH_PROXY_HTTP1_UPSTREAM') !== 'node';

// Connection-specific headers HTTP/2 forbids (RFC 9113 8.2.2), and host (it is :authority there).
const NOT_IN_HTTP2 = new Set(['host', 'connection', 'upgrade', 'http2-settings', 'te', 'transfer-encoding', 'keep-alive', 'proxy-connection']);

/** Starts the upstream request for `s` on `host` with the protocol the cluster picks for it. */
export function openUpstreamRequest(s: HttpStream, cluster: Cluster, host: Host, path: string, headers: OutgoingHttpHeaders, bodyless: boolean): ClientRequest {
  const req = s.req;
  const downstreamHttp2 = req.httpVersionMajor === 2;
  const method = req.method ?? 'GET';
  if (cluster.usesHttp2(downstreamHttp2)) {
    const h2: OutgoingHttpHeaders = { ':method': method, ':scheme': 'http', ':authority': (headers.host as string | undefined) ?? host.key, ':path': path };
    for (const name in headers) if (name.charCodeAt(0) !== 58 /* : */ && !NOT_IN_HTTP2.has(name)) h2[name] = headers[name];
    // HTTP/2 allows `te: trailers` only, and gRPC servers want it.
    if (isGrpcRequest(req.headers)) h2.te = 'trailers';
    return cluster.http2Pool.request(host, h2);
  }
  let h1 = headers;
  if (downstreamHttp2) {
    h1 = {};
    for (const name in headers) if (name.charCodeAt(0) !== 58) h1[name] = headers[name];
  }
  if (RAW_HTTP1) return cluster.http1Pool.request(host, method, path, h1, bodyless);
  return request({ agent: cluster.agent, host: host.address, port: host.port, method, path, headers: h1, setHost: false });
}

/** Passes the upstream response's trailers on to an HTTP/2 downstream. */
export function forwardTrailers(upRes: IncomingMessage, s: HttpStream): void {
  if (s.req.httpVersionMajor !== 2) return;
  upRes.once('trailers', (trailers: Http2Headers) => (s.res as unknown as Http2ServerResponse).addTrailers(trailers));
}

/**
 * An HTTP/2 upstream answered with headers that end the stream (gRPC's
 * trailers-only form): send the same single HEADERS frame downstream, since
 * gRPC clients read grpc-status only from a frame that ends the stream.
 * Returns false when the downstream cannot take it that way.
 */
export function respondTrailersOnly(upRes: IncomingMessage, s: HttpStream, status: number): boolean {
  if (!(upRes as { trailersOnly?: boolean }).trailersOnly || s.req.httpVersionMajor !== 2) return false;
  const stream = (s.res as unknown as Http2ServerResponse).stream;
  if (!stream || stream.destroyed || stream.headersSent) return false;
  const headers = s.res.getHeaders() as OutgoingHttpHeaders;
  headers[':status'] = status;
  stream.respond(headers, { endStream: true });
  return true;
}
