// End to end: Pilot turns PeerAuthentication (STRICT, then PERMISSIVE),
// RequestAuthentication and ALLOW/DENY AuthorizationPolicies into the
// productpage sidecar's virtualInbound; the listener goes over the wire
// encoding (packMessage/unpackMessage) into a real proxy, with the workload
// certificate and root delivered as the SDS secrets `default` and `ROOTCA`;
// clients with real SPIFFE certificates from a test CA are allowed or denied
// on the HTTP port (RBAC) and the TCP port (network RBAC).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { SignJWT, generateKeyPair } from 'jose';
import { TypeUrl, packMessage, unpackMessage } from '../../src/xds/index.ts';
import { createGenerators } from '../../src/pilot/networking/index.ts';
import type { Proxy } from '../../src/proxy/index.ts';
import { decodeJson, setOriginalDstResolver } from '../../src/proxy/index.ts';
import type { ConfigObject } from '../../src/api/index.ts';
import type { ServicePort } from '../../src/pilot/model/index.ts';
import { endpointsOf, parseConfig, pushOf, service, sidecarProxy, workload } from './networking-fixtures.ts';
import type { Upstream } from '../proxy/helpers.ts';
import { get, startProxy, startUpstream, staticCluster } from '../proxy/helpers.ts';
import type { Pem, TestCa } from '../proxy/tls-certs.ts';
import { makeCa, makeLeaf, spiffe } from '../proxy/tls-certs.ts';
import { tlsExchange, tlsGet } from '../proxy/rbac-helpers.ts';

const SAMPLES = '/work/shared/istio-samples/extra/security/tools/jwt/samples';
const ISSUER = 'testing@secure.istio.io';
const groupsJwt = readFileSync(`${SAMPLES}/groups-scope.jwt`, 'utf8').trim();
const demoJwt = readFileSync(`${SAMPLES}/demo.jwt`, 'utf8').trim();
const jwks = readFileSync(`${SAMPLES}/jwks.json`, 'utf8');

const gens = createGenerators();
let ca: TestCa;
let workloadCert: Pem;
let sleep: Pem;
let fooClient: Pem;
let other: Pem;
let app: Upstream;
let echo: Server;
let proxy: Proxy;
let dstPort = 9080;

const HTTP_PORT: ServicePort = { name: 'http', port: 9080, protocol: 'HTTP' };
const TCP_PORT: ServicePort = { name: 'tcp', port: 9090, protocol: 'TCP' };

function registry() {
  const svc = service('productpage', { ports: [HTTP_PORT, TCP_PORT], addresses: ['10.96.0.10'] });
  const w = workload('productpage-v1', '10.0.0.1', { app: 'productpage', version: 'v1' });
  return { services: [svc], endpoints: new Map([[svc.hostname, endpointsOf(svc, [w])]]) };
}

function policies(mtls: 'STRICT' | 'PERMISSIVE'): ConfigObject[] {
  return parseConfig(`
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec:
  mtls: {mode: ${mtls}}
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: default}
spec:
  selector: {matchLabels: {app: productpage}}
  jwtRules:
  - issuer: ${ISSUER}
    jwks: '${jwks.replace(/\s+/g, ' ')}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-foo-admin, namespace: default}
spec:
  selector: {matchLabels: {app: productpage}}
  action: DENY
  rules:
  - from: [{source: {namespaces: [foo]}}]
    to: [{operation: {paths: ["/admin*"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow, namespace: default}
spec:
  selector: {matchLabels: {app: productpage}}
  action: ALLOW
  rules:
  - from: [{source: {principals: [cluster.local/ns/default/sa/sleep, cluster.local/ns/foo/sa/client]}}]
    to: [{operation: {methods: [GET]}}]
  - from: [{source: {principals: [cluster.local/ns/default/sa/sleep]}}]
    to: [{operation: {ports: ["9090"]}}]
  - to: [{operation: {paths: [/claims]}}]
    when: [{key: "request.auth.claims[groups]", values: [group1]}]
`);
}

/** Pilot's virtualInbound for productpage, through the wire encoding, on 127.0.0.1:0. */
function inboundListener(mtls: 'STRICT' | 'PERMISSIVE'): Record<string, any> {
  const push = pushOf(policies(mtls), registry());
  const listeners = gens.get(TypeUrl.Listener)!.generate(sidecarProxy(), push, { full: true });
  const vi = listeners.find((l) => l.name === 'virtualInbound')!;
  const decoded = unpackMessage<Record<string, any>>(packMessage(TypeUrl.Listener, vi.value));
  decoded.address = { socket_address: { address: '127.0.0.1', port_value: 0, protocol: 'TCP', port_specifier: 'port_value' }, address: 'socket_address' };
  return decoded;
}

before(async () => {
  ca = await makeCa('mesh-ca');
  workloadCert = await makeLeaf(ca, { uri: [spiffe('bookinfo-productpage')] });
  sleep = await makeLeaf(ca, { uri: [spiffe('sleep')] });
  fooClient = await makeLeaf(ca, { uri: [spiffe('client', 'foo')] });
  other = await makeLeaf(ca, { uri: [spiffe('other')] });
  app = await startUpstream('productpage');
  echo = createServer((s) => {
    s.on('data', (d) => s.write(`echo:${d.toString()}`));
    s.on('error', () => undefined);
  });
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  setOriginalDstResolver(() => ({ address: '10.0.0.1', port: dstPort }));
  proxy = await startProxy({
    static_resources: {
      clusters: [
        staticCluster('inbound|9080||', [app.port]),
        staticCluster('inbound|9090||', [(echo.address() as { port: number }).port]),
        // A plaintext request that slipped past STRICT would reach the app here: the test would see it.
        staticCluster('InboundPassthroughClusterIpv4', [app.port]),
      ],
    },
  });
  const SECRET = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
  proxy.secrets.apply({ kind: 'cluster', cluster: 'sds-grpc' }, [
    decodeJson(SECRET, { name: 'default', tls_certificate: { certificate_chain: { inline_string: workloadCert.cert }, private_key: { inline_string: workloadCert.key } } }, 'default'),
    decodeJson(SECRET, { name: 'ROOTCA', validation_context: { trusted_ca: { inline_string: ca.cert } } }, 'ROOTCA'),
  ], 'v1');
  await proxy.applyListeners([inboundListener('STRICT')], 'v1');
});

after(async () => {
  setOriginalDstResolver(undefined);
  await proxy?.stop();
  await app?.close();
  echo?.close();
});

const port = (): number => proxy.listenerPort('virtualInbound')!;

async function http(client: Pem, path: string, init: { method?: string; headers?: Record<string, string> } = {}) {
  dstPort = 9080;
  return tlsGet(port(), path, ca, client, init);
}

const CASES: Array<{ name: string; client: () => Pem; path: string; method?: string; token?: () => string; status: number }> = [
  { name: 'ALLOW: sleep may GET', client: () => sleep, path: '/productpage', status: 200 },
  { name: 'ALLOW: sleep may not POST (methods)', client: () => sleep, path: '/productpage', method: 'POST', status: 403 },
  { name: 'ALLOW: foo/client may GET', client: () => fooClient, path: '/productpage', status: 200 },
  { name: 'DENY: foo may not reach /admin*', client: () => fooClient, path: '/admin/users', status: 403 },
  { name: 'DENY does not touch other namespaces', client: () => sleep, path: '/admin/users', status: 200 },
  { name: 'ALLOW: an identity no rule names is denied', client: () => other, path: '/productpage', status: 403 },
  { name: 'ALLOW on claims: groups contains group1', client: () => other, path: '/claims', token: () => groupsJwt, status: 200 },
  { name: 'ALLOW on claims: a token without the claim', client: () => other, path: '/claims', token: () => demoJwt, status: 403 },
  { name: 'ALLOW on claims: no token', client: () => other, path: '/claims', status: 403 },
];

for (const c of CASES) {
  test(`STRICT: ${c.name}`, async () => {
    const r = await http(c.client(), c.path, { method: c.method, headers: c.token ? { authorization: `Bearer ${c.token()}` } : {} });
    assert.equal(r.status, c.status, r.body);
    if (c.status === 403) assert.equal(r.body, 'RBAC: access denied');
    else assert.equal(r.json().upstream, 'productpage');
  });
}

test('STRICT: a bad token is refused by jwt_authn before RBAC', async () => {
  const { privateKey } = await generateKeyPair('RS256');
  const forged = await new SignJWT({ iss: ISSUER, sub: 'x', groups: ['group1'] }).setProtectedHeader({ alg: 'RS256', kid: 'DHFbpoIUqrY8t2zpA2qXfCmr5VO5ZEr4RzHU_-envvQ' }).sign(privateKey);
  const r = await http(other, '/claims', { headers: { authorization: `Bearer ${forged}` } });
  assert.equal(r.status, 401);
  assert.equal(r.body, 'Jwt verification fails');
});

test('STRICT: plaintext is not served, and does not fall through to the passthrough chain', async () => {
  dstPort = 9080;
  await assert.rejects(get(port(), '/productpage', { agent: undefined, headers: { connection: 'close' } }));
});

test('STRICT: TCP port with network RBAC: ALLOW by port and principal, DENY drops its HTTP-only paths', async () => {
  dstPort = 9090;
  assert.equal((await tlsExchange(port(), ca, sleep, 'hi')).reply, 'echo:hi', 'sleep is allowed on 9090');
  assert.equal((await tlsExchange(port(), ca, other, 'hi')).reply, '', 'no ALLOW rule matches other on TCP');
  assert.equal((await tlsExchange(port(), ca, fooClient, 'hi')).reply, '', 'the DENY rule without its paths denies foo on TCP');
  assert.ok((proxy.stats.get('tcp.rbac.denied') ?? 0) >= 2);
});

test('PERMISSIVE: plaintext is served too, without a principal, so the ALLOW policy denies it', async () => {
  await proxy.applyListeners([inboundListener('PERMISSIVE')], 'v2');
  dstPort = 9080;
  const r = await get(port(), '/productpage', { headers: { connection: 'close' } });
  assert.equal(r.status, 403);
  assert.equal(r.body, 'RBAC: access denied');
  const claims = await get(port(), '/claims', { headers: { connection: 'close', authorization: `Bearer ${groupsJwt}` } });
  assert.equal(claims.status, 200, 'a JWT rule needs no peer identity');
  assert.equal((await http(sleep, '/productpage')).status, 200, 'mTLS keeps working');
});
