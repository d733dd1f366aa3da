// envoy.filters.http.rbac through a real proxy with real mTLS identities:
// each permission and principal kind, ALLOW / DENY / LOG, shadow rules,
// per-route overrides and Envoy's stats and 403 body.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Proxy } from '../../src/proxy/index.ts';
import { decodeJson } from '../../src/proxy/index.ts';
import type { Upstream } from './helpers.ts';
import { startProxy, startUpstream, staticCluster } from './helpers.ts';
import type { Pem, TestCa } from './tls-certs.ts';
import { makeCa, makeLeaf, spiffe } from './tls-certs.ts';
import { rbacFilter, securedHttpListener, serverTls, tlsGet } from './rbac-helpers.ts';

let ca: TestCa;
let server: Pem;
let sleep: Pem;
let foo: Pem;
let dnsOnly: Pem;
let app: Upstream;
let proxy: Proxy;

const SLEEP = spiffe('sleep');
const FOO = spiffe('client', 'foo');
const exact = (v: string): object => ({ exact: v });
const principalName = (m: object): object => ({ authenticated: { principal_name: m } });
const policy = (permissions: object[], principals: object[]): object => ({ permissions, principals });
const rules = (action: string, policies: Record<string, object>): object => ({ rules: { action, policies } });
const any = { any: true };

/** Each case: a listener name and its RBAC filter config. */
const LISTENERS: Record<string, object> = {
  'allow-principal': rules('ALLOW', { p: policy([any], [principalName(exact(SLEEP))]) }),
  'deny-header': rules('DENY', { p: policy([{ header: { name: 'x-block', present_match: true } }], [any]) }),
  'allow-get-public': rules('ALLOW', {
    p: policy([{ and_rules: { rules: [{ header: { name: ':method', string_match: exact('GET') } }, { url_path: { path: { prefix: '/public' } } }] } }], [any]),
  }),
  'allow-not-namespace': rules('ALLOW', { p: policy([any], [{ not_id: { authenticated: { principal_name: { safe_regex: { regex: '.*/ns/foo/.*' } } } } }]) }),
  'allow-direct-ip': rules('ALLOW', { p: policy([any], [{ direct_remote_ip: { address_prefix: '127.0.0.1', prefix_len: 32 } }]) }),
  'allow-remote-ip': rules('ALLOW', { p: policy([any], [{ remote_ip: { address_prefix: '10.0.0.0', prefix_len: 8 } }]) }),
  'allow-source-ip-other': rules('ALLOW', { p: policy([any], [{ source_ip: { address_prefix: '192.168.0.0', prefix_len: 16 } }]) }),
  'deny-port-range': rules('DENY', { p: policy([{ destination_port_range: { start: 1, end: 65536 } }], [any]) }),
  'allow-not-port-1': rules('ALLOW', { p: policy([{ not_rule: { destination_port: 1 } }], [any]) }),
  'allow-dest-ip': rules('ALLOW', { p: policy([{ destination_ip: { address_prefix: '127.0.0.0', prefix_len: 8 } }], [any]) }),
  'allow-sni': rules('ALLOW', { p: policy([{ requested_server_name: exact('allowed.example') }], [any]) }),
  'allow-or-paths': rules('ALLOW', { p: policy([{ or_rules: { rules: [{ url_path: { path: exact('/a') } }, { url_path: { path: { suffix: '.css' } } }] } }], [{ or_ids: { ids: [principalName(exact(SLEEP)), principalName(exact(FOO))] } }]) }),
  'allow-and-ids': rules('ALLOW', { p: policy([any], [{ and_ids: { ids: [principalName({ prefix: 'spiffe://cluster.local/' }), { header: { name: 'x-user', string_match: exact('alice') } }] } }]) }),
  'allow-authenticated': rules('ALLOW', { p: policy([any], [{ authenticated: {} }]) }),
  'allow-dns-san': rules('ALLOW', { p: policy([any], [principalName(exact('dns.example'))]) }),
  'allow-host': rules('ALLOW', { p: policy([{ header: { name: ':authority', string_match: { prefix: 'good.' } } }], [any]) }),
  'allow-empty': rules('ALLOW', {}),
  'deny-empty': rules('DENY', {}),
  'log-header': rules('LOG', { p: policy([{ header: { name: 'x-log', present_match: true } }], [any]) }),
  'shadow-only': { shadow_rules: { action: 'DENY', policies: { p: policy([any], [principalName(exact(SLEEP))]) } }, shadow_rules_stat_prefix: 'istio_dry_run_' },
};

before(async () => {
  ca = await makeCa('mesh-ca');
  server = await makeLeaf(ca, { uri: [spiffe('server')] });
  sleep = await makeLeaf(ca, { uri: [SLEEP] });
  foo = await makeLeaf(ca, { uri: [FOO] });
  dnsOnly = await makeLeaf(ca, { dns: ['dns.example'] });
  app = await startUpstream('app');
  const tls = serverTls(ca, server, false);
  const listeners = Object.entries(LISTENERS).map(([name, cfg]) => securedHttpListener(name, 'app', [rbacFilter(cfg)], tls));
  // Per-route override: RBACPerRoute on /open lifts the deny-all rules.
  const perRoute = securedHttpListener('per-route', 'app', [rbacFilter(rules('DENY', { all: policy([any], [any]) }))], tls) as any;
  const hcm = perRoute.filter_chains[0].filters[0].typed_config;
  hcm.route_config.virtual_hosts[0].routes.unshift({
    match: { prefix: '/open' },
    route: { cluster: 'app' },
    typed_per_filter_config: { 'envoy.filters.http.rbac': { '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute', rbac: {} } },
  });
  listeners.push(perRoute);
  proxy = await startProxy({ static_resources: { clusters: [staticCluster('app', [app.port])], listeners } });
});

after(async () => {
  await proxy?.stop();
  await app?.close();
});

const port = (name: string): number => proxy.listenerPort(name)!;
const stat = (name: string): number => proxy.stats.get(name) ?? 0;

interface Case {
  readonly name: string;
  readonly listener: string;
  readonly client?: () => Pem | undefined;
  readonly path?: string;
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly servername?: string;
  readonly want: 200 | 403;
}

const CASES: Case[] = [
  { name: 'principal exact: the named identity is allowed', listener: 'allow-principal', client: () => sleep, want: 200 },
  { name: 'principal exact: another identity is denied', listener: 'allow-principal', client: () => foo, want: 403 },
  { name: 'principal exact: no certificate is denied', listener: 'allow-principal', client: () => undefined, want: 403 },
  { name: 'DENY header present', listener: 'deny-header', headers: { 'x-block': '1' }, want: 403 },
  { name: 'DENY header absent', listener: 'deny-header', want: 200 },
  { name: 'method and path prefix: GET /public', listener: 'allow-get-public', path: '/public/x', want: 200 },
  { name: 'method and path prefix: POST /public', listener: 'allow-get-public', path: '/public/x', method: 'POST', want: 403 },
  { name: 'method and path prefix: GET /private', listener: 'allow-get-public', path: '/private', want: 403 },
  { name: 'url_path ignores the query', listener: 'allow-get-public', path: '/public?x=/private', want: 200 },
  { name: 'not_id namespace: default is allowed', listener: 'allow-not-namespace', client: () => sleep, want: 200 },
  { name: 'not_id namespace: foo is denied', listener: 'allow-not-namespace', client: () => foo, want: 403 },
  { name: 'direct_remote_ip 127.0.0.1/32', listener: 'allow-direct-ip', want: 200 },
  { name: 'direct_remote_ip ignores x-forwarded-for', listener: 'allow-source-ip-other', headers: { 'x-forwarded-for': '192.168.1.1' }, want: 403 },
  { name: 'remote_ip from x-forwarded-for', listener: 'allow-remote-ip', headers: { 'x-forwarded-for': '1.2.3.4, 10.1.2.3' }, want: 200 },
  { name: 'remote_ip without x-forwarded-for is the peer', listener: 'allow-remote-ip', want: 403 },
  { name: 'destination_port_range covers the listener port', listener: 'deny-port-range', want: 403 },
  { name: 'not_rule destination_port 1', listener: 'allow-not-port-1', want: 200 },
  { name: 'destination_ip 127.0.0.0/8', listener: 'allow-dest-ip', want: 200 },
  { name: 'requested_server_name: matching SNI', listener: 'allow-sni', servername: 'allowed.example', want: 200 },
  { name: 'requested_server_name: other SNI', listener: 'allow-sni', servername: 'other.example', want: 403 },
  { name: 'or_rules/or_ids: exact path', listener: 'allow-or-paths', client: () => foo, path: '/a', want: 200 },
  { name: 'or_rules/or_ids: suffix path', listener: 'allow-or-paths', client: () => sleep, path: '/x/y.css', want: 200 },
  { name: 'or_rules: other path', listener: 'allow-or-paths', client: () => sleep, path: '/b', want: 403 },
  { name: 'or_ids: no identity', listener: 'allow-or-paths', client: () => undefined, path: '/a', want: 403 },
  { name: 'and_ids: identity and header', listener: 'allow-and-ids', headers: { 'x-user': 'alice' }, want: 200 },
  { name: 'and_ids: identity without header', listener: 'allow-and-ids', want: 403 },
  { name: 'authenticated without a name: any certificate', listener: 'allow-authenticated', client: () => foo, want: 200 },
  { name: 'authenticated without a name: plaintext identity missing', listener: 'allow-authenticated', client: () => undefined, want: 403 },
  { name: 'principal_name falls back to the DNS SAN', listener: 'allow-dns-san', client: () => dnsOnly, want: 200 },
  { name: ':authority header', listener: 'allow-host', headers: { host: 'good.example' }, want: 200 },
  { name: ':authority header mismatch', listener: 'allow-host', headers: { host: 'bad.example' }, want: 403 },
  { name: 'ALLOW with no policies denies all', listener: 'allow-empty', want: 403 },
  { name: 'DENY with no policies allows all', listener: 'deny-empty', want: 200 },
  { name: 'LOG never denies', listener: 'log-header', headers: { 'x-log': '1' }, want: 200 },
  { name: 'shadow rules never deny', listener: 'shadow-only', want: 200 },
  { name: 'RBACPerRoute without rules disables the filter on its route', listener: 'per-route', path: '/open', want: 200 },
  { name: 'other routes keep the listener rules', listener: 'per-route', path: '/closed', want: 403 },
];

for (const c of CASES) {
  test(c.name, async () => {
    const client = c.client ? c.client() : sleep;
    const r = await tlsGet(port(c.listener), c.path ?? '/', ca, client, { method: c.method, headers: c.headers, servername: c.servername });
    assert.equal(r.status, c.want, r.body);
    if (c.want === 403) assert.equal(r.body, 'RBAC: access denied');
    else assert.equal(r.json().upstream, 'app');
  });
}

test('stats: allowed and denied under http.<prefix>.rbac., logged for LOG, shadow stats with their prefix', async () => {
  const before = { allowed: stat('http.allow-principal.rbac.allowed'), denied: stat('http.allow-principal.rbac.denied') };
  await tlsGet(port('allow-principal'), '/', ca, sleep);
  await tlsGet(port('allow-principal'), '/', ca, foo);
  await tlsGet(port('allow-principal'), '/', ca, foo);
  assert.equal(stat('http.allow-principal.rbac.allowed') - before.allowed, 1);
  assert.equal(stat('http.allow-principal.rbac.denied') - before.denied, 2);
  const logged = stat('http.log-header.rbac.logged');
  await tlsGet(port('log-header'), '/', ca, sleep, { headers: { 'x-log': '1' } });
  await tlsGet(port('log-header'), '/', ca, sleep);
  assert.equal(stat('http.log-header.rbac.logged') - logged, 1);
  const shadowDenied = stat('http.shadow-only.rbac.istio_dry_run_shadow_denied');
  const shadowAllowed = stat('http.shadow-only.rbac.istio_dry_run_shadow_allowed');
  await tlsGet(port('shadow-only'), '/', ca, sleep);
  await tlsGet(port('shadow-only'), '/', ca, foo);
  assert.equal(stat('http.shadow-only.rbac.istio_dry_run_shadow_denied') - shadowDenied, 1);
  assert.equal(stat('http.shadow-only.rbac.istio_dry_run_shadow_allowed') - shadowAllowed, 1);
});

test('a bad RBAC config is rejected with the field named and the old listeners keep serving', async () => {
  const bad = securedHttpListener('bad', 'app', [rbacFilter(rules('ALLOW', { p: policy([{ destination_ip: { address_prefix: 'not-an-ip', prefix_len: 8 } }], [any]) }))], undefined);
  const LISTENER = 'type.googleapis.com/envoy.config.listener.v3.Listener';
  await assert.rejects(proxy.applyListeners([decodeJson(LISTENER, bad, 'bad')], 'v-bad'), /policies\["p"\]\.permissions\[0\]\.destination_ip/);
  const r = await tlsGet(port('allow-principal'), '/', ca, sleep);
  assert.equal(r.status, 200);
});
