// mTLS between two proxies, as between two Istio sidecars: the client-side
// proxy originates TLS with its SPIFFE certificate, SNI and ALPN, verifies
// the server's URI SAN; the server-side proxy requires a client certificate
// from the mesh CA with the expected SAN and forwards the peer identity in
// x-forwarded-client-cert. A wrong SAN is refused on both sides. tcp_proxy
// originates the same mTLS (auto mTLS) to a TLS server that checks it.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as tcpConnect } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import { connect, createServer as createTlsServer } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { Proxy } from '../../src/proxy/index.ts';
import type { Upstream } from './helpers.ts';
import { HCM, ROUTER, converse, get, startProxy, startUpstream, staticCluster, tcpProxyListener } from './helpers.ts';
import type { Pem, TestCa } from './tls-certs.ts';
import { makeCa, makeLeaf, spiffe } from './tls-certs.ts';

const DOWNSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
const UPSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';

let ca: TestCa;
let otherCa: TestCa;
let certA: Pem;
let certB: Pem;
let certC: Pem;
let certForeign: Pem;
let app: Upstream;
let server: Proxy;
let client: Proxy;
/** A TLS echo server requiring a mesh client certificate: answers `<peer URI SAN>|<data>`. */
let tlsEcho: TlsServer;

const inline = (s: string): object => ({ inline_string: s });
const sanExact = (uri: string): object => ({ san_type: 'URI', matcher: { exact: uri } });

function upstreamTls(sans: string[]): object {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': UPSTREAM_TLS,
      sni: 'outbound_.8080_._.b.default.svc.cluster.local',
      common_tls_context: {
        alpn_protocols: ['istio', 'http/1.1'],
        tls_certificates: [{ certificate_chain: inline(certA.cert), private_key: inline(certA.key) }],
        validation_context: { trusted_ca: inline(ca.cert), match_typed_subject_alt_names: sans.map(sanExact) },
      },
    },
  };
}

/** Istio's auto mTLS: transport_socket_matches picks TLS for endpoints labelled tlsMode=istio. */
function autoMtlsCluster(name: string, port: number, sidecar: boolean): object {
  const endpoint = { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } }, metadata: sidecar ? { filter_metadata: { 'envoy.transport_socket_match': { tlsMode: 'istio' } } } : undefined };
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [endpoint] }] },
    transport_socket_matches: [{ name: 'tlsMode-istio', match: { tlsMode: 'istio' }, transport_socket: upstreamTls([spiffe('b')]) }],
  };
}

function route(cluster: string): object {
  return { name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster } }] }] };
}

before(async () => {
  ca = await makeCa('mesh-ca');
  otherCa = await makeCa('other-ca');
  certA = await makeLeaf(ca, { uri: [spiffe('a')] });
  certB = await makeLeaf(ca, { uri: [spiffe('b')], cn: 'b' });
  certC = await makeLeaf(ca, { uri: [spiffe('c')] });
  certForeign = await makeLeaf(otherCa, { uri: [spiffe('a')] });
  app = await startUpstream('app');
  tlsEcho = createTlsServer({ cert: certB.cert, key: certB.key, ca: ca.cert, requestCert: true, rejectUnauthorized: true }, (s) => {
    s.on('data', (d) => s.write(`${s.getPeerCertificate().subjectaltname}|${d.toString()}`));
    s.on('end', () => s.end());
    s.on('error', () => undefined);
  });
  tlsEcho.listen(0, '127.0.0.1');
  await once(tlsEcho, 'listening');
  server = await startProxy({
    static_resources: {
      clusters: [staticCluster('inbound|8080||', [app.port])],
      listeners: [
        {
          name: 'virtualInbound',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [
            {
              transport_socket: {
                name: 'envoy.transport_sockets.tls',
                typed_config: {
                  '@type': DOWNSTREAM_TLS,
                  require_client_certificate: true,
                  common_tls_context: {
                    alpn_protocols: ['istio', 'http/1.1'],
                    tls_certificates: [{ certificate_chain: inline(certB.cert), private_key: inline(certB.key) }],
                    validation_context: { trusted_ca: inline(ca.cert), match_typed_subject_alt_names: [sanExact(spiffe('a'))] },
                  },
                },
              },
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': HCM,
                    stat_prefix: 'inbound_0.0.0.0_8080',
                    forward_client_cert_details: 'APPEND_FORWARD',
                    set_current_client_cert_details: { uri: true, subject: true },
                    route_config: route('inbound|8080||'),
                    http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
                  },
                },
              ],
            },
          ],
        },
      ],
    },
  });
  const serverPort = server.listenerPort('virtualInbound')!;
  client = await startProxy({
    static_resources: {
      clusters: [
        staticCluster('outbound|8080||b', [serverPort], { transport_socket: upstreamTls([spiffe('b')]) }),
        staticCluster('outbound|8080||wrong-san', [serverPort], { transport_socket: upstreamTls([spiffe('not-b')]) }),
        autoMtlsCluster('outbound|8080||auto-mtls', serverPort, true),
        autoMtlsCluster('outbound|8080||auto-plain', app.port, false),
        autoMtlsCluster('outbound|9000||tcp-echo', (tlsEcho.address() as { port: number }).port, true),
      ],
      listeners: [
        tcpProxyListener('tcpOutbound', 'outbound|9000||tcp-echo', { tcpProxy: { stat_prefix: 'outbound|9000||tcp-echo' } }),
        {
          name: 'virtualOutbound',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': HCM,
                    stat_prefix: 'outbound_0.0.0.0_8080',
                    route_config: { name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/wrong' }, route: { cluster: 'outbound|8080||wrong-san' } }, { match: { prefix: '/auto-mtls' }, route: { cluster: 'outbound|8080||auto-mtls' } }, { match: { prefix: '/auto-plain' }, route: { cluster: 'outbound|8080||auto-plain' } }, { match: { prefix: '/' }, route: { cluster: 'outbound|8080||b' } }] }] },
                    http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
                  },
                },
              ],
            },
          ],
        },
      ],
    },
  });
});

after(async () => {
  await client?.stop();
  await server?.stop();
  await app?.close();
  tlsEcho?.close();
});

test('mTLS between two proxies: SPIFFE SANs verified both ways, peer identity in XFCC', async () => {
  const port = client.listenerPort('virtualOutbound')!;
  const r = await get(port, '/hello', { headers: { 'x-forwarded-client-cert': 'By=spoofed' } });
  assert.equal(r.status, 200, r.body);
  const seen = r.json();
  assert.equal(seen.upstream, 'app');
  const xfcc: string = seen.headers['x-forwarded-client-cert'];
  // The client proxy sanitizes the spoofed header (plaintext, SANITIZE); the server appends the mTLS peer.
  assert.doesNotMatch(xfcc, /spoofed/);
  const hash = new X509Certificate(certA.cert).fingerprint256.replace(/:/g, '').toLowerCase();
  assert.equal(xfcc, `By=${spiffe('b')};Hash=${hash};Subject="CN=workload";URI=${spiffe('a')}`);
  assert.equal(seen.headers['x-forwarded-proto'], 'http', 'set by the client proxy (plaintext downstream) and kept');
  assert.ok(client.stats.get('cluster.outbound|8080||b.ssl.handshake') >= 1);
  const inbound = server.listeners.get('virtualInbound')!;
  assert.ok(server.stats.get(`listener.127.0.0.1_${inbound.boundPort}.ssl.handshake`) >= 1);
});

test('the client proxy refuses a server whose SAN does not match: 503 UF', async () => {
  const port = client.listenerPort('virtualOutbound')!;
  const r = await get(port, '/wrong');
  assert.equal(r.status, 503);
  assert.match(r.body, /connection failure/);
  assert.ok(client.stats.get('cluster.outbound|8080||wrong-san.ssl.fail_verify_san') >= 1);
  assert.ok(client.stats.get('cluster.outbound|8080||wrong-san.ssl.connection_error') >= 1);
});

/** Connects straight to the server proxy and sends one request; resolves with the status or the failure. */
function direct(cert: Pem | undefined, onBody?: (body: string) => void): Promise<string> {
  const port = server.listenerPort('virtualInbound')!;
  return new Promise((resolve) => {
    const s: TLSSocket = connect({ host: '127.0.0.1', port, ca: ca.cert, cert: cert?.cert, key: cert?.key, ALPNProtocols: ['http/1.1'], checkServerIdentity: () => undefined });
    let data = '';
    s.on('secureConnect', () => s.write('GET / HTTP/1.1\r\nhost: b\r\nx-forwarded-client-cert: By=spiffe://upstream-hop\r\nconnection: close\r\n\r\n'));
    s.on('data', (d: Buffer) => (data += d.toString()));
    s.on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? e.message}`));
    s.on('close', () => {
      // The JSON echo, whatever the framing (content-length or chunked).
      onBody?.(data.slice(data.indexOf('{'), data.lastIndexOf('}') + 1));
      resolve(data ? data.split('\r\n')[0] : 'closed');
    });
  });
}

test('the server proxy requires a client certificate from the mesh CA with the expected SAN', async () => {
  const stat = (n: string): number => server.stats.get(`listener.127.0.0.1_${server.listenerPort('virtualInbound')}.ssl.${n}`);
  let body = '';
  assert.equal(await direct(certA, (b) => (body = b)), 'HTTP/1.1 200 OK');
  // APPEND_FORWARD keeps the XFCC of earlier hops and appends this one.
  assert.match(JSON.parse(body).headers['x-forwarded-client-cert'], new RegExp(`^By=spiffe://upstream-hop,By=${spiffe('b')};Hash=[0-9a-f]{64};Subject="CN=workload";URI=${spiffe('a')}$`));
  assert.equal(JSON.parse(body).headers['x-forwarded-proto'], 'https');
  assert.notEqual(await direct(undefined), 'HTTP/1.1 200 OK');
  assert.notEqual(await direct(certC), 'HTTP/1.1 200 OK');
  assert.notEqual(await direct(certForeign), 'HTTP/1.1 200 OK');
  assert.ok(stat('fail_verify_san') >= 1, 'the wrong SAN is counted');
  assert.ok(stat('fail_verify_error') + stat('connection_error') >= 2, 'no cert and a foreign CA fail');
});

test('transport_socket_matches: TLS for endpoints with tlsMode=istio, plaintext for the rest', async () => {
  const port = client.listenerPort('virtualOutbound')!;
  const viaMtls = await get(port, '/auto-mtls');
  assert.equal(viaMtls.status, 200, viaMtls.body);
  assert.match(viaMtls.json().headers['x-forwarded-client-cert'], new RegExp(`URI=${spiffe('a')}$`));
  const plain = await get(port, '/auto-plain');
  assert.equal(plain.status, 200, plain.body);
  assert.equal(plain.json().headers['x-forwarded-client-cert'], undefined, 'straight to the app, no TLS peer');
  assert.ok(client.stats.get('cluster.outbound|8080||auto-mtls.ssl.handshake') >= 1);
  assert.equal(client.stats.get('cluster.outbound|8080||auto-plain.ssl.handshake'), 0);
});

test('upstream TLS sessions are resumed on new connections to the same host', async () => {
  const port = server.listenerPort('virtualInbound')!;
  const b = client.clusters.get('outbound|8080||auto-mtls')!;
  const handshake = async (): Promise<boolean> => {
    const s = b.openConnection('127.0.0.1', port) as TLSSocket;
    const reused = await new Promise<boolean>((resolve, reject) => {
      s.once('secureConnect', () => resolve(s.isSessionReused()));
      s.once('error', reject);
    });
    // TLS 1.3 tickets arrive after the handshake: one request round trip brings them.
    s.resume();
    s.write('GET / HTTP/1.1\r\nhost: b\r\nconnection: close\r\n\r\n');
    await new Promise((r) => s.once('close', r));
    return reused;
  };
  await handshake();
  assert.equal(await handshake(), true);
});

test('tcp_proxy originates mTLS over the cluster transport socket (auto mTLS): the server sees the client SPIFFE id', async () => {
  const reply = await converse(tcpConnect(client.listenerPort('tcpOutbound')!, '127.0.0.1'), ['hello', 150]);
  assert.equal(reply, `URI:${spiffe('a')}|hello`);
  assert.ok(client.stats.get('cluster.outbound|9000||tcp-echo.ssl.handshake')! >= 1);
});
