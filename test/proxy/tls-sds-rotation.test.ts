// Certificates from SDS, as Istio delivers them: `default` and `ROOTCA` over
// the ADS stream, and `default` from a separate SDS server behind the
// `sds-grpc` cluster. A new secret version reaches new connections while
// an established connection keeps going on the certificate it handshook with.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Proxy } from '../../src/proxy/index.ts';
import { TypeUrl, loadXdsProtos, packMessage } from '../../src/xds/index.ts';
import type { DiscoveryRequest, DiscoveryResponse } from '../../src/xds/index.ts';
import { TestAdsServer } from './ads-server.ts';
import { HCM, ROUTER, startProxy, staticCluster } from './helpers.ts';
import type { Pem, TestCa } from './tls-certs.ts';
import { makeCa, makeLeaf, spiffe } from './tls-certs.ts';

const DOWNSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';

let ca: TestCa;
let server1: Pem;
let server2: Pem;
let fromSdsServer: Pem;
let clientCert: Pem;
let ads: TestAdsServer;
let sds: grpc.Server;
const sdsRequests: DiscoveryRequest[] = [];
let proxy: Proxy;

const secret = (name: string, pem: Pem): object => ({ name, tls_certificate: { certificate_chain: { inline_string: pem.cert }, private_key: { inline_string: pem.key } } });
const rootCa = (): object => ({ name: 'ROOTCA', validation_context: { trusted_ca: { inline_string: ca.cert } } });
const sdsCluster = { api_config_source: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'sds-grpc' } }] } };

function tlsListener(name: string, certSource: object): object {
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    filter_chains: [
      {
        transport_socket: {
          name: 'envoy.transport_sockets.tls',
          typed_config: {
            '@type': DOWNSTREAM_TLS,
            require_client_certificate: { value: true },
            common_tls_context: {
              tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: certSource }],
              combined_validation_context: {
                default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { prefix: 'spiffe://cluster.local/' } }] },
                validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: { ads: {} } },
              },
            },
          },
        },
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM,
              stat_prefix: name,
              route_config: { name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'ok' } } }] }] },
              http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
            },
          },
        ],
      },
    ],
  };
}

before(async () => {
  ca = await makeCa();
  server1 = await makeLeaf(ca, { uri: [spiffe('server')], cn: 'v1' });
  server2 = await makeLeaf(ca, { uri: [spiffe('server')], cn: 'v2' });
  fromSdsServer = await makeLeaf(ca, { uri: [spiffe('server')], cn: 'sds-grpc' });
  clientCert = await makeLeaf(ca, { uri: [spiffe('client')] });
  // A separate SDS server, as the Istio agent serves `sds-grpc`.
  sds = new grpc.Server();
  sds.addService(loadXdsProtos().serviceDefinition('envoy.service.secret.v3.SecretDiscoveryService'), {
    StreamSecrets: (call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>) => {
      call.on('data', (req: DiscoveryRequest) => {
        sdsRequests.push(req);
        if (req.response_nonce) return;
        const resources = (req.resource_names ?? []).filter((n) => n === 'default').map((n) => packMessage(TypeUrl.Secret, secret(n, fromSdsServer)));
        call.write({ version_info: 's1', resources, type_url: TypeUrl.Secret, nonce: 'n1' } as DiscoveryResponse);
      });
      call.on('error', () => undefined);
      call.on('end', () => call.end());
    },
  });
  const sdsPort = await new Promise<number>((resolve, reject) => sds.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))));
  ads = new TestAdsServer();
  await ads.start();
  ads.set(TypeUrl.Cluster, 'c1', []);
  ads.set(TypeUrl.Listener, 'l1', [tlsListener('viaAds', { ads: {} }), tlsListener('viaSdsCluster', sdsCluster)]);
  ads.set(TypeUrl.Secret, 's1', [secret('default', server1), rootCa()]);
  proxy = await startProxy({
    node: { id: 'sidecar~127.0.0.1~server.default~default.svc.cluster.local', cluster: 'server.default' },
    dynamic_resources: { ads_config: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }] }, cds_config: { ads: {} }, lds_config: { ads: {} } },
    static_resources: { clusters: [staticCluster('xds-grpc', [ads.port]), staticCluster('sds-grpc', [sdsPort])] },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
  });
});

after(async () => {
  await proxy?.stop();
  ads?.stop();
  sds?.forceShutdown();
});

interface Client {
  readonly socket: TLSSocket;
  readonly servedBy: string;
  request(): Promise<string>;
}

/** A keep-alive TLS client with the mesh client certificate; servedBy is the CN of the server certificate. */
function open(listener: string): Promise<Client> {
  const port = proxy.listenerPort(listener)!;
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: ca.cert, cert: clientCert.cert, key: clientCert.key, checkServerIdentity: () => undefined });
    socket.once('error', reject);
    socket.once('secureConnect', () => {
      const cn = new X509Certificate(socket.getPeerCertificate().raw).subject.replace(/^CN=/, '');
      resolve({
        socket,
        servedBy: cn,
        request: () =>
          new Promise((res, rej) => {
            let data = '';
            const onData = (d: Buffer): void => {
              data += d.toString();
              if (data.endsWith('ok')) {
                socket.off('data', onData);
                res(data.split('\r\n')[0]);
              }
            };
            socket.on('data', onData);
            socket.once('error', rej);
            socket.write('GET / HTTP/1.1\r\nhost: server\r\n\r\n');
          }),
      });
    });
  });
}

async function eventually(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 8000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('secrets named by listeners are requested over ADS and serve TLS', async () => {
  const req = await ads.waitFor((r) => r.type_url === TypeUrl.Secret && r.version_info === 's1' && !!r.response_nonce);
  assert.ok(!req.error_detail, 'the secrets are ACKed');
  assert.deepEqual([...req.resource_names!].sort(), ['ROOTCA', 'default']);
  const c = await open('viaAds');
  assert.equal(c.servedBy, 'v1');
  assert.equal(await c.request(), 'HTTP/1.1 200 OK');
  c.socket.destroy();
});

test('a rotated certificate reaches new connections; an open connection keeps working', async () => {
  const old = await open('viaAds');
  assert.equal(old.servedBy, 'v1');
  assert.equal(await old.request(), 'HTTP/1.1 200 OK');
  ads.set(TypeUrl.Secret, 's2', [secret('default', server2), rootCa()]);
  await ads.waitFor((r) => r.type_url === TypeUrl.Secret && r.version_info === 's2');
  const fresh = await open('viaAds');
  assert.equal(fresh.servedBy, 'v2', 'a new connection gets the new certificate');
  assert.equal(await fresh.request(), 'HTTP/1.1 200 OK');
  assert.equal(await old.request(), 'HTTP/1.1 200 OK', 'the connection opened before the rotation still serves');
  assert.equal(new X509Certificate(old.socket.getPeerCertificate().raw).subject, 'CN=v1');
  assert.ok(proxy.stats.get('sds.default.update_success') >= 2);
  const dump = (await (await fetch(`http://127.0.0.1:${proxy.admin!.port}/config_dump`)).json()) as { configs: Array<Record<string, any>> };
  const secrets = dump.configs.find((c) => c['@type'].endsWith('SecretsConfigDump'))!;
  const active = secrets.dynamic_active_secrets.find((s: { name: string; version_info: string }) => s.name === 'default' && s.version_info === 's2');
  assert.ok(active, 'the rotated secret is in /config_dump');
  assert.equal(active.secret.tls_certificate.private_key.inline_string, '[redacted]');
  old.socket.destroy();
  fresh.socket.destroy();
});

test('a secret from the separate SDS cluster (sds-grpc) serves its listener', async () => {
  await eventually(() => sdsRequests.some((r) => !!r.response_nonce && r.version_info === 's1'), 'the SDS ACK');
  assert.deepEqual(sdsRequests[0].resource_names, ['default']);
  assert.ok(sdsRequests[0].node?.id?.startsWith('sidecar~'), 'the first SDS request carries the node');
  const c = await open('viaSdsCluster');
  assert.equal(c.servedBy, 'sds-grpc');
  assert.equal(await c.request(), 'HTTP/1.1 200 OK');
  c.socket.destroy();
});
