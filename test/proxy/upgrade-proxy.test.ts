// Upgrades through the proxy on real sockets: WebSocket (HCM upgrade_configs
// websocket) with the `ws` client and server, bytes relayed both ways;
// upgrades the config does not enable are refused with 403, and a route can
// switch one off; CONNECT (upgrade_type CONNECT, connect_matcher, route
// connect_config) ends at the proxy and tunnels to a TCP upstream.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { connect, createServer as createNetServer } from 'node:net';
import type { Server as NetServer, Socket } from 'node:net';
import { once } from 'node:events';
import { WebSocket, WebSocketServer } from 'ws';
import type { RawData } from 'ws';
import type { Proxy } from '../../src/proxy/index.ts';
import { deadPort, get, hcmListener, startProxy, staticCluster } from './helpers.ts';

let proxy: Proxy;
let port: number;
let noUpgradePort: number;
let http: Server;
let wss: WebSocketServer;
let tcp: NetServer;
const sockets: Socket[] = [];

before(async () => {
  http = createServer((_req, res) => res.end('plain'));
  wss = new WebSocketServer({ server: http });
  wss.on('connection', (ws, req) => {
    ws.send(`hello ${req.url} ${req.headers['x-request-id'] ? 'with-id' : 'no-id'}`);
    ws.on('message', (data: RawData, isBinary: boolean) => ws.send(data, { binary: isBinary }));
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  tcp = createNetServer((s) => {
    sockets.push(s);
    s.on('data', (d: Buffer) => s.write(Buffer.from(d.toString().toUpperCase())));
    s.on('end', () => s.end());
  });
  tcp.listen(0, '127.0.0.1');
  await once(tcp, 'listening');
  const httpPort = (http.address() as { port: number }).port;
  const tcpPort = (tcp.address() as { port: number }).port;
  const dead = await deadPort();
  const routes = {
    name: 'up',
    virtual_hosts: [
      {
        name: 'all',
        domains: ['*'],
        routes: [
          { match: { connect_matcher: {} }, route: { cluster: 'tcp', upgrade_configs: [{ upgrade_type: 'CONNECT', connect_config: {} }] } },
          { match: { prefix: '/no-ws' }, route: { cluster: 'ws', upgrade_configs: [{ upgrade_type: 'websocket', enabled: false }] } },
          { match: { prefix: '/dead' }, route: { cluster: 'dead' } },
          { match: { prefix: '/' }, route: { cluster: 'ws' } },
        ],
      },
    ],
  };
  proxy = await startProxy({
    static_resources: {
      clusters: [staticCluster('ws', [httpPort]), staticCluster('tcp', [tcpPort]), staticCluster('dead', [dead])],
      listeners: [
        hcmListener('upgrades', routes, { hcm: { upgrade_configs: [{ upgrade_type: 'websocket' }, { upgrade_type: 'CONNECT' }] } }),
        hcmListener('plain', routes),
      ],
    },
  });
  port = proxy.listenerPort('upgrades')!;
  noUpgradePort = proxy.listenerPort('plain')!;
});

after(async () => {
  for (const s of sockets) s.destroy();
  for (const c of wss.clients) c.terminate();
  await proxy.stop();
  wss.close();
  http.closeAllConnections();
  http.close();
  tcp.close();
});

function open(p: number, path: string): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${p}${path}`);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`status ${res.statusCode}`)));
  });
}

function next(ws: WebSocket): Promise<RawData> {
  return new Promise((resolve) => ws.once('message', (d: RawData) => resolve(d)));
}

test('WebSocket echo through the proxy, text and a 1 MiB binary frame', async () => {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/chat`);
  const greeting = next(ws);
  await once(ws, 'open');
  assert.equal(String(await greeting), 'hello /chat with-id');
  for (let i = 0; i < 10; i++) {
    const reply = next(ws);
    ws.send(`msg ${i}`);
    assert.equal(String(await reply), `msg ${i}`);
  }
  const big = Buffer.alloc(1024 * 1024, 7);
  const reply = next(ws);
  ws.send(big);
  assert.ok(big.equals(Buffer.from((await reply) as Buffer)));
  ws.close(1000, 'bye');
  const [code] = await once(ws, 'close');
  assert.equal(code, 1000);
  assert.ok(proxy.stats.get('http.upgrades.downstream_cx_upgrades_total') >= 1);
  assert.ok(proxy.stats.get('cluster.ws.upstream_rq_101') >= 1);
});

test('plain requests still work on the same listener', async () => {
  const r = await get(port, '/plain');
  assert.equal(r.body, 'plain');
});

test('an upgrade the HCM does not enable is refused with 403', async () => {
  await assert.rejects(open(noUpgradePort, '/chat'), /status 403/);
});

test('a route can disable an upgrade the HCM enables', async () => {
  await assert.rejects(open(port, '/no-ws'), /status 403/);
});

test('WebSocket to an unreachable upstream: 503', async () => {
  await assert.rejects(open(port, '/dead'), /status 503/);
});

function connectTunnel(p: number, target: string): Promise<{ socket: Socket; head: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(p, '127.0.0.1', () => socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`));
    sockets.push(socket);
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      if (buf.length > end + 4) socket.unshift(Buffer.from(buf.slice(end + 4), 'latin1'));
      resolve({ socket, head: buf.slice(0, end) });
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('end', () => reject(new Error(`closed: ${buf}`)));
  });
}

test('CONNECT terminates at the proxy and tunnels bytes to a TCP upstream', async () => {
  const { socket, head } = await connectTunnel(port, 'example.internal:443');
  assert.match(head, /^HTTP\/1\.1 200 /);
  assert.doesNotMatch(head, /transfer-encoding/i);
  for (const word of ['alpha', 'beta', 'gamma']) {
    const reply = once(socket, 'data');
    socket.write(word);
    assert.equal(String((await reply)[0]), word.toUpperCase());
  }
  socket.end();
  await once(socket, 'close');
  assert.ok(proxy.stats.get('cluster.tcp.upstream_cx_total') >= 1);
});
