// envoy.filters.network.rbac before tcp_proxy, with real mTLS identities:
// an allowed peer reaches the TCP upstream, a denied one is closed before
// any byte is proxied; DENY, destination port and shadow rules; stats under
// `<stat_prefix>.rbac.`.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Proxy } from '../../src/proxy/index.ts';
import type { TcpEcho } from './helpers.ts';
import { startProxy, startTcpEcho, staticCluster, tcpProxyListener } from './helpers.ts';
import type { Pem, TestCa } from './tls-certs.ts';
import { makeCa, makeLeaf, spiffe } from './tls-certs.ts';
import { NETWORK_RBAC, serverTls, tlsExchange } from './rbac-helpers.ts';

let ca: TestCa;
let sleep: Pem;
let foo: Pem;
let echo: TcpEcho;
let proxy: Proxy;

function tcpListener(name: string, rbac: object): object {
  const filters = [{ name: 'envoy.filters.network.rbac', typed_config: { '@type': NETWORK_RBAC, stat_prefix: `${name}.`, ...rbac } }];
  return tcpProxyListener(name, 'echo', { transportSocket: serverTls(ca, sleep), filters });
}

const principal = (id: string): object => ({ authenticated: { principal_name: { exact: id } } });

before(async () => {
  ca = await makeCa('mesh-ca');
  sleep = await makeLeaf(ca, { uri: [spiffe('sleep')] });
  foo = await makeLeaf(ca, { uri: [spiffe('client', 'foo')] });
  echo = await startTcpEcho();
  proxy = await startProxy({
    static_resources: {
      clusters: [staticCluster('echo', [echo.port])],
      listeners: [
        tcpListener('allow-sleep', { rules: { action: 'ALLOW', policies: { p: { permissions: [{ any: true }], principals: [principal(spiffe('sleep'))] } } } }),
        tcpListener('deny-foo-ns', { rules: { action: 'DENY', policies: { p: { permissions: [{ any: true }], principals: [{ authenticated: { principal_name: { safe_regex: { regex: '.*/ns/foo/.*' } } } }] } } } }),
        tcpListener('allow-port-1', { rules: { action: 'ALLOW', policies: { p: { permissions: [{ destination_port: 1 }], principals: [{ any: true }] } } } }),
        tcpListener('allow-http-only', { rules: { action: 'ALLOW', policies: { p: { permissions: [{ header: { name: ':method', string_match: { exact: 'GET' } } }], principals: [{ any: true }] } } } }),
        tcpListener('shadow', { shadow_rules: { action: 'ALLOW', policies: { p: { permissions: [{ any: true }], principals: [principal(spiffe('sleep'))] } } } }),
      ],
    },
  });
});

after(async () => {
  await proxy?.stop();
  echo?.server.close();
});

const CASES: Array<{ name: string; listener: string; client: () => Pem; allowed: boolean }> = [
  { name: 'ALLOW principal: the named identity reaches the upstream', listener: 'allow-sleep', client: () => sleep, allowed: true },
  { name: 'ALLOW principal: another identity is closed', listener: 'allow-sleep', client: () => foo, allowed: false },
  { name: 'DENY namespace: foo is closed', listener: 'deny-foo-ns', client: () => foo, allowed: false },
  { name: 'DENY namespace: default passes', listener: 'deny-foo-ns', client: () => sleep, allowed: true },
  { name: 'destination_port mismatch is closed', listener: 'allow-port-1', client: () => sleep, allowed: false },
  { name: 'a header permission never matches TCP', listener: 'allow-http-only', client: () => sleep, allowed: false },
  { name: 'shadow rules never close', listener: 'shadow', client: () => foo, allowed: true },
];

for (const c of CASES) {
  test(c.name, async () => {
    const before = echo.accepted;
    const r = await tlsExchange(proxy.listenerPort(c.listener)!, ca, c.client(), 'hello');
    assert.ok(r.secure, 'the TLS handshake completes either way');
    if (c.allowed) assert.equal(r.reply, 'echo:hello');
    else {
      assert.equal(r.reply, '');
      assert.equal(echo.accepted, before, 'the upstream never saw the connection');
    }
  });
}

test('stats: <stat_prefix>.rbac.allowed / denied / shadow_denied', async () => {
  const stat = (n: string): number => proxy.stats.get(n) ?? 0;
  const a = stat('allow-sleep.rbac.allowed');
  const d = stat('allow-sleep.rbac.denied');
  await tlsExchange(proxy.listenerPort('allow-sleep')!, ca, sleep, 'x');
  await tlsExchange(proxy.listenerPort('allow-sleep')!, ca, foo, 'x');
  assert.equal(stat('allow-sleep.rbac.allowed') - a, 1);
  assert.equal(stat('allow-sleep.rbac.denied') - d, 1);
  const sd = stat('shadow.rbac.shadow_denied');
  await tlsExchange(proxy.listenerPort('shadow')!, ca, foo, 'x');
  assert.equal(stat('shadow.rbac.shadow_denied') - sd, 1);
});
