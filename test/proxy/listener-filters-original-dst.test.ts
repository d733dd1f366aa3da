// use_original_dst: virtualOutbound (Istio's 15001) restores a connection's
// original destination with original_dst and hands it to the listener for
// that port (a bind_to_port: false listener, Istio's 0.0.0.0_<port>),
// which runs its own listener filters and chains. On loopback the fallback
// resolver (the local address, without SO_ORIGINAL_DST) makes the
// destination the virtual listener's own port; a pluggable resolver stands
// in for the native SO_ORIGINAL_DST binding.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import type { Proxy } from '../../src/proxy/index.ts';
import { setOriginalDstResolver } from '../../src/proxy/index.ts';
import { HCM, ROUTER, deadPort, get, startProxy } from './helpers.ts';

const ORIGINAL_DST = 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst';
const HTTP_INSPECTOR = 'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector';

let proxy: Proxy;
let port: number;
const agent = new Agent({ keepAlive: false });

function answering(body: string, match?: object): object {
  return {
    filter_chain_match: match,
    filters: [
      {
        name: 'envoy.filters.network.http_connection_manager',
        typed_config: {
          '@type': HCM,
          stat_prefix: body,
          route_config: { name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: body } } }] }] },
          http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
        },
      },
    ],
  };
}

function outboundListener(p: number): object {
  return {
    name: `0.0.0.0_${p}`,
    address: { socket_address: { address: '0.0.0.0', port_value: p } },
    bind_to_port: false,
    listener_filters: [{ name: 'envoy.filters.listener.http_inspector', typed_config: { '@type': HTTP_INSPECTOR } }],
    filter_chains: [answering(`outbound-${p}`, { application_protocols: ['http/1.1'] })],
  };
}

before(async () => {
  port = await deadPort();
  proxy = await startProxy({
    static_resources: {
      listeners: [
        {
          name: 'virtualOutbound',
          address: { socket_address: { address: '127.0.0.1', port_value: port } },
          use_original_dst: true,
          listener_filters: [{ name: 'envoy.filters.listener.original_dst', typed_config: { '@type': ORIGINAL_DST } }],
          filter_chains: [answering('passthrough')],
        },
        outboundListener(port),
        outboundListener(9080),
      ],
    },
  });
});

after(async () => {
  setOriginalDstResolver(undefined);
  agent.destroy();
  await proxy?.stop();
});

test('the fallback resolver hands a connection to the listener of its destination port', async () => {
  const r = await get(port, '/', { agent });
  assert.equal(r.body, `outbound-${port}`);
  assert.equal(proxy.stats.get(`listener.0.0.0.0_${port}.downstream_cx_total`), 1, 'the target listener accepted it');
  assert.equal(proxy.listenerPort(`0.0.0.0_9080`), 9080, 'bind_to_port: false listeners never bind');
});

test('a native resolver (stand-in) redirects to the original port; an unknown port stays on virtualOutbound', async () => {
  setOriginalDstResolver(() => ({ address: '10.1.2.3', port: 9080 }));
  assert.equal((await get(port, '/', { agent })).body, 'outbound-9080');
  setOriginalDstResolver(() => ({ address: '10.1.2.3', port: 7777 }));
  assert.equal((await get(port, '/', { agent })).body, 'passthrough');
  setOriginalDstResolver(undefined);
});
