// envoy.filters.listener.http_inspector: on plaintext connections, peeks at
// the first bytes and sets the application protocol Envoy's way: `h2c` for
// the HTTP/2 connection preface, `http/1.1` or `http/1.0` for a request line.
// TLS connections (tls_inspector ran first) are left alone.

import type { ListenerFilterExtension } from '../../../registry.ts';
import type { AcceptedConnection, ListenerFilterFactory, ListenerFilterStatus } from '../listener-filter.ts';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** Envoy reads at most this much looking for the request line. */
const MAX_INSPECT = 64 * 1024;
const REQUEST_LINE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+ \S+ HTTP\/1\.([01])$/;
const METHOD_CHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]*$/;

/** The protocol of a plaintext stream's first bytes, or 'need_more', or '' when it is not HTTP. */
export function detectHttp(buf: Buffer): string {
  const n = Math.min(buf.length, H2_PREFACE.length);
  if (buf.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) return buf.length >= H2_PREFACE.length ? 'h2c' : 'need_more';
  const eol = buf.indexOf(0x0a);
  if (eol < 0) {
    // Still a plausible method? Keep reading; otherwise it is not HTTP.
    const sp = buf.indexOf(0x20);
    const method = buf.toString('latin1', 0, sp < 0 ? buf.length : sp);
    return METHOD_CHAR.test(method) && method.length <= 32 ? 'need_more' : '';
  }
  const line = buf.toString('latin1', 0, eol > 0 && buf[eol - 1] === 0x0d ? eol - 1 : eol);
  const m = REQUEST_LINE.exec(line);
  return m ? `http/1.${m[1]}` : '';
}

export const httpInspectorFilter: ListenerFilterFactory = {
  name: 'envoy.filters.listener.http_inspector',
  maxReadBytes: MAX_INSPECT,
  onAccept(conn: AcceptedConnection): ListenerFilterStatus {
    return conn.transportProtocol !== '' && conn.transportProtocol !== 'raw_buffer' ? 'continue' : 'stop';
  },
  onData(conn: AcceptedConnection, peeked: Buffer): ListenerFilterStatus {
    const proto = detectHttp(peeked);
    if (proto === 'need_more') return 'stop';
    if (proto) conn.applicationProtocols = [proto];
    return 'continue';
  },
};

export const httpInspectorExtension: ListenerFilterExtension = {
  typeUrl: 'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector',
  category: 'listener',
  create: () => httpInspectorFilter,
};
