// The proxy side of capture: ORIGINAL_DST clusters (Istio's
// PassthroughCluster, lb_policy CLUSTER_PROVIDED) connect each connection
// to its own original destination, and use_original_dst on a listener
// restores that destination without an explicit original_dst filter (as
// Envoy does; Istio's virtualOutbound lists none). A stand-in resolver plays
// SO_ORIGINAL_DST on loopback. A connection whose destination was never
// restored is refused rather than sent back to the proxy itself (a loop).

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import type { Server } from 'node:net';
import { after, before, test } from 'node:test';
import { decodeCluster, decodeJson, setOriginalDstResolver } from '../../src/proxy/index.ts';
import type { Proxy } from '../../src/proxy/index.ts';
import { TypeUrl } from '../../src/xds/index.ts';
import { HCM, ROUTER, TCP_PROXY, deadPort, get, startProxy, startUpstream } from '../proxy/helpers.ts';
import type { Upstream } from '../proxy/helpers.ts';

const PASSTHROUGH = { name: 'PassthroughCluster', type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED', connect_timeout: '1s' };
let proxy: Proxy;
let echo: Server;
let echoPort = 0;
let http: Upstream;
let tcpPort = 0;
let httpPort = 0;
let plainPort = 0;
let echoed = 0;

function tcpListener(name: string, port: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: port } },
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY, stat_prefix: name, cluster: 'PassthroughCluster' } }] }],
    ...extra,
  };
}

before(async () => {
  echo = createServer((s) => {
    echoed++;
    s.pipe(s);
  }).listen(0, '127.0.0.1');
  await once(echo, 'listening');
  echoPort = (echo.address() as { port: number }).port;
  http = await startUpstream('original');
  [tcpPort, httpPort, plainPort] = [await deadPort(), await deadPort(), await deadPort()];
  proxy = await startProxy({
    static_resources: {
      clusters: [PASSTHROUGH],
      listeners: [
        tcpListener('virtualOutbound', tcpPort, { use_original_dst: true }),
        {
          name: 'http',
          address: { socket_address: { address: '127.0.0.1', port_value: httpPort } },
          use_original_dst: true,
          filter_chains: [{
            filters: [{
              name: 'envoy.filters.network.http_connection_manager',
              typed_config: {
                '@type': HCM,
                stat_prefix: 'http',
                route_config: { name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'PassthroughCluster' } }] }] },
                http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
              },
            }],
          }],
        },
        tcpListener('plain', plainPort),
      ],
    },
  });
});

after(async () => {
  setOriginalDstResolver(undefined);
  await proxy?.stop();
  await http?.close();
  echo?.close();
});

function roundTrip(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.length >= text.length) s.end();
    });
    s.on('error', () => resolve(got));
    s.on('close', () => resolve(got));
    s.write(text);
  });
}

test('ORIGINAL_DST clusters need CLUSTER_PROVIDED and no load_assignment', () => {
  const c = decodeCluster(decodeJson(TypeUrl.Cluster, PASSTHROUGH, 'Cluster'));
  assert.equal(c.type, 'ORIGINAL_DST');
  assert.throws(() => decodeCluster(decodeJson(TypeUrl.Cluster, { ...PASSTHROUGH, lb_policy: 'ROUND_ROBIN' }, 'Cluster')), /PassthroughCluster.*lb_policy.*CLUSTER_PROVIDED/);
});

test('tcp_proxy to an ORIGINAL_DST cluster reaches the restored destination (use_original_dst alone restores it)', async () => {
  setOriginalDstResolver(() => ({ address: '127.0.0.1', port: echoPort }));
  try {
    assert.equal(await roundTrip(tcpPort, 'hello through the passthrough'), 'hello through the passthrough');
    assert.equal(echoed, 1);
    assert.equal(proxy.stats.get('cluster.PassthroughCluster.upstream_cx_total'), 1);
  } finally {
    setOriginalDstResolver(undefined);
  }
});

test('the router sends a request on an ORIGINAL_DST cluster to the restored destination', async () => {
  setOriginalDstResolver(() => ({ address: '127.0.0.1', port: http.port }));
  try {
    const r = await get(httpPort, '/where', { host: 'unknown.example.com' });
    assert.equal(r.status, 200);
    assert.equal(r.json<{ upstream: string; url: string }>().upstream, 'original');
  } finally {
    setOriginalDstResolver(undefined);
  }
});

test('without a restored destination the connection is refused, not looped back into the proxy', async () => {
  setOriginalDstResolver(() => ({ address: '127.0.0.1', port: echoPort }));
  try {
    const before = echoed;
    assert.equal(await roundTrip(plainPort, 'nowhere'), '');
    assert.equal(echoed, before, 'nothing reached any upstream');
    assert.equal(proxy.stats.get('cluster.PassthroughCluster.upstream_cx_none_healthy'), 1);
  } finally {
    setOriginalDstResolver(undefined);
  }
});
