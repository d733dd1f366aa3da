// Admin additions in Envoy's shapes: /logging, /stats?format=json with
// ?filter, /certs for static TLS secrets, /memory, and /drain_listeners
// (POST; the listener stops accepting, open connections drain).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { connect } from 'node:net';
import { once } from 'node:events';
import type { Proxy } from '../../src/proxy/index.ts';
import type { Upstream } from './helpers.ts';
import { get, hcmListener, startProxy, startUpstream, staticCluster } from './helpers.ts';
import type { TestCa } from './tls-certs.ts';
import { makeCa, makeLeaf, spiffe } from './tls-certs.ts';

let app: Upstream;
let proxy: Proxy;
let admin: number;
let ca: TestCa;

const route = { name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] };

before(async () => {
  ca = await makeCa('mesh-ca');
  const leaf = await makeLeaf(ca, { uri: [spiffe('reviews')] });
  app = await startUpstream('app');
  const inbound = hcmListener('inbound', route) as Record<string, unknown>;
  proxy = await startProxy({
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: {
      secrets: [
        { name: 'default', tls_certificate: { certificate_chain: { inline_string: leaf.cert }, private_key: { inline_string: leaf.key } } },
        { name: 'ROOTCA', validation_context: { trusted_ca: { inline_string: ca.cert } } },
      ],
      clusters: [staticCluster('app', [app.port])],
      listeners: [{ ...inbound, traffic_direction: 'INBOUND' }, hcmListener('outbound', route)],
    },
  });
  admin = proxy.admin!.port;
});

after(async () => {
  await proxy?.stop();
  await app?.close();
});

test('/logging lists levels and POST ?level= changes them; bad names and levels are refused', async () => {
  assert.equal((await get(admin, '/logging')).body, 'active loggers:\n  main: off\n');
  const set = await get(admin, '/logging?level=debug', { method: 'POST' });
  assert.equal(set.status, 200);
  assert.equal(set.body, 'active loggers:\n  main: debug\n');
  assert.equal(proxy.logger.level, 'debug');
  assert.equal((await get(admin, '/logging?main=warning', { method: 'POST' })).body, 'active loggers:\n  main: warning\n');
  assert.equal(proxy.logger.level, 'warn');
  assert.equal((await get(admin, '/logging?level=loud', { method: 'POST' })).status, 404);
  assert.equal((await get(admin, '/logging?nosuch=info', { method: 'POST' })).status, 404);
  assert.equal((await get(admin, '/logging?level=debug')).body, 'active loggers:\n  main: warning\n', 'GET never changes levels');
  await get(admin, '/logging?level=off', { method: 'POST' });
});

test('/stats?format=json honours ?filter; a bad regex is a 400', async () => {
  await get(proxy.listenerPort('outbound')!, '/');
  const r = await get(admin, '/stats?format=json&filter=^cluster\\.app\\.upstream_rq_total$');
  assert.deepEqual(r.json(), { stats: [{ name: 'cluster.app.upstream_rq_total', value: 1 }] });
  const text = await get(admin, '/stats?filter=upstream_rq_total');
  assert.ok(text.body.split('\n').filter(Boolean).every((l) => l.includes('upstream_rq_total')));
  assert.equal((await get(admin, '/stats?filter=(')).status, 400);
});

test('/certs shows the certificate chain and CA of each secret', async () => {
  const r = await get(admin, '/certs');
  assert.equal(r.headers['content-type'], 'application/json');
  const { certificates } = r.json();
  assert.equal(certificates.length, 2);
  const chain = certificates.find((c: { cert_chain: unknown[] }) => c.cert_chain.length === 1).cert_chain[0];
  assert.deepEqual(chain.subject_alt_names, [{ uri: spiffe('reviews') }]);
  assert.match(chain.serial_number, /^[0-9a-f]+$/);
  assert.ok(Number(chain.days_until_expiration) >= 0);
  assert.ok(Date.parse(chain.expiration_time) > Date.now());
  const root = certificates.find((c: { ca_cert: unknown[] }) => c.ca_cert.length === 1).ca_cert[0];
  assert.ok(Date.parse(root.valid_from) < Date.now());
});

test('/memory reports heap and RSS as Envoy field names', async () => {
  const m = (await get(admin, '/memory')).json();
  for (const k of ['allocated', 'heap_size', 'pageheap_unmapped', 'pageheap_free', 'total_thread_cache', 'total_physical_bytes']) assert.match(m[k], /^\d+$/, k);
  assert.ok(Number(m.total_physical_bytes) > Number(m.allocated));
});

test('/drain_listeners?inboundonly&graceful: inbound stops accepting, its open connection gets connection: close', async () => {
  assert.equal((await get(admin, '/drain_listeners')).status, 405);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const inboundPort = proxy.listenerPort('inbound')!;
  assert.equal((await get(inboundPort, '/', { agent })).headers.connection, 'keep-alive');
  const r = await get(admin, '/drain_listeners?inboundonly&graceful', { method: 'POST' });
  assert.equal(r.body, 'OK\n');
  // The kept-alive connection is served once more, told to close.
  assert.equal((await get(inboundPort, '/', { agent })).headers.connection, 'close');
  const refused = connect(inboundPort, '127.0.0.1');
  const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
  assert.equal(err.code, 'ECONNREFUSED');
  // The outbound listener is untouched.
  assert.equal((await get(proxy.listenerPort('outbound')!, '/')).status, 200);
  assert.equal(proxy.stats.get('listener_manager.listener_stopped'), 1);
  agent.destroy();
});
