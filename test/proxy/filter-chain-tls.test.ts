// Filter chain selection on one listener with tls_inspector and
// http_inspector, the way Istio's virtualInbound is built in PERMISSIVE
// mode: mTLS (transport `tls`, ALPN `istio`) and plaintext on one port, and
// SNI-selected TLS chains where an exact name beats a wildcard.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { connect as h2connect } from 'node:http2';
import { X509Certificate } from 'node:crypto';
import type { Proxy } from '../../src/proxy/index.ts';
import { HCM, ROUTER, get, startProxy } from './helpers.ts';
import type { Pem, TestCa } from './tls-certs.ts';
import { makeCa, makeLeaf, spiffe } from './tls-certs.ts';

const DOWNSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
const TLS_INSPECTOR = 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector';
const HTTP_INSPECTOR = 'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector';

let ca: TestCa;
let exactCert: Pem;
let wildcardCert: Pem;
let workload: Pem;
let client: Pem;
let proxy: Proxy;

const inline = (s: string): object => ({ inline_string: s });

function chain(body: string, match: object | undefined, tls?: object): object {
  return {
    filter_chain_match: match,
    transport_socket: tls && { name: 'envoy.transport_sockets.tls', typed_config: { '@type': DOWNSTREAM_TLS, ...tls } },
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

const serverTls = (pem: Pem, extra: object = {}): object => ({ common_tls_context: { tls_certificates: [{ certificate_chain: inline(pem.cert), private_key: inline(pem.key) }], ...extra } });

before(async () => {
  ca = await makeCa();
  exactCert = await makeLeaf(ca, { dns: ['a.example.com'], cn: 'exact' });
  wildcardCert = await makeLeaf(ca, { dns: ['*.example.com'], cn: 'wildcard' });
  workload = await makeLeaf(ca, { uri: [spiffe('reviews')], cn: 'workload' });
  client = await makeLeaf(ca, { uri: [spiffe('productpage')] });
  proxy = await startProxy({
    static_resources: {
      listeners: [
        {
          name: 'virtualInbound',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          listener_filters: [
            { name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': TLS_INSPECTOR } },
            { name: 'envoy.filters.listener.http_inspector', typed_config: { '@type': HTTP_INSPECTOR } },
          ],
          filter_chains: [
            chain('exact-a', { server_names: ['a.example.com'], transport_protocol: 'tls' }, serverTls(exactCert, { alpn_protocols: ['h2', 'http/1.1'] })),
            chain('wildcard', { server_names: ['*.example.com'], transport_protocol: 'tls' }, serverTls(wildcardCert)),
            chain(
              'mtls',
              { transport_protocol: 'tls', application_protocols: ['istio-peer-exchange', 'istio'] },
              serverTls(workload, { alpn_protocols: ['h2', 'http/1.1'], validation_context: { trusted_ca: inline(ca.cert) } }),
            ),
            chain('other-port', { transport_protocol: 'tls', application_protocols: ['istio'], destination_port: 1 }, serverTls(workload)),
            chain('plaintext', { transport_protocol: 'raw_buffer' }),
          ],
        },
      ],
    },
  });
});

after(async () => {
  await proxy?.stop();
});

/** One HTTPS request; resolves with the body and the CN of the server certificate, or the error code. */
function tlsGet(opts: { servername?: string; alpn?: string[]; cert?: Pem }): Promise<{ body: string; cn: string } | string> {
  const port = proxy.listenerPort('virtualInbound')!;
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/', servername: opts.servername ?? '', ca: ca.cert, cert: opts.cert?.cert, key: opts.cert?.key, ALPNProtocols: opts.alpn, agent: false, checkServerIdentity: () => undefined } as import('node:https').RequestOptions,
      (res) => {
        let body = '';
        const cn = new X509Certificate((res.socket as import('node:tls').TLSSocket).getPeerCertificate().raw).subject.replace(/^CN=/, '');
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ body, cn }));
      },
    );
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    req.end();
  });
}

test('SNI picks the chain: an exact server name beats a wildcard', async () => {
  assert.deepEqual(await tlsGet({ servername: 'a.example.com' }), { body: 'exact-a', cn: 'exact' });
  assert.deepEqual(await tlsGet({ servername: 'b.example.com' }), { body: 'wildcard', cn: 'wildcard' });
  assert.deepEqual(await tlsGet({ servername: 'deep.b.example.com' }), { body: 'wildcard', cn: 'wildcard' });
});

test('PERMISSIVE: one port answers mTLS (ALPN istio) and plaintext', async () => {
  assert.deepEqual(await tlsGet({ alpn: ['istio', 'http/1.1'], cert: client }), { body: 'mtls', cn: 'workload' });
  // Istio's HTTP mTLS ALPN shares nothing with the chain's h2/http/1.1: the handshake goes on without ALPN, as in Envoy.
  assert.deepEqual(await tlsGet({ alpn: ['istio-http/1.1', 'istio'], cert: client }), { body: 'mtls', cn: 'workload' });
  const plain = await get(proxy.listenerPort('virtualInbound')!, '/', { agent: new (await import('node:http')).Agent() });
  assert.equal(plain.status, 200);
  assert.equal(plain.body, 'plaintext');
});

test('TLS that matches no chain (no SNI, no istio ALPN) is closed and counted', async () => {
  const port = proxy.listenerPort('virtualInbound')!;
  const before = proxy.stats.get(`listener.127.0.0.1_${port}.no_filter_chain_match`);
  const r = await tlsGet({ alpn: ['h2'] });
  assert.equal(typeof r, 'string', `expected a failure, got ${JSON.stringify(r)}`);
  assert.equal(proxy.stats.get(`listener.127.0.0.1_${port}.no_filter_chain_match`), before + 1);
});

test('HTTP/2 over TLS (ALPN h2) on an SNI-selected chain', async () => {
  const session = h2connect(`https://127.0.0.1:${proxy.listenerPort('virtualInbound')}`, { ca: ca.cert, servername: 'a.example.com', checkServerIdentity: () => undefined });
  try {
    const body = await new Promise<string>((resolve, reject) => {
      const r = session.request({ ':path': '/' });
      let data = '';
      r.on('data', (d: Buffer) => (data += d.toString()));
      r.on('end', () => resolve(data));
      r.on('error', reject);
    });
    assert.equal(body, 'exact-a');
    assert.equal((session.socket as import('node:tls').TLSSocket).alpnProtocol, 'h2');
  } finally {
    session.close();
  }
});
