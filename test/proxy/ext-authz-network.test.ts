// envoy.filters.network.ext_authz before tcp_proxy, with real mTLS
// identities and a real Authorization server run by this test: the
// CheckRequest carries addresses, principals, the peer certificate, SNI and
// destination labels from the node; OK reaches the TCP upstream (with the
// bytes sent while the answer was pending), a denial closes the connection
// before the upstream sees it; an unreachable authorizer closes unless
// failure_mode_allow; Mixer's cache hints decide repeated connections
// locally; stats under `ext_authz.<stat_prefix>.`.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { loadXdsProtos } from '../../src/xds/index.ts';
import type { Proxy } from '../../src/proxy/index.ts';
import type { TcpEcho } from './helpers.ts';
import { deadPort, startProxy, startTcpEcho, staticCluster, tcpProxyListener } from './helpers.ts';
import type { Pem, TestCa } from './tls-certs.ts';
import { makeCa, makeLeaf, spiffe } from './tls-certs.ts';
import { NETWORK_RBAC, mixerHints, serverTls, tlsExchange } from './rbac-helpers.ts';

const NETWORK_EXT_AUTHZ = 'type.googleapis.com/envoy.extensions.filters.network.ext_authz.v3.ExtAuthz';

let ca: TestCa;
let server: Pem;
let sleep: Pem;
let foo: Pem;
let slow: Pem;
let cached: Pem;
let echo: TcpEcho;
let authz: grpc.Server;
let proxy: Proxy;
const checks: any[] = [];


/** Decides by the client's SPIFFE id: sleep OK, foo denied, slow OK after 80 ms, cached OK with Mixer's hints. */
function check(call: grpc.ServerUnaryCall<any, any>, callback: grpc.sendUnaryData<any>): void {
  const req = call.request;
  checks.push(req);
  const principal: string = req.attributes.source.principal;
  const ok = { status: { code: 0 }, ok_response: {} };
  if (principal === spiffe('foo')) callback(null, { status: { code: 7 }, denied_response: { status: { code: 'Forbidden' } } });
  else if (principal === spiffe('slow')) setTimeout(() => callback(null, ok), 80);
  else if (principal === spiffe('cached')) callback(null, { ...ok, dynamic_metadata: mixerHints(60_000, 2, ['source.principal', 'context.protocol']) });
  else callback(null, ok);
}

function tcpListener(name: string, cluster: string, extra: object = {}, before: object[] = []): object {
  const extAuthz = { name: 'envoy.filters.network.ext_authz', typed_config: { '@type': NETWORK_EXT_AUTHZ, stat_prefix: name, grpc_service: { envoy_grpc: { cluster_name: cluster }, timeout: '0.5s' }, transport_api_version: 'V3', ...extra } };
  return tcpProxyListener(name, 'echo', { transportSocket: serverTls(ca, server), filters: [...before, extAuthz] });
}

before(async () => {
  ca = await makeCa('mesh-ca');
  server = await makeLeaf(ca, { uri: [spiffe('tcp-echo')] });
  sleep = await makeLeaf(ca, { uri: [spiffe('sleep')] });
  foo = await makeLeaf(ca, { uri: [spiffe('foo')] });
  slow = await makeLeaf(ca, { uri: [spiffe('slow')] });
  cached = await makeLeaf(ca, { uri: [spiffe('cached')] });
  echo = await startTcpEcho();
  authz = new grpc.Server();
  authz.addService(loadXdsProtos().serviceDefinition('envoy.service.auth.v3.Authorization'), { Check: check });
  const authzPort = await new Promise<number>((resolve, reject) => authz.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const h2 = { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } } };
  proxy = await startProxy({
    node: { id: 'sidecar~127.0.0.1~tcp-echo-v1.default~default.svc.cluster.local', cluster: 'tcp-echo', metadata: { LABELS: { app: 'tcp-echo', version: 'v1' } } },
    static_resources: {
      clusters: [staticCluster('echo', [echo.port]), staticCluster('ext-authz', [authzPort], h2), staticCluster('ext-authz-dead', [await deadPort()])],
      listeners: [
        tcpListener('authz', 'ext-authz', { include_peer_certificate: true, include_tls_session: true, bootstrap_metadata_labels_key: 'LABELS' }),
        tcpListener('authz-dead', 'ext-authz-dead'),
        tcpListener('authz-open', 'ext-authz-dead', { failure_mode_allow: true }),
        // Istio's CUSTOM action on a TCP port: a shadow engine marks the connections to check (here foo's only).
        tcpListener('custom', 'ext-authz', { filter_enabled_metadata: { filter: 'envoy.filters.network.rbac', path: [{ key: 'istio_ext_authz_shadow_effective_policy_id' }], value: { string_match: { prefix: 'istio-ext-authz' } } } }, [
          { name: 'envoy.filters.network.rbac', typed_config: { '@type': NETWORK_RBAC, stat_prefix: 'tcp.', shadow_rules_stat_prefix: 'istio_ext_authz_', shadow_rules: { action: 'ALLOW', policies: { 'istio-ext-authz-ns[default]-policy[custom]-rule[0]': { permissions: [{ any: true }], principals: [{ authenticated: { principal_name: { exact: spiffe('foo') } } }] } } } } },
        ]),
      ],
    },
  });
});

after(async () => {
  await proxy?.stop();
  echo?.server.close();
  authz?.forceShutdown();
});

const port = (n: string): number => proxy.listenerPort(n)!;
const stat = (n: string): number => proxy.stats.get(n) ?? 0;

test('allowed: the CheckRequest carries addresses, principals, certificate, SNI and node labels; bytes reach the upstream', async () => {
  const r = await tlsExchange(port('authz'), ca, sleep, 'hello');
  assert.equal(r.reply, 'echo:hello');
  const a = checks[checks.length - 1].attributes;
  assert.equal(a.source.principal, spiffe('sleep'));
  assert.equal(a.destination.principal, spiffe('tcp-echo'));
  assert.equal(a.source.address.socket_address.address, '127.0.0.1');
  assert.equal(a.destination.address.socket_address.port_value, port('authz'));
  assert.match(decodeURIComponent(a.source.certificate), /^-----BEGIN CERTIFICATE-----/);
  assert.equal(a.tls_session.sni, 'server.test');
  assert.deepEqual({ ...a.destination.labels }, { app: 'tcp-echo', version: 'v1' });
  assert.equal(a.request?.http, undefined, 'a TCP check has no HTTP request');
});

test('denied: the connection is closed before the upstream sees it', async () => {
  const before = echo.accepted;
  const closed = stat('ext_authz.authz.cx_closed');
  const r = await tlsExchange(port('authz'), ca, foo, 'hello');
  assert.ok(r.secure, 'the TLS handshake completes, the check comes after');
  assert.equal(r.reply, '');
  assert.equal(echo.accepted, before);
  assert.equal(stat('ext_authz.authz.cx_closed') - closed, 1);
});

test('bytes sent while the answer is pending are delivered once it allows', async () => {
  const r = await tlsExchange(port('authz'), ca, slow, 'early');
  assert.equal(r.reply, 'echo:early');
});

test('the authorizer unreachable: closed without failure_mode_allow, passed with it', async () => {
  const closed = await tlsExchange(port('authz-dead'), ca, sleep, 'x');
  assert.equal(closed.reply, '');
  assert.equal(stat('ext_authz.authz-dead.error'), 1);
  const open = await tlsExchange(port('authz-open'), ca, sleep, 'x');
  assert.equal(open.reply, 'echo:x');
  assert.equal(stat('ext_authz.authz-open.failure_mode_allowed'), 1);
});

test("Mixer's cache hints: repeated connections of the same identity are decided locally, up to valid_use_count", async () => {
  const calls = checks.length;
  for (let i = 0; i < 3; i++) assert.equal((await tlsExchange(port('authz'), ca, cached, `c${i}`)).reply, `echo:c${i}`);
  assert.equal(checks.length - calls, 1, 'the first connection asks; the next two use the cached answer');
  assert.equal(stat('ext_authz.authz.check_cache_hit'), 2);
  await tlsExchange(port('authz'), ca, cached, 'again');
  assert.equal(checks.length - calls, 2, 'after valid_use_count uses the authorizer is asked again');
});

test("Istio's CUSTOM on TCP: only connections the network shadow engine matched are checked", async () => {
  const calls = checks.length;
  assert.equal((await tlsExchange(port('custom'), ca, sleep, 'not-checked')).reply, 'echo:not-checked');
  assert.equal(checks.length, calls, 'sleep is not in the CUSTOM policy: no Check');
  assert.equal(stat('ext_authz.custom.disabled'), 1);
  assert.equal(stat('tcp.rbac.istio_ext_authz_shadow_denied'), 1, 'shadow stats carry shadow_rules_stat_prefix');
  assert.equal((await tlsExchange(port('custom'), ca, foo, 'checked')).reply, '');
  assert.equal(checks.length, calls + 1, "foo's connection is checked, and denied");
  assert.equal(stat('ext_authz.custom.denied'), 1);
});

test('stats: total, ok, denied and the active gauge back at zero', () => {
  assert.ok(stat('ext_authz.authz.total') >= 5);
  assert.ok(stat('ext_authz.authz.ok') >= 5);
  assert.equal(stat('ext_authz.authz.denied'), 1);
  assert.equal(stat('ext_authz.authz.active'), 0);
});

test('bad config names the field: no stat_prefix, no envoy_grpc cluster', async () => {
  const listener = (config: object): object => tcpProxyListener('bad', 'echo', { filters: [{ name: 'envoy.filters.network.ext_authz', typed_config: { '@type': NETWORK_EXT_AUTHZ, ...config } }] });
  const start = (config: object): Promise<Proxy> => startProxy({ static_resources: { clusters: [staticCluster('echo', [1])], listeners: [listener(config)] } });
  await assert.rejects(start({ grpc_service: { envoy_grpc: { cluster_name: 'x' } } }), /stat_prefix/);
  await assert.rejects(start({ stat_prefix: 'bad', grpc_service: { google_grpc: { target_uri: 'x' } } }), /grpc_service\.envoy_grpc\.cluster_name/);
});
