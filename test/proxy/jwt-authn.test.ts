// envoy.filters.http.jwt_authn through a real proxy: Istio's samples (demo
// and groups-scope tokens with their JWKS, issuer testing@secure.istio.io)
// from local_jwks, our own keys from a JWKS this test serves over HTTP
// (remote_jwks through a cluster, cached), token locations, forwarding,
// Envoy's error messages, and RBAC on the verified claims.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey } from 'jose';
import type { Proxy } from '../../src/proxy/index.ts';
import type { Upstream } from './helpers.ts';
import { deadPort, get, startProxy, startUpstream, staticCluster } from './helpers.ts';
import { JWT_AUTHN, rbacFilter, securedHttpListener } from './rbac-helpers.ts';

const SAMPLES = '/work/shared/istio-samples/extra/security/tools/jwt/samples';
const ISTIO_ISSUER = 'testing@secure.istio.io';
const MY_ISSUER = 'https://mine.example';
const demoJwt = readFileSync(`${SAMPLES}/demo.jwt`, 'utf8').trim();
const groupsJwt = readFileSync(`${SAMPLES}/groups-scope.jwt`, 'utf8').trim();
const istioJwks = readFileSync(`${SAMPLES}/jwks.json`, 'utf8');

let app: Upstream;
let jwks: Upstream;
let jwksHits = 0;
let proxy: Proxy;
let key: CryptoKey;
let otherKey: CryptoKey;

const now = (): number => Math.floor(Date.now() / 1000);

async function sign(claims: Record<string, unknown>, opts: { kid?: string; key?: CryptoKey } = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: opts.kid ?? 'k1' }).sign(opts.key ?? key);
}

function unsigned(claims: Record<string, unknown>): string {
  const enc = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ alg: 'none', typ: 'JWT' })}.${enc(claims)}.`;
}

function jwtFilter(requires: object, extraProviders: Record<string, object> = {}): object {
  return {
    name: 'envoy.filters.http.jwt_authn',
    typed_config: {
      '@type': JWT_AUTHN,
      providers: {
        'origins-0': { issuer: ISTIO_ISSUER, local_jwks: { inline_string: istioJwks }, payload_in_metadata: ISTIO_ISSUER },
        'origins-1': {
          issuer: MY_ISSUER,
          audiences: ['svc-a'],
          remote_jwks: { http_uri: { uri: 'http://jwks.example/keys', cluster: 'jwks', timeout: '1s' }, cache_duration: '300s' },
          from_headers: [{ name: 'Authorization', value_prefix: 'Bearer ' }, { name: 'x-token' }],
          from_params: ['token'],
          forward: true,
          forward_payload_header: 'x-jwt-payload',
          payload_in_metadata: MY_ISSUER,
          claim_to_headers: [{ header_name: 'x-sub', claim_name: 'sub' }],
        },
        ...extraProviders,
      },
      rules: [{ match: { prefix: '/' }, requires }],
    },
  };
}

const ISTIO_REQUIRES = { requires_any: { requirements: [{ provider_name: 'origins-0' }, { provider_name: 'origins-1' }, { allow_missing: {} }] } };

before(async () => {
  const pair = await generateKeyPair('ES256');
  key = pair.privateKey;
  otherKey = (await generateKeyPair('ES256')).privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  jwks = await startUpstream('jwks', (req, res) => {
    jwksHits++;
    res.writeHead(req.url === '/keys' && req.headers.host === 'jwks.example' ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  app = await startUpstream('app');
  const dead = await deadPort();
  const claimsRbac = rbacFilter({
    rules: {
      action: 'ALLOW',
      policies: {
        'ns[default]-policy[groups]-rule[0]': {
          permissions: [{ any: true }],
          principals: [{
            and_ids: {
              ids: [
                { metadata: { filter: 'istio_authn', path: [{ key: 'request.auth.principal' }], value: { string_match: { exact: `${ISTIO_ISSUER}/${ISTIO_ISSUER}` } } } },
                { metadata: { filter: 'istio_authn', path: [{ key: 'request.auth.claims' }, { key: 'groups' }], value: { list_match: { one_of: { string_match: { exact: 'group1' } } } } } },
              ],
            },
          }],
        },
      },
    },
  });
  proxy = await startProxy({
    static_resources: {
      clusters: [staticCluster('app', [app.port]), staticCluster('jwks', [jwks.port]), staticCluster('jwks-dead', [dead])],
      listeners: [
        securedHttpListener('jwt', 'app', [jwtFilter(ISTIO_REQUIRES)], undefined),
        securedHttpListener('jwt-required', 'app', [jwtFilter({ provider_name: 'origins-1' })], undefined),
        securedHttpListener('jwt-rbac', 'app', [jwtFilter(ISTIO_REQUIRES), claimsRbac], undefined),
        securedHttpListener('jwt-dead-jwks', 'app', [jwtFilter({ provider_name: 'dead' }, { dead: { issuer: 'https://dead.example', remote_jwks: { http_uri: { uri: 'http://dead.example/keys', cluster: 'jwks-dead', timeout: '0.5s' } } } })], undefined),
      ],
    },
  });
});

after(async () => {
  await proxy?.stop();
  await app?.close();
  await jwks?.close();
});

const port = (name: string): number => proxy.listenerPort(name)!;
const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });

interface Case {
  readonly name: string;
  readonly listener?: string;
  readonly path?: string;
  readonly headers: () => Promise<Record<string, string>> | Record<string, string>;
  readonly status: number;
  readonly body?: string;
}

const CASES: Case[] = [
  { name: 'no token passes (allow_missing)', headers: () => ({}), status: 200 },
  { name: "Istio's demo.jwt with its jwks.json", headers: () => bearer(demoJwt), status: 200 },
  { name: "Istio's groups-scope.jwt", headers: () => bearer(groupsJwt), status: 200 },
  { name: 'our token from the remote JWKS', headers: async () => bearer(await sign({ iss: MY_ISSUER, sub: 'u1', aud: 'svc-a', exp: now() + 600 })), status: 200 },
  { name: 'token from a custom header without prefix', headers: async () => ({ 'x-token': await sign({ iss: MY_ISSUER, sub: 'u1', aud: ['x', 'svc-a'], exp: now() + 600 }) }), status: 200 },
  { name: 'token from a query parameter', path: 'query', headers: () => ({}), status: 200 },
  { name: 'expired token', headers: async () => bearer(await sign({ iss: MY_ISSUER, sub: 'u1', aud: 'svc-a', exp: now() - 3600 })), status: 401, body: 'Jwt is expired' },
  { name: 'not yet valid token', headers: async () => bearer(await sign({ iss: MY_ISSUER, sub: 'u1', aud: 'svc-a', nbf: now() + 3600, exp: now() + 7200 })), status: 401, body: 'Jwt not yet valid' },
  { name: 'wrong audience', headers: async () => bearer(await sign({ iss: MY_ISSUER, sub: 'u1', aud: 'svc-b', exp: now() + 600 })), status: 403, body: 'Audiences in Jwt are not allowed' },
  { name: 'unknown issuer', headers: async () => bearer(await sign({ iss: 'https://evil.example', sub: 'u1', exp: now() + 600 })), status: 401, body: 'Jwt issuer is not configured' },
  { name: 'alg none is refused', headers: () => bearer(unsigned({ iss: ISTIO_ISSUER, sub: ISTIO_ISSUER, exp: now() + 600 })), status: 401, body: 'Jwt header [alg] is not supported' },
  { name: 'signed by another key', headers: async () => bearer(await sign({ iss: MY_ISSUER, sub: 'u1', aud: 'svc-a', exp: now() + 600 }, { key: otherKey })), status: 401, body: 'Jwt verification fails' },
  { name: 'tampered payload', headers: () => {
    const [h, , s] = demoJwt.split('.');
    return bearer(`${h}.${Buffer.from(JSON.stringify({ iss: ISTIO_ISSUER, sub: 'admin', exp: 4685989700 })).toString('base64url')}.${s}`);
  }, status: 401, body: 'Jwt verification fails' },
  { name: 'unknown kid', headers: async () => bearer(await sign({ iss: MY_ISSUER, sub: 'u1', aud: 'svc-a', exp: now() + 600 }, { kid: 'nope' })), status: 401, body: "Jwks doesn't have key to match kid or alg from Jwt" },
  { name: 'not a JWT', headers: () => bearer('abc.def'), status: 401, body: 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections' },
  { name: 'oversized token', headers: async () => bearer(await sign({ iss: MY_ISSUER, sub: 'u1', aud: 'svc-a', exp: now() + 600, pad: 'x'.repeat(20_000) })), status: 401, body: 'Jwt is too large' },
  { name: 'required provider: missing token', listener: 'jwt-required', headers: () => ({}), status: 401, body: 'Jwt is missing' },
  { name: 'required provider: valid token', listener: 'jwt-required', headers: async () => bearer(await sign({ iss: MY_ISSUER, sub: 'u1', aud: 'svc-a', exp: now() + 600 })), status: 200 },
  { name: 'RBAC on claims: groups contains group1', listener: 'jwt-rbac', headers: () => bearer(groupsJwt), status: 200 },
  { name: 'RBAC on claims: token without groups', listener: 'jwt-rbac', headers: () => bearer(demoJwt), status: 403, body: 'RBAC: access denied' },
  { name: 'RBAC on claims: no token', listener: 'jwt-rbac', headers: () => ({}), status: 403, body: 'RBAC: access denied' },
  { name: 'unreachable remote JWKS', listener: 'jwt-dead-jwks', headers: async () => bearer(await sign({ iss: 'https://dead.example', exp: now() + 600 })), status: 401, body: 'Jwks remote fetch is failed' },
];

for (const c of CASES) {
  test(c.name, async () => {
    let path = '/';
    if (c.path === 'query') path = `/?token=${await sign({ iss: MY_ISSUER, sub: 'u1', aud: 'svc-a', exp: now() + 600 })}`;
    const r = await get(port(c.listener ?? 'jwt'), path, { headers: await c.headers() });
    assert.equal(r.status, c.status, r.body);
    if (c.body !== undefined) assert.equal(r.body, c.body);
    if (c.status === 401) assert.match(String(r.headers['www-authenticate']), /^Bearer realm=/);
  });
}

test('forwarding: the Istio provider strips the token, ours forwards it with the payload header and a claim header', async () => {
  const r1 = await get(port('jwt'), '/', { headers: bearer(demoJwt) });
  assert.equal(r1.json().headers.authorization, undefined, 'forward: false removes the token header');
  const token = await sign({ iss: MY_ISSUER, sub: 'u9', aud: 'svc-a', exp: now() + 600 });
  const r2 = await get(port('jwt'), '/', { headers: bearer(token) });
  const h = r2.json().headers;
  assert.equal(h.authorization, `Bearer ${token}`);
  assert.deepEqual(JSON.parse(Buffer.from(h['x-jwt-payload'], 'base64url').toString()).sub, 'u9');
  assert.equal(h['x-sub'], 'u9');
});

test('stats and JWKS caching: one fetch serves many requests', async () => {
  const before = jwksHits;
  const allowed = proxy.stats.get('http.jwt.jwt_authn.allowed') ?? 0;
  const denied = proxy.stats.get('http.jwt.jwt_authn.denied') ?? 0;
  for (let i = 0; i < 3; i++) await get(port('jwt'), '/', { headers: bearer(await sign({ iss: MY_ISSUER, sub: 'u1', aud: 'svc-a', exp: now() + 600 })) });
  await get(port('jwt'), '/', { headers: bearer('x.y.z') });
  assert.equal(jwksHits - before, 0, 'the JWKS fetched by earlier requests is cached');
  assert.ok(jwksHits >= 1);
  assert.equal((proxy.stats.get('http.jwt.jwt_authn.allowed') ?? 0) - allowed, 3);
  assert.equal((proxy.stats.get('http.jwt.jwt_authn.denied') ?? 0) - denied, 1);
  assert.ok((proxy.stats.get('http.jwt.jwt_authn.jwks_fetch_success') ?? 0) >= 1);
  assert.ok((proxy.stats.get('http.jwt-dead-jwks.jwt_authn.jwks_fetch_failed') ?? 0) >= 1);
});
