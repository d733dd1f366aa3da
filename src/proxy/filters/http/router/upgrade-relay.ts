// The router's side of upgrades: after route, cluster and host are chosen,
// an upgraded stream is relayed as bytes. WebSocket (any Upgrade type)
// goes upstream as an HTTP/1.1 upgrade request; on 101 both sockets are
// piped to each other (backpressure both ways), any other status is passed
// back as a plain response. CONNECT either goes upstream as CONNECT, or,
// with the route's connect_config, ends here: the proxy answers 200 and the
// tunnel's bytes go to the host as raw TCP.

import { request } from 'node:http';
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { createConnection } from 'node:net';
import type { Socket } from 'node:net';
import type { ClusterAction } from '../../../config/route-config.ts';
import type { Cluster } from '../../../upstream/cluster.ts';
import { CONNECT_TIMEOUT } from '../../../upstream/cluster.ts';
import type { Host } from '../../../upstream/host.ts';
import type { HttpStream } from '../http-filter.ts';

const CONNECT_FAILURE = 'upstream connect error or disconnect/reset before headers. reset reason: connection failure';

/** Relays `s.upgrade` to `host`; `headers` and `path` are the request as the router rewrote it. */
export function relayUpgrade(s: HttpStream, action: ClusterAction, cluster: Cluster, host: Host, path: string, headers: OutgoingHttpHeaders): void {
  const u = s.upgrade!;
  const stats = cluster.stats;
  stats.upstream_rq_total.value++;
  stats.upstream_rq_active.value++;
  host.activeRequests++;
  host.rqTotal++;
  let done = false;
  const finish = (): void => {
    if (done) return;
    done = true;
    stats.upstream_rq_active.value--;
    host.activeRequests--;
  };
  s.res.once('close', finish);
  if (u.type === 'connect' && action.upgrades.get('connect')?.terminateConnect) {
    terminateConnect(s, cluster, host, finish);
    return;
  }
  if (u.type !== 'connect') {
    headers.connection = 'upgrade';
    // The router dropped the hop-by-hop Upgrade header; the HCM kept its (lower-cased) value.
    headers.upgrade = u.type;
  }
  const up = request({ agent: cluster.agent, host: host.address, port: host.port, method: s.req.method, path, headers, setHost: false });
  const onUpgraded = (upRes: IncomingMessage, upSocket: Socket, upHead: Buffer): void => {
    cluster.countResponse(upRes.statusCode ?? 101);
    if (s.ended) return void upSocket.destroy();
    const res = s.res;
    for (const name in upRes.headers) res.setHeader(name, upRes.headers[name]!);
    if (u.type === 'connect') res.useChunkedEncodingByDefault = false;
    u.established = true;
    res.writeHead(upRes.statusCode ?? 101);
    res.end();
    if (upHead.length > 0) {
      s.bytesSent += upHead.length;
      u.socket.write(upHead);
    }
    splice(s, u.socket, upSocket);
  };
  up.once('upgrade', onUpgraded);
  up.once('connect', onUpgraded);
  // Refused: pass the answer back; the connection closes after it (see HCM onUpgrade).
  up.once('response', (upRes: IncomingMessage) => {
    cluster.countResponse(upRes.statusCode ?? 502);
    const res = s.res;
    for (const name in upRes.headers) if (name !== 'connection' && name !== 'transfer-encoding') res.setHeader(name, upRes.headers[name]!);
    res.writeHead(upRes.statusCode ?? 502);
    upRes.pipe(res);
  });
  up.once('error', (err: NodeJS.ErrnoException) => {
    if (u.established || s.ended) return;
    if (isConnectFailure(err)) {
      host.cxConnectFail++;
      s.sendLocalReply(503, CONNECT_FAILURE, 'UF');
    } else s.sendLocalReply(503, 'upstream connect error or disconnect/reset before headers. reset reason: connection termination', 'UC');
  });
  up.end();
}

function terminateConnect(s: HttpStream, cluster: Cluster, host: Host, finish: () => void): void {
  const u = s.upgrade!;
  const stats = cluster.stats;
  stats.upstream_cx_total.value++;
  stats.upstream_cx_active.value++;
  const upSocket = createConnection({ host: host.address, port: host.port });
  upSocket.setNoDelay(true);
  const timer = setTimeout(() => {
    stats.upstream_cx_connect_timeout.value++;
    const err = new Error('connect timeout') as NodeJS.ErrnoException;
    err.code = CONNECT_TIMEOUT;
    upSocket.destroy(err);
  }, cluster.config.connectTimeoutMs);
  upSocket.once('close', () => {
    clearTimeout(timer);
    stats.upstream_cx_active.value--;
    finish();
  });
  upSocket.once('error', (err: NodeJS.ErrnoException) => {
    if (u.established || s.ended) return;
    stats.upstream_cx_connect_fail.value++;
    host.cxConnectFail++;
    s.sendLocalReply(503, CONNECT_FAILURE, isConnectFailure(err) ? 'UF' : 'UC');
  });
  upSocket.once('connect', () => {
    clearTimeout(timer);
    if (s.ended) return void upSocket.destroy();
    cluster.countResponse(200);
    u.established = true;
    const res = s.res;
    res.useChunkedEncodingByDefault = false;
    res.writeHead(200);
    res.end();
    splice(s, u.socket, upSocket);
  });
}

/** Pipes two sockets into each other, half-close passing through, counting bytes for the access log. */
function splice(s: HttpStream, down: Socket, up: Socket): void {
  const u = s.upgrade!;
  if (u.head.length > 0) {
    s.bytesReceived += u.head.length;
    up.write(u.head);
  }
  down.on('data', (c: Buffer) => (s.bytesReceived += c.length));
  up.on('data', (c: Buffer) => (s.bytesSent += c.length));
  down.pipe(up);
  up.pipe(down);
  up.on('error', () => down.destroy());
  down.on('error', () => up.destroy());
  up.once('close', () => down.destroySoon());
  down.once('close', () => up.destroy());
}

function isConnectFailure(err: NodeJS.ErrnoException): boolean {
  return err.code === CONNECT_TIMEOUT || err.code === 'ECONNREFUSED' || err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH' || err.code === 'EADDRNOTAVAIL';
}
