// Pilot's security translation, table-driven: AuthorizationPolicy -> RBAC
// (HTTP and network) and ext_authz, RequestAuthentication -> jwt_authn
// (inline keys, control-plane JWKS fetch), PeerAuthentication -> the
// virtualInbound chains. Every generated listener must encode as Envoy v3.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { once } from 'node:events';
import { TypeUrl } from '../../src/xds/index.ts';
import { createGenerators } from '../../src/pilot/networking/index.ts';
import { JwksResolver, buildAuthzFilters, buildJwtAuthnFilter, peerAuthenticationFor, mtlsModeFor } from '../../src/pilot/networking/security/index.ts';
import { defaultMeshConfig } from '../../src/api/index.ts';
import type { ConfigObject, MeshConfig } from '../../src/api/index.ts';
import type { ServicePort } from '../../src/pilot/model/index.ts';
import { assertValidEnvoy, endpointsOf, parseConfig, pushOf, service, sidecarProxy, workload } from './networking-fixtures.ts';

const gens = createGenerators();
const HTTP_PORT: ServicePort = { name: 'http', port: 9080, protocol: 'HTTP' };
const TCP_PORT: ServicePort = { name: 'tcp', port: 9090, protocol: 'TCP' };

function registry() {
  const svc = service('productpage', { ports: [HTTP_PORT, TCP_PORT], addresses: ['10.96.0.10'] });
  const w = workload('productpage-v1', '10.0.0.1', { app: 'productpage', version: 'v1' });
  return { services: [svc], endpoints: new Map([[svc.hostname, endpointsOf(svc, [w])]]) };
}

function ap(name: string, spec: string, ns = 'default', annotations = ''): string {
  return `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${name}, namespace: ${ns}${annotations ? `, annotations: {${annotations}}` : ''}}
spec:
${spec.replace(/^/gm, '  ')}
---
`;
}

function authz(yaml: string, mesh?: MeshConfig): { http: Record<string, any>[]; tcp: Record<string, any>[] } {
  const push = pushOf(parseConfig(yaml), registry(), mesh);
  return buildAuthzFilters(push, sidecarProxy()) as { http: Record<string, any>[]; tcp: Record<string, any>[] };
}

/** The RBAC configs of the HTTP filters, by action. */
function rbacOf(filters: readonly Record<string, any>[]): Record<string, any>[] {
  return filters.filter((f) => f.name === 'envoy.filters.http.rbac' || f.name === 'envoy.filters.network.rbac').map((f) => f.typed_config);
}

interface Case {
  readonly name: string;
  readonly yaml: string;
  readonly check: (http: Record<string, any>[], tcp: Record<string, any>[]) => void;
}

const P = (cfg: Record<string, any>, name: string): Record<string, any> => cfg.rules.policies[name];

const CASES: Case[] = [
  {
    name: 'no policy: no filters',
    yaml: '',
    check: (http, tcp) => {
      assert.equal(http.length, 0);
      assert.equal(tcp.length, 0);
    },
  },
  {
    name: 'ALLOW with no rules denies everything (an empty policy set)',
    yaml: ap('deny-all', '{}'),
    check: (http) => {
      assert.equal(http.length, 1);
      assert.deepEqual(http[0].rules, { action: 'ALLOW', policies: {} });
    },
  },
  {
    name: 'principals, namespaces, ipBlocks, remoteIpBlocks and not* become principals',
    yaml: ap('p', `rules:
- from:
  - source:
      principals: [cluster.local/ns/default/sa/sleep, "cluster.local/ns/foo/*", "*"]
      notNamespaces: [bar]
      ipBlocks: [10.0.0.0/8]
      remoteIpBlocks: [1.2.3.4]`),
    check: (http) => {
      const p = P(http[0], 'ns[default]-policy[p]-rule[0]');
      assert.deepEqual(p.permissions, [{ any: true }]);
      const ids = p.principals[0].and_ids.ids;
      assert.deepEqual(ids[0].or_ids.ids.map((i: any) => i.authenticated.principal_name), [
        { exact: 'spiffe://cluster.local/ns/default/sa/sleep' }, { prefix: 'spiffe://cluster.local/ns/foo/' }, { prefix: 'spiffe://' },
      ]);
      assert.deepEqual(ids[1], { not_id: { authenticated: { principal_name: { safe_regex: { regex: '.*/ns/bar/.*' } } } } });
      assert.deepEqual(ids[2], { direct_remote_ip: { address_prefix: '10.0.0.0', prefix_len: { value: 8 } } });
      assert.deepEqual(ids[3], { remote_ip: { address_prefix: '1.2.3.4', prefix_len: { value: 32 } } });
    },
  },
  {
    name: 'methods, paths (exact, prefix, suffix, template), ports, hosts and not* become permissions',
    yaml: ap('p', `rules:
- to:
  - operation:
      methods: [GET, HEAD]
      paths: [/exact, "/api/*", "*.css", "/users/{*}/profile"]
      notPorts: ["8080"]
      hosts: ["*.example.com"]`),
    check: (http) => {
      const rules = P(http[0], 'ns[default]-policy[p]-rule[0]').permissions[0].and_rules.rules;
      assert.deepEqual(rules[0], { header: { name: ':authority', string_match: { suffix: '.example.com', ignore_case: true } } });
      assert.deepEqual(rules[1].or_rules.rules.map((r: any) => r.header.string_match.exact), ['GET', 'HEAD']);
      assert.deepEqual(rules[2].or_rules.rules.map((r: any) => r.url_path.path), [{ exact: '/exact' }, { prefix: '/api/' }, { suffix: '.css' }, { safe_regex: { regex: '/users/[^/]+/profile' } }]);
      assert.deepEqual(rules[3], { not_rule: { destination_port: 8080 } });
    },
  },
  {
    name: 'when conditions: headers, source.ip, request.auth.*, nested claims, destination.port, connection.sni',
    yaml: ap('p', `rules:
- when:
  - {key: "request.headers[X-User]", values: [alice]}
  - {key: source.ip, notValues: [10.1.0.0/16]}
  - {key: request.auth.principal, values: ["testing@secure.istio.io/*"]}
  - {key: request.auth.audiences, values: [svc-a]}
  - {key: request.auth.presenter, values: [app]}
  - {key: "request.auth.claims[nested][role]", values: [admin]}
  - {key: destination.port, values: ["9080"]}
  - {key: connection.sni, values: ["*.local"]}`),
    check: (http) => {
      const p = P(http[0], 'ns[default]-policy[p]-rule[0]');
      const ids = p.principals[0].and_ids.ids;
      assert.deepEqual(ids[0], { header: { name: 'x-user', string_match: { exact: 'alice' } } });
      assert.deepEqual(ids[1], { not_id: { direct_remote_ip: { address_prefix: '10.1.0.0', prefix_len: { value: 16 } } } });
      assert.deepEqual(ids[2].metadata, { filter: 'istio_authn', path: [{ key: 'request.auth.principal' }], value: { string_match: { prefix: 'testing@secure.istio.io/' } } });
      assert.deepEqual(ids[3].metadata.value, { list_match: { one_of: { string_match: { exact: 'svc-a' } } } });
      assert.deepEqual(ids[4].metadata.path, [{ key: 'request.auth.presenter' }]);
      assert.deepEqual(ids[5].metadata.path, [{ key: 'request.auth.claims' }, { key: 'nested' }, { key: 'role' }]);
      const perms = p.permissions[0].and_rules.rules;
      assert.deepEqual(perms, [{ destination_port: 9080 }, { requested_server_name: { suffix: '.local' } }]);
    },
  },
  {
    name: 'order: DENY before ALLOW before AUDIT (LOG); each policy one RBAC policy per rule',
    yaml: ap('a', 'action: AUDIT\nrules: [{}]') + ap('b', 'rules: [{}, {}]') + ap('c', 'action: DENY\nrules: [{to: [{operation: {methods: [DELETE]}}]}]'),
    check: (http) => {
      assert.deepEqual(http.map((c) => c.rules.action), ['DENY', 'ALLOW', 'LOG']);
      assert.deepEqual(Object.keys(http[1].rules.policies), ['ns[default]-policy[b]-rule[0]', 'ns[default]-policy[b]-rule[1]']);
    },
  },
  {
    name: 'scope: root namespace applies mesh-wide, selectors must match, other namespaces never',
    yaml: ap('mesh', 'action: DENY\nrules: [{}]', 'istio-system') + ap('other-app', 'selector: {matchLabels: {app: reviews}}\nrules: [{}]') + ap('other-ns', 'rules: [{}]', 'foo') + ap('mine', 'selector: {matchLabels: {app: productpage}}\nrules: [{}]'),
    check: (http) => {
      assert.deepEqual(Object.keys(http[0].rules.policies), ['ns[istio-system]-policy[mesh]-rule[0]']);
      assert.deepEqual(Object.keys(http[1].rules.policies), ['ns[default]-policy[mine]-rule[0]']);
    },
  },
  {
    name: 'TCP: an ALLOW rule with HTTP-only fields never matches; a DENY rule drops them',
    yaml: ap('allow', 'rules: [{from: [{source: {principals: [cluster.local/ns/default/sa/sleep]}}], to: [{operation: {methods: [GET]}}]}]')
      + ap('deny', 'action: DENY\nrules: [{from: [{source: {namespaces: [foo]}}], to: [{operation: {paths: [/admin]}}]}]'),
    check: (_http, tcp) => {
      assert.equal(tcp[0].stat_prefix, 'tcp.');
      const deny = P(tcp[0], 'ns[default]-policy[deny]-rule[0]');
      assert.deepEqual(deny.permissions, [{ any: true }], 'paths dropped');
      const allow = P(tcp[1], 'ns[default]-policy[allow]-rule[0]');
      assert.deepEqual(allow.permissions, [{ not_rule: { any: true } }], 'methods never match TCP');
    },
  },
  {
    name: 'dry-run: rules go to shadow_rules with istio_dry_run_ stats',
    yaml: ap('dry', 'action: DENY\nrules: [{}]', 'default', '"istio.io/dry-run": "true"'),
    check: (http) => {
      assert.equal(http[0].rules, undefined);
      assert.equal(http[0].shadow_rules.action, 'DENY');
      assert.equal(http[0].shadow_rules_stat_prefix, 'istio_dry_run_deny_');
    },
  },
];

for (const c of CASES) {
  test(`AuthorizationPolicy: ${c.name}`, () => {
    const { http, tcp } = authz(c.yaml);
    c.check(rbacOf(http), rbacOf(tcp));
    // Each filter encodes as the Envoy message of its type.
    for (const f of [...http, ...tcp]) assert.ok(f.typed_config['@type']);
  });
}

test('CUSTOM: a shadow RBAC marks requests for ext_authz to the provider cluster', () => {
  const mesh = { ...defaultMeshConfig(), extensionProviders: [{ name: 'my-authz', envoyExtAuthzGrpc: { service: 'ext-authz.foo.svc.cluster.local', port: 9000, failOpen: true } }] } as MeshConfig;
  const { http, tcp } = authz(ap('custom', 'action: CUSTOM\nprovider: {name: my-authz}\nrules: [{to: [{operation: {paths: ["/admin*"]}}]}]'), mesh);
  assert.equal(http.length, 2);
  const [shadow, extAuthz] = http.map((f) => f.typed_config);
  assert.deepEqual(Object.keys(shadow.shadow_rules.policies), ['istio-ext-authz-ns[default]-policy[custom]-rule[0]']);
  assert.equal(shadow.shadow_rules_stat_prefix, 'istio_ext_authz_');
  assert.equal(extAuthz.grpc_service.envoy_grpc.cluster_name, 'outbound|9000||ext-authz.foo.svc.cluster.local');
  assert.equal(extAuthz.failure_mode_allow, true);
  assert.deepEqual(extAuthz.filter_enabled_metadata.path, [{ key: 'istio_ext_authz_shadow_effective_policy_id' }]);
  // TCP ports: the network shadow engine (paths dropped, so every connection is checked) and the network ext_authz.
  assert.deepEqual(tcp.map((f) => f.name), ['envoy.filters.network.rbac', 'envoy.filters.network.ext_authz']);
  const [tcpShadow, tcpExtAuthz] = tcp.map((f) => f.typed_config);
  assert.deepEqual(tcpShadow.shadow_rules.policies['istio-ext-authz-ns[default]-policy[custom]-rule[0]'].permissions, [{ any: true }]);
  assert.equal(tcpShadow.shadow_rules_stat_prefix, 'istio_ext_authz_');
  assert.equal(tcpExtAuthz['@type'], 'type.googleapis.com/envoy.extensions.filters.network.ext_authz.v3.ExtAuthz');
  assert.equal(tcpExtAuthz.grpc_service.envoy_grpc.cluster_name, 'outbound|9000||ext-authz.foo.svc.cluster.local');
  assert.equal(tcpExtAuthz.failure_mode_allow, true);
  assert.deepEqual(tcpExtAuthz.filter_enabled_metadata, { filter: 'envoy.filters.network.rbac', path: [{ key: 'istio_ext_authz_shadow_effective_policy_id' }], value: { string_match: { prefix: 'istio-ext-authz-' } } });
});

test('the generated virtualInbound with every kind of policy encodes as Envoy v3, filters in Istio order', () => {
  const mesh = { ...defaultMeshConfig(), extensionProviders: [{ name: 'my-authz', envoyExtAuthzGrpc: { service: 'ext-authz.foo.svc.cluster.local', port: 9000 } }] } as MeshConfig;
  const yaml = ap('allow', 'rules: [{from: [{source: {principals: [cluster.local/ns/default/sa/sleep]}}]}]')
    + ap('deny', 'action: DENY\nrules: [{to: [{operation: {paths: [/admin]}}]}]')
    + ap('custom', 'action: CUSTOM\nprovider: {name: my-authz}\nrules: [{}]')
    + `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: default}
spec:
  jwtRules: [{issuer: "https://issuer.example", jwks: '{"keys":[]}'}]
`;
  const push = pushOf(parseConfig(yaml), registry(), mesh);
  const [vi] = assertValidEnvoy(TypeUrl.Listener, gens.get(TypeUrl.Listener)!.generate(sidecarProxy(), push, { full: true }).filter((l) => l.name === 'virtualInbound')) as any[];
  const httpChain = vi.filter_chains.find((c: any) => c.name === 'inbound|9080||-mtls');
  const names = httpChain.filters[0].typed_config.http_filters.map((f: any) => f.name);
  assert.deepEqual(names, ['envoy.filters.http.jwt_authn', 'envoy.filters.http.rbac', 'envoy.filters.http.ext_authz', 'envoy.filters.http.rbac', 'envoy.filters.http.rbac', 'envoy.filters.http.fault', 'envoy.filters.http.cors', 'envoy.filters.http.router']);
  const tcpChain = vi.filter_chains.find((c: any) => c.name === 'inbound|9090||-mtls');
  assert.deepEqual(tcpChain.filters.map((f: any) => f.name), ['envoy.filters.network.rbac', 'envoy.filters.network.ext_authz', 'envoy.filters.network.rbac', 'envoy.filters.network.rbac', 'envoy.filters.network.tcp_proxy']);
});

// ---- PeerAuthentication ----

function pa(name: string, ns: string, spec: string): string {
  return `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ${name}, namespace: ${ns}}
spec:
${spec.replace(/^/gm, '  ')}
---
`;
}

const PA_CASES: Array<{ name: string; yaml: string; want: Record<number, string> }> = [
  { name: 'no policy: PERMISSIVE', yaml: '', want: { 9080: 'PERMISSIVE', 9090: 'PERMISSIVE' } },
  { name: 'mesh STRICT', yaml: pa('default', 'istio-system', 'mtls: {mode: STRICT}'), want: { 9080: 'STRICT', 9090: 'STRICT' } },
  { name: 'namespace overrides mesh', yaml: pa('default', 'istio-system', 'mtls: {mode: STRICT}') + pa('ns', 'default', 'mtls: {mode: DISABLE}'), want: { 9080: 'DISABLE', 9090: 'DISABLE' } },
  { name: 'UNSET inherits', yaml: pa('default', 'istio-system', 'mtls: {mode: STRICT}') + pa('ns', 'default', 'mtls: {mode: UNSET}'), want: { 9080: 'STRICT', 9090: 'STRICT' } },
  { name: 'workload overrides namespace; port-level overrides workload', yaml: pa('ns', 'default', 'mtls: {mode: STRICT}') + pa('wl', 'default', 'selector: {matchLabels: {app: productpage}}\nmtls: {mode: PERMISSIVE}\nportLevelMtls: {"9090": {mode: DISABLE}}'), want: { 9080: 'PERMISSIVE', 9090: 'DISABLE' } },
  { name: 'another workload\'s policy does not apply', yaml: pa('wl', 'default', 'selector: {matchLabels: {app: reviews}}\nmtls: {mode: STRICT}'), want: { 9080: 'PERMISSIVE', 9090: 'PERMISSIVE' } },
];

for (const c of PA_CASES) {
  test(`PeerAuthentication: ${c.name}`, () => {
    const push = pushOf(parseConfig(c.yaml), registry());
    const policy = peerAuthenticationFor(push, sidecarProxy());
    for (const [port, mode] of Object.entries(c.want)) assert.equal(mtlsModeFor(policy, Number(port)), mode, `port ${port}`);
    const [vi] = assertValidEnvoy(TypeUrl.Listener, gens.get(TypeUrl.Listener)!.generate(sidecarProxy(), push, { full: true }).filter((l) => l.name === 'virtualInbound')) as any[];
    for (const [port, mode] of Object.entries(c.want)) {
      const chains = vi.filter_chains.filter((ch: any) => ch.filter_chain_match?.destination_port?.value === Number(port));
      const kinds = chains.map((ch: any) => ch.filter_chain_match.transport_protocol ?? 'any').sort();
      const expect = { STRICT: ['tls'], PERMISSIVE: ['raw_buffer', 'tls'], DISABLE: ['any'] }[mode]!;
      assert.deepEqual(kinds, expect, `port ${port} ${mode}`);
      for (const ch of chains.filter((x: any) => x.transport_socket)) {
        const ctx = ch.transport_socket.typed_config;
        assert.equal(ctx.require_client_certificate.value, true);
        assert.deepEqual(ctx.common_tls_context.tls_certificate_sds_secret_configs.map((s: any) => s.name), ['default']);
        assert.equal(ctx.common_tls_context.combined_validation_context.validation_context_sds_secret_config.name, 'ROOTCA');
      }
    }
  });
}

// ---- RequestAuthentication ----

let jwksServer: Server;
let jwksUrl = '';
let jwksFetches = 0;
const JWKS = '{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","kid":"k1"}]}';

before(async () => {
  jwksServer = createServer((req, res) => {
    jwksFetches++;
    if (req.url === '/broken') {
      res.writeHead(500).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JWKS);
  });
  jwksServer.listen(0, '127.0.0.1');
  await once(jwksServer, 'listening');
  jwksUrl = `http://127.0.0.1:${(jwksServer.address() as { port: number }).port}`;
});
after(() => jwksServer?.close());

function ra(rules: string): ConfigObject[] {
  return parseConfig(`apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: default}
spec:
  selector: {matchLabels: {app: productpage}}
  jwtRules:
${rules}`);
}

test('RequestAuthentication: inline jwks, locations and outputs become a provider; allow_missing keeps token-less requests', () => {
  const push = pushOf(ra(`  - issuer: https://a.example
    audiences: [svc]
    jwks: '${JWKS}'
    fromHeaders: [{name: x-jwt, prefix: "Token "}]
    fromParams: [tok]
    outputPayloadToHeader: x-payload
    outputClaimToHeaders: [{header: x-sub, claim: sub}]
    forwardOriginalToken: true`), registry());
  const f = buildJwtAuthnFilter(push, sidecarProxy(), new JwksResolver()) as any;
  const p = f.typed_config.providers['origins-0'];
  assert.deepEqual(p, {
    issuer: 'https://a.example', payload_in_metadata: 'https://a.example', audiences: ['svc'], local_jwks: { inline_string: JWKS },
    from_headers: [{ name: 'x-jwt', value_prefix: 'Token ' }], from_params: ['tok'], forward: true, forward_payload_header: 'x-payload', claim_to_headers: [{ header_name: 'x-sub', claim_name: 'sub' }],
  });
  assert.deepEqual(f.typed_config.rules, [{ match: { prefix: '/' }, requires: { requires_any: { requirements: [{ provider_name: 'origins-0' }, { allow_missing: {} }] } } }]);
});

test('RequestAuthentication: jwksUri is fetched by the control plane and inlined; remote_jwks until then; a failed fetch inlines no keys', async () => {
  const resolver = new JwksResolver();
  const changes: string[] = [];
  resolver.onChange((u) => changes.push(u));
  const push = pushOf(ra(`  - issuer: https://b.example
    jwksUri: ${jwksUrl}/keys
  - issuer: https://c.example
    jwksUri: ${jwksUrl}/broken`), registry());
  const first = buildJwtAuthnFilter(push, sidecarProxy(), resolver) as any;
  assert.deepEqual(first.typed_config.providers['origins-0'].remote_jwks.http_uri.uri, `${jwksUrl}/keys`);
  assert.match(first.typed_config.providers['origins-0'].remote_jwks.http_uri.cluster, /^outbound\|\d+\|\|127\.0\.0\.1$/);
  await resolver.settle(`${jwksUrl}/keys`);
  await resolver.settle(`${jwksUrl}/broken`);
  assert.deepEqual(changes.sort(), [`${jwksUrl}/broken`, `${jwksUrl}/keys`]);
  const second = buildJwtAuthnFilter(push, sidecarProxy(), resolver) as any;
  assert.deepEqual(second.typed_config.providers['origins-0'].local_jwks, { inline_string: JWKS });
  assert.deepEqual(second.typed_config.providers['origins-1'].local_jwks, { inline_string: '{"keys":[]}' });
  const fetches = jwksFetches;
  buildJwtAuthnFilter(push, sidecarProxy(), resolver);
  assert.equal(jwksFetches, fetches, 'cached until the refresh interval');
});
