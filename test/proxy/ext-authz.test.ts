// envoy.filters.http.ext_authz (gRPC) through a real proxy with mTLS: an
// Authorization server this test runs sees the CheckRequest (addresses,
// principals, method, path, headers, body); OK adds headers, a denial
// returns the server's status, headers and body with flag UAEX; a failed
// call answers 403 unless failure_mode_allow; Mixer's cache hints
// (dynamic_metadata["istio.mixer"]) answer repeated requests locally.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadXdsProtos } from '../../src/xds/index.ts';
import type { Proxy } from '../../src/proxy/index.ts';
import type { Upstream } from './helpers.ts';
import { deadPort, startProxy, startUpstream, staticCluster } from './helpers.ts';
import type { Pem, TestCa } from './tls-certs.ts';
import { makeCa, makeLeaf, spiffe } from './tls-certs.ts';
import { EXT_AUTHZ, mixerHints, rbacFilter, securedHttpListener, serverTls, tlsGet } from './rbac-helpers.ts';

let ca: TestCa;
let server: Pem;
let sleep: Pem;
let app: Upstream;
let authz: grpc.Server;
let proxy: Proxy;
const checks: any[] = [];
const logDir = mkdtempSync(join(tmpdir(), 'ext-authz-'));
const accessLog = join(logDir, 'access.log');


function check(call: grpc.ServerUnaryCall<any, any>, callback: grpc.sendUnaryData<any>): void {
  const req = call.request;
  checks.push(req);
  const path: string = req.attributes.request.http.path;
  if (path.startsWith('/slow')) return; // never answers: the proxy times out
  if (path.startsWith('/deny')) {
    callback(null, {
      status: { code: 7, message: 'denied' },
      denied_response: { status: { code: 'Unauthorized' }, headers: [{ header: { key: 'x-reason', value: 'policy' } }], body: 'denied by test' },
    });
    return;
  }
  const ok = { status: { code: 0 }, ok_response: { headers: [{ header: { key: 'x-authz', value: 'yes' } }], headers_to_remove: ['x-secret'] } };
  if (path.startsWith('/cached')) {
    callback(null, { ...ok, dynamic_metadata: mixerHints(60_000, 2, ['request.url_path', 'source.principal']) });
    return;
  }
  callback(null, ok);
}

function extAuthz(cluster: string, extra: object = {}): object {
  return { name: 'envoy.filters.http.ext_authz', typed_config: { '@type': EXT_AUTHZ, grpc_service: { envoy_grpc: { cluster_name: cluster }, timeout: '0.3s' }, transport_api_version: 'V3', ...extra } };
}

before(async () => {
  ca = await makeCa('mesh-ca');
  server = await makeLeaf(ca, { uri: [spiffe('productpage')] });
  sleep = await makeLeaf(ca, { uri: [spiffe('sleep')] });
  app = await startUpstream('app');
  authz = new grpc.Server();
  authz.addService(loadXdsProtos().serviceDefinition('envoy.service.auth.v3.Authorization'), { Check: check });
  const authzPort = await new Promise<number>((resolve, reject) => authz.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const dead = await deadPort();
  const tls = serverTls(ca, server);
  const main = securedHttpListener('authz', 'app', [extAuthz('ext-authz', { with_request_body: { max_request_bytes: 1024, allow_partial_message: true } })], tls) as any;
  main.filter_chains[0].filters[0].typed_config.access_log = [{ name: 'envoy.access_loggers.file', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog', path: accessLog } }];
  proxy = await startProxy({
    static_resources: {
      clusters: [staticCluster('app', [app.port]), staticCluster('ext-authz', [authzPort], { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } } }), staticCluster('ext-authz-dead', [dead])],
      listeners: [
        main,
        securedHttpListener('authz-dead', 'app', [extAuthz('ext-authz-dead')], tls),
        securedHttpListener('authz-open', 'app', [extAuthz('ext-authz-dead', { failure_mode_allow: true, failure_mode_allow_header_add: true })], tls),
        securedHttpListener('authz-custom', 'app', [
          rbacFilter({ shadow_rules: { action: 'ALLOW', policies: { 'istio-ext-authz-ns[default]-policy[custom]-rule[0]': { permissions: [{ url_path: { path: { prefix: '/deny' } } }], principals: [{ any: true }] } } }, shadow_rules_stat_prefix: 'istio_ext_authz_' }),
          extAuthz('ext-authz', { filter_enabled_metadata: { filter: 'envoy.filters.http.rbac', path: [{ key: 'istio_ext_authz_shadow_effective_policy_id' }], value: { string_match: { prefix: 'istio-ext-authz' } } } }),
        ], tls),
        securedHttpListener('authz-timeout', 'app', [extAuthz('ext-authz', { status_on_error: { code: 'ServiceUnavailable' } })], tls),
      ],
    },
  });
});

after(async () => {
  await proxy?.stop();
  await app?.close();
  authz?.forceShutdown();
});

const port = (n: string): number => proxy.listenerPort(n)!;
const stat = (n: string): number => proxy.stats.get(n) ?? 0;

test('allowed: the CheckRequest carries addresses, principals, method, path, headers and body; OK edits headers', async () => {
  const r = await tlsGet(port('authz'), '/allow?q=1', ca, sleep, { method: 'POST', headers: { 'x-user': 'alice', 'x-secret': 's3' }, body: 'hello' });
  assert.equal(r.status, 200);
  const up = r.json();
  assert.equal(up.headers['x-authz'], 'yes');
  assert.equal(up.headers['x-secret'], undefined);
  assert.equal(up.body, 'hello', 'the buffered body still reaches the upstream');
  const a = checks[checks.length - 1].attributes;
  assert.equal(a.source.principal, spiffe('sleep'));
  assert.equal(a.destination.principal, spiffe('productpage'));
  assert.equal(a.source.address.socket_address.address, '127.0.0.1');
  assert.equal(a.destination.address.socket_address.port_value, port('authz'));
  assert.equal(a.request.http.method, 'POST');
  assert.equal(a.request.http.path, '/allow?q=1');
  assert.equal(a.request.http.headers['x-user'], 'alice');
  assert.equal(a.request.http.body, 'hello');
  assert.equal(stat('http.authz.ext_authz.ok') >= 1, true);
});

test('denied: the server status, headers and body reach the client, flagged UAEX', async () => {
  const denied = stat('http.authz.ext_authz.denied');
  const r = await tlsGet(port('authz'), '/deny', ca, sleep);
  assert.equal(r.status, 401);
  assert.equal(r.body, 'denied by test');
  assert.equal(r.headers['x-reason'], 'policy');
  assert.equal(stat('http.authz.ext_authz.denied') - denied, 1);
  await new Promise((res) => setTimeout(res, 50));
  const log = readFileSync(accessLog, 'utf8');
  assert.match(log, /"GET \/deny HTTP\/1\.1" 401 UAEX/);
});

test('the authorizer unreachable: 403 UAEX without failure_mode_allow', async () => {
  const r = await tlsGet(port('authz-dead'), '/', ca, sleep);
  assert.equal(r.status, 403);
  assert.ok(stat('http.authz-dead.ext_authz.error') >= 1);
});

test('failure_mode_allow lets the request through and marks it', async () => {
  const r = await tlsGet(port('authz-open'), '/', ca, sleep);
  assert.equal(r.status, 200);
  assert.equal(r.json().headers['x-envoy-auth-failure-mode-allowed'], 'true');
  assert.ok(stat('http.authz-open.ext_authz.failure_mode_allowed') >= 1);
});

test('a check timeout answers status_on_error', async () => {
  const r = await tlsGet(port('authz-timeout'), '/slow', ca, sleep);
  assert.equal(r.status, 503);
});

test("Mixer's cache hints: repeated requests with the same referenced attributes are answered locally, up to valid_use_count", async () => {
  const calls = (): number => checks.filter((c) => c.attributes.request.http.path.startsWith('/cached')).length;
  const base = calls();
  for (let i = 0; i < 3; i++) assert.equal((await tlsGet(port('authz'), '/cached/a', ca, sleep, { headers: { 'x-n': String(i) } })).status, 200);
  assert.equal(calls() - base, 1, 'one Check, two answers from the cache');
  assert.equal(stat('http.authz.ext_authz.check_cache_hit'), 2);
  await tlsGet(port('authz'), '/cached/a', ca, sleep);
  assert.equal(calls() - base, 2, 'uses exhausted: checked again');
  await tlsGet(port('authz'), '/cached/b', ca, sleep);
  assert.equal(calls() - base, 3, 'another url_path is another key');
});

test("Istio's CUSTOM action: only requests the shadow RBAC engine matched are checked (filter_enabled_metadata)", async () => {
  const before = checks.length;
  const open = await tlsGet(port('authz-custom'), '/public', ca, sleep);
  assert.equal(open.status, 200);
  assert.equal(checks.length, before, 'not matched: no Check call');
  const denied = await tlsGet(port('authz-custom'), '/deny/x', ca, sleep);
  assert.equal(denied.status, 401);
  assert.equal(checks.length, before + 1);
});
