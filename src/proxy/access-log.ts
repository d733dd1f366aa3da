// Access logs in Envoy's default text format, with response flags:
// [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%"
// %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION%
// %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%"
// "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"
// Loggers write to buffered streams: the hot path never waits on the disk.


export interface AccessLogEntry {
  readonly startTime: number;
  readonly method: string;
  readonly path: string;
  readonly protocol: string;
  readonly status: number;
  readonly flags: string;
  readonly bytesReceived: number;
  readonly bytesSent: number;
  readonly durationMs: number;
  readonly upstreamServiceTime: string | undefined;
  readonly forwardedFor: string | undefined;
  readonly userAgent: string | undefined;
  readonly requestId: string | undefined;
  readonly authority: string | undefined;
  readonly upstreamHost: string | undefined;
  /** The rest feeds custom formats (access-loggers/substitution-format.ts); absent for callers that predate them. */
  readonly upstreamCluster?: string;
  /** Request headers as forwarded (node's lower-cased IncomingHttpHeaders). */
  readonly requestHeaders?: Readonly<Record<string, string | string[] | undefined>>;
  /** The downstream response, read lazily for %RESP(X)%. */
  readonly response?: { getHeader(name: string): number | string | string[] | undefined };
  /** The downstream connection (addresses, TLS facts). */
  readonly socket?: import('node:net').Socket;
  readonly routeName?: string;
  /** Set on tcp_proxy's entries (method, path and protocol are then empty, status 0, bytes are totals so far). */
  readonly tcp?: TcpConnectionLog;
}

/** Which moment of a TCP connection an entry reports. */
export interface TcpConnectionLog {
  /** open: the upstream connected (flush_access_log_on_connected); continue: every access_log_flush_interval; close: the connection ended. */
  readonly event: 'open' | 'continue' | 'close';
  /** Unique per downstream connection, the same in each of its entries. */
  readonly connectionId: string;
}

export interface AccessLogger {
  log(entry: AccessLogEntry): void;
}

const d = (v: string | undefined): string => (v === undefined || v === '' ? '-' : v);

export function formatDefault(e: AccessLogEntry): string {
  return `[${new Date(e.startTime).toISOString()}] "${d(e.method)} ${d(e.path)} ${d(e.protocol)}" ${e.status} ${e.flags || '-'} ${e.bytesReceived} ${e.bytesSent} ${e.durationMs} ${d(e.upstreamServiceTime)} "${d(e.forwardedFor)}" "${d(e.userAgent)}" "${d(e.requestId)}" "${d(e.authority)}" "${d(e.upstreamHost)}"\n`;
}
