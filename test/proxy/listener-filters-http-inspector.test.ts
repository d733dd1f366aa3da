// http_inspector picks the filter chain by protocol on a plaintext port:
// HTTP/1.x requests reach the HCM chain, the HTTP/2 preface (h2c) reaches
// its own chain, and bytes that are not HTTP fall to the default chain.
// The peeked bytes are not consumed: each chain's upstream sees them all.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect } from 'node:net';
import type { Server, Socket } from 'node:net';
import { once } from 'node:events';
import type { Proxy } from '../../src/proxy/index.ts';
import { detectHttp } from '../../src/proxy/filters/listener/http-inspector/http-inspector.ts';
import { HCM, ROUTER, TCP_PROXY, get, startProxy, staticCluster } from './helpers.ts';

const HTTP_INSPECTOR = 'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector';

let proxy: Proxy;
const raw: Record<string, { server: Server; port: number; received: Buffer[] }> = {};

/** A TCP upstream that records what it receives and answers with its name. */
async function rawUpstream(name: string): Promise<void> {
  const received: Buffer[] = [];
  const server = createServer((s: Socket) => {
    s.on('data', (d: Buffer) => {
      received.push(d);
      s.write(name);
    });
    s.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  raw[name] = { server, port: (server.address() as { port: number }).port, received };
}

const tcpChain = (name: string, match?: object): object => ({
  filter_chain_match: match,
  filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY, stat_prefix: name, cluster: name } }],
});

before(async () => {
  await rawUpstream('h2c-upstream');
  await rawUpstream('tcp-upstream');
  proxy = await startProxy({
    static_resources: {
      clusters: [staticCluster('h2c-upstream', [raw['h2c-upstream'].port]), staticCluster('tcp-upstream', [raw['tcp-upstream'].port])],
      listeners: [
        {
          name: 'virtualInbound',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          listener_filters: [{ name: 'envoy.filters.listener.http_inspector', typed_config: { '@type': HTTP_INSPECTOR } }],
          // A server-first protocol never sends a byte: give up peeking and use what matched so far.
          listener_filters_timeout: '0.3s',
          continue_on_listener_filters_timeout: true,
          filter_chains: [
            {
              filter_chain_match: { application_protocols: ['http/1.0', 'http/1.1'] },
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': HCM,
                    stat_prefix: 'inbound_http',
                    codec_type: 'HTTP1',
                    route_config: { name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'http1-chain' } } }] }] },
                    http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
                  },
                },
              ],
            },
            tcpChain('h2c-upstream', { application_protocols: ['h2c'] }),
          ],
          default_filter_chain: tcpChain('tcp-upstream'),
        },
      ],
    },
  });
});

after(async () => {
  await proxy?.stop();
  for (const r of Object.values(raw)) r.server.close();
});

/** Sends `bytes` (maybe nothing) on a raw connection; resolves with the first reply. */
function exchange(bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(proxy.listenerPort('virtualInbound')!, '127.0.0.1', () => {
      if (bytes) s.write(bytes);
    });
    s.once('data', (d: Buffer) => {
      resolve(d.toString());
      s.destroy();
    });
    s.once('error', reject);
  });
}

test('the inspector classifies first bytes as Envoy does', () => {
  const cases: Array<[string, string]> = [
    ['GET / HTTP/1.1\r\n', 'http/1.1'],
    ['POST /x?y HTTP/1.0\r\n', 'http/1.0'],
    ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'h2c'],
    ['PRI * HTTP/2', 'need_more'],
    ['GET / HT', 'need_more'],
    ['\x16\x03\x01\x00', ''],
    ['SSH-2.0-OpenSSH\r\n', ''],
  ];
  for (const [input, want] of cases) assert.equal(detectHttp(Buffer.from(input, 'latin1')), want, JSON.stringify(input));
});

test('HTTP/1.1 goes to the HCM chain', async () => {
  const r = await get(proxy.listenerPort('virtualInbound')!, '/');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'http1-chain');
});

test('the h2c preface goes to its chain, with every peeked byte delivered upstream', async () => {
  const preface = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
  assert.equal(await exchange(preface), 'h2c-upstream');
  assert.ok(Buffer.concat(raw['h2c-upstream'].received).toString().startsWith(preface));
});

test('non-HTTP bytes and a silent client fall to the default chain', async () => {
  assert.equal(await exchange('\x00\x01binary-protocol\n'), 'tcp-upstream');
  assert.ok(Buffer.concat(raw['tcp-upstream'].received).toString().includes('binary-protocol'));
  // Nothing sent: after listener_filters_timeout the connection continues to the default chain.
  const port = proxy.listenerPort('virtualInbound')!;
  const stat = `listener.127.0.0.1_${port}.downstream_pre_cx_timeout`;
  const before = proxy.stats.get(stat);
  const s = connect(port, '127.0.0.1');
  await once(s, 'connect');
  const deadline = Date.now() + 5000;
  while (proxy.stats.get(stat) === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(proxy.stats.get(stat), before + 1);
  s.write('late');
  const [reply] = (await once(s, 'data')) as [Buffer];
  assert.equal(reply.toString(), 'tcp-upstream');
  s.destroy();
});
