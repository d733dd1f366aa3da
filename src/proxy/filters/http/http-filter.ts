// The per-stream side of HTTP filters: what a filter sees of a request and
// what it may do. Filters run in order on the request headers; one that
// returns 'stop' resumes the chain later with stream.continueDecoding().

import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Route, RouteTable, VirtualHost } from '../../config/route-config.ts';
import type { UpgradeRequest } from '../../http/upgrade.ts';

export type FilterStatus = 'continue' | 'stop';

export interface HttpFilter {
  decodeHeaders(stream: HttpStream): FilterStatus;
  /** The stream ended (response done or reset): release timers. */
  onDestroy?(): void;
  /**
   * Upstream response headers on their way downstream (the router calls it
   * through stream.encodeHeaders); a filter may read, add or remove entries.
   */
  encodeHeaders?(stream: HttpStream, status: number, headers: OutgoingHttpHeaders): void;
  /** After onDestroy, with the final response code and flags: stats, spans. Must not throw. */
  onStreamComplete?(stream: HttpStream): void;
}

/** One request/response exchange in the HTTP connection manager. */
export interface HttpStream {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Request path without the query string, and the query without '?'. */
  readonly path: string;
  readonly query: string;
  readonly host: string;
  readonly routeTable: RouteTable;
  readonly virtualHost: VirtualHost;
  readonly route: Route;
  /** performance.now() at the start of the request. */
  readonly startTime: number;
  /** Upstream host address:port, for the access log. */
  upstreamHost: string;
  /** Request body bytes read and response body bytes sent, for the access log. */
  bytesReceived: number;
  bytesSent: number;
  /** Envoy response flags so far (UH, UF, UO, UT, NR, DI, FI, ...). */
  addResponseFlag(flag: string): void;
  /** The response flags so far, comma-separated as Envoy logs them ('' when none). */
  readonly responseFlags: string;
  /** The cluster the router chose ('' before routing or for local replies). */
  upstreamCluster: string;
  /** Runs the filters' encodeHeaders hooks, last filter first, on upstream response headers. */
  encodeHeaders(status: number, headers: OutgoingHttpHeaders): void;
  /** Resumes the filter chain after a filter returned 'stop'. */
  continueDecoding(): void;
  /** Answers locally (no upstream), e.g. 503 "no healthy upstream". */
  sendLocalReply(status: number, body: string, flag?: string): void;
  /** True once the downstream went away or a reply was sent. */
  readonly ended: boolean;
  /** Set for an Upgrade (WebSocket) or CONNECT request the HCM allowed: the router relays it instead of a request/response. */
  readonly upgrade?: UpgradeRequest;
}
