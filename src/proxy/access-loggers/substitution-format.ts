// Envoy's substitution format strings (SubstitutionFormatString): text
// formats with command operators (`%REQ(:PATH)%`, `%RESPONSE_CODE%`, ...)
// and JSON dictionaries whose values are format strings. A format is compiled
// once per config into an array of parts; formatting a log line walks it.
// Text renders a missing value as "-"; JSON keeps numbers as numbers and a
// missing value as null (or drops it with omit_empty_values), as Envoy does.

import { hostname } from 'node:os';
import type { AccessLogEntry } from '../access-log.ts';
import { configError } from '../errors.ts';
import { tlsConnectionInfo } from '../transport-sockets/tls/connection-info.ts';

type Value = string | number | undefined;
type Operator = (e: AccessLogEntry) => Value;
type Part = string | Operator;

/** A compiled format: `format(entry)` gives one log line. */
export interface AccessLogFormatter {
  format(entry: AccessLogEntry): string;
}

const HOST = hostname();
const first = (v: string | string[] | number | undefined): string | undefined => (Array.isArray(v) ? v[0] : v === undefined ? undefined : String(v));
const withoutPort = (addr: string | undefined): string | undefined => {
  if (addr === undefined) return undefined;
  if (addr.startsWith('[')) return addr.slice(1, addr.indexOf(']'));
  const c = addr.lastIndexOf(':');
  return c < 0 || addr.indexOf(':') !== c ? addr : addr.slice(0, c);
};
const hostPort = (a: string | undefined, p: number | undefined): string | undefined => (a === undefined ? undefined : a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`);
const remote = (e: AccessLogEntry): string | undefined => hostPort(e.socket?.remoteAddress, e.socket?.remotePort);
const local = (e: AccessLogEntry): string | undefined => hostPort(e.socket?.localAddress, e.socket?.localPort);
const orUndef = (s: string | undefined): string | undefined => (s === '' ? undefined : s);

/** %START_TIME(fmt)%: Envoy's strftime subset (%Y %m %d %H %M %S %s %z %3f %6f %9f %f); default ISO 8601 in UTC with ms. */
function startTime(fmt: string | undefined): Operator {
  if (!fmt) return (e) => new Date(e.startTime).toISOString();
  return (e) => {
    const d = new Date(e.startTime);
    const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
    const frac = (digits: number): string => String(Math.floor((e.startTime % 1000) * 10 ** (digits - 3))).padStart(digits, '0').slice(0, digits);
    return fmt.replace(/%(\d?f|[YmdHMSsz%])/g, (m, k: string) => {
      switch (k) {
        case 'Y': return String(d.getUTCFullYear());
        case 'm': return pad(d.getUTCMonth() + 1);
        case 'd': return pad(d.getUTCDate());
        case 'H': return pad(d.getUTCHours());
        case 'M': return pad(d.getUTCMinutes());
        case 'S': return pad(d.getUTCSeconds());
        case 's': return String(Math.floor(e.startTime / 1000));
        case 'z': return '+0000';
        case '%': return '%';
        case 'f': return frac(9);
        default: return k.endsWith('f') ? frac(Number(k[0])) : m;
      }
    });
  };
}

/** %REQ(X?Y):N% and %RESP(X?Y):N%: a header, an alternative, and a maximum length. */
function header(kind: 'REQ' | 'RESP', arg: string, maxLen: number | undefined, path: string): Operator {
  const [a, b] = arg.toLowerCase().split('?');
  if (!a) throw configError(path, `%${kind}()% needs a header name`);
  const pseudo = (name: string, e: AccessLogEntry): string | undefined => {
    const h = e.requestHeaders;
    switch (name) {
      case ':method': return orUndef(e.method);
      case ':path': return orUndef(e.path);
      case ':authority': return first(h?.host) ?? e.authority;
      case ':scheme': return first(h?.['x-forwarded-proto']);
      default: return first(h?.[name]);
    }
  };
  const get = kind === 'REQ' ? pseudo : (name: string, e: AccessLogEntry): string | undefined => (name === ':status' ? String(e.status) : first(e.response?.getHeader(name)));
  return (e) => {
    let v = get(a, e);
    if (v === undefined && b) v = get(b, e);
    return v !== undefined && maxLen !== undefined ? v.slice(0, maxLen) : v;
  };
}

/** %ACCESS_LOG_TYPE% of tcp_proxy's entries, as Envoy names them. */
const TCP_LOG_TYPES = { open: 'TcpUpstreamConnected', continue: 'TcpPeriodic', close: 'TcpConnectionEnd' } as const;

const SIMPLE: Record<string, Operator> = {
  RESPONSE_CODE: (e) => e.status,
  RESPONSE_FLAGS: (e) => e.flags || undefined,
  BYTES_RECEIVED: (e) => e.bytesReceived,
  BYTES_SENT: (e) => e.bytesSent,
  DURATION: (e) => e.durationMs,
  PROTOCOL: (e) => orUndef(e.protocol),
  ACCESS_LOG_TYPE: (e) => (e.tcp ? TCP_LOG_TYPES[e.tcp.event] : 'DownstreamEnd'),
  UPSTREAM_HOST: (e) => orUndef(e.upstreamHost),
  UPSTREAM_CLUSTER: (e) => orUndef(e.upstreamCluster),
  UPSTREAM_TRANSPORT_FAILURE_REASON: () => undefined,
  DOWNSTREAM_REMOTE_ADDRESS: remote,
  DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: (e) => withoutPort(remote(e)),
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS: remote,
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT: (e) => withoutPort(remote(e)),
  DOWNSTREAM_LOCAL_ADDRESS: local,
  DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: (e) => withoutPort(local(e)),
  DOWNSTREAM_LOCAL_PORT: (e) => e.socket?.localPort,
  DOWNSTREAM_PEER_URI_SAN: (e) => orUndef(tlsConnectionInfo(e.socket)?.uriSanPeerCertificate.join(',')),
  DOWNSTREAM_LOCAL_URI_SAN: (e) => orUndef(tlsConnectionInfo(e.socket)?.uriSanLocalCertificate.join(',')),
  DOWNSTREAM_PEER_SUBJECT: (e) => orUndef(tlsConnectionInfo(e.socket)?.subjectPeerCertificate),
  DOWNSTREAM_TLS_VERSION: (e) => orUndef((e.socket as { getProtocol?: () => string | null } | undefined)?.getProtocol?.() ?? undefined),
  REQUESTED_SERVER_NAME: (e) => orUndef(tlsConnectionInfo(e.socket)?.sni),
  ROUTE_NAME: (e) => orUndef(e.routeName),
  HOSTNAME: () => HOST,
  UPSTREAM_SERVICE_TIME: (e) => e.upstreamServiceTime,
};

/**
 * Compiles a format string; an unknown command operator is a config error
 * naming `path`, as Envoy rejects it ("Not supported field in StreamInfo").
 */
export function compileFormat(format: string, path: string): Part[] {
  const parts: Part[] = [];
  const re = /%([A-Z_0-9]+)(?:\(([^)]*)\))?(?::(\d+))?%|%%/g;
  let last = 0;
  for (let m = re.exec(format); m; m = re.exec(format)) {
    if (m.index > last) parts.push(format.slice(last, m.index));
    last = re.lastIndex;
    if (m[0] === '%%') {
      parts.push('%');
      continue;
    }
    const [, name, arg, len] = m;
    const maxLen = len === undefined ? undefined : Number(len);
    if (name === 'REQ' || name === 'REQUEST_HEADER') parts.push(header('REQ', arg ?? '', maxLen, path));
    else if (name === 'RESP' || name === 'RESPONSE_HEADER') parts.push(header('RESP', arg ?? '', maxLen, path));
    else if (name === 'START_TIME') parts.push(startTime(arg));
    else if (SIMPLE[name]) parts.push(SIMPLE[name]);
    else throw configError(path, `Not supported field in StreamInfo: ${name}`);
  }
  if (last < format.length) parts.push(format.slice(last));
  return parts;
}

function renderText(parts: readonly Part[], e: AccessLogEntry): string {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'string') out += p;
    else {
      const v = p(e);
      out += v === undefined || v === '' ? '-' : v;
    }
  }
  return out;
}

/** A text format string (FileAccessLog.format, log_format.text_format_source.inline_string). */
export function textFormatter(format: string, path: string): AccessLogFormatter {
  const parts = compileFormat(format, path);
  return { format: (e) => renderText(parts, e) };
}

type JsonNode = { kind: 'op'; op: Operator } | { kind: 'text'; parts: Part[] } | { kind: 'const'; value: unknown } | { kind: 'object'; entries: Array<[string, JsonNode]> };

function compileJson(v: unknown, path: string): JsonNode {
  if (typeof v === 'string') {
    const parts = compileFormat(v, path);
    // A value that is exactly one operator keeps its type (number, null).
    if (parts.length === 1 && typeof parts[0] === 'function') return { kind: 'op', op: parts[0] };
    return { kind: 'text', parts };
  }
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) return { kind: 'object', entries: Object.entries(v).map(([k, x]) => [k, compileJson(x, `${path}.${k}`)]) };
  return { kind: 'const', value: v };
}

function renderJson(node: JsonNode, e: AccessLogEntry, omitEmpty: boolean): unknown {
  switch (node.kind) {
    case 'op': {
      const v = node.op(e);
      return v === undefined || v === '' ? null : v;
    }
    case 'text':
      return renderText(node.parts, e);
    case 'const':
      return node.value;
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [k, n] of node.entries) {
        const v = renderJson(n, e, omitEmpty);
        if (omitEmpty && (v === null || v === '')) continue;
        out[k] = v;
      }
      return out;
    }
  }
}

/** A JSON dictionary (json_format): one JSON object per line. */
export function jsonFormatter(dict: Record<string, unknown>, path: string, omitEmptyValues = false): AccessLogFormatter {
  const root = compileJson(dict, path);
  return { format: (e) => `${JSON.stringify(renderJson(root, e, omitEmptyValues))}\n` };
}
