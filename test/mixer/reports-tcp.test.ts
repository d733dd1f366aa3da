// TCP reports, as Istio 1.4's Mixer TCP filter sent them, through a real
// proxy and a real Mixer on 127.0.0.1: an inbound tcp_proxy with the
// istio.mixer.report logger and access_log_options reports each connection
// when the upstream connects (connection.event "open"), periodically
// ("continue") and when it ends ("close"), with the bytes since the last
// report, the mTLS peer, the destination service from the inbound cluster's
// istio.services metadata and this workload's labels. Istio's TCP metrics,
// defined in Mixer config, count one connection opened and closed and the
// exact bytes both ways.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { Registry } from '../../src/common/metrics.ts';
import { Mixer } from '../../src/mixer/index.ts';
import type { Proxy } from '../../src/proxy/index.ts';
import type { TcpEcho } from '../proxy/helpers.ts';
import { converse, startProxy, startTcpEcho, staticCluster, tcpProxyListener } from '../proxy/helpers.ts';
import { serverTls } from '../proxy/rbac-helpers.ts';
import type { Pem, TestCa } from '../proxy/tls-certs.ts';
import { makeCa, makeLeaf, spiffe } from '../proxy/tls-certs.ts';
import { ManualSnapshots, snapshotOf } from './helpers.ts';
import { seriesValue, tcpMetricsYaml } from './mixer-config-fixtures.ts';

const SERVICE = 'tcpecho.default.svc.cluster.local';

const TYPED_STRUCT = 'type.googleapis.com/udpa.type.v1.TypedStruct';
const H2 = { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } } };

let ca: TestCa;
let sleep: Pem;
let echo: TcpEcho;
let mixer: Mixer;
let metrics: Registry;
let server: grpc.Server;
let proxy: Proxy;

before(async () => {
  ca = await makeCa('mesh-ca');
  const self = await makeLeaf(ca, { uri: [spiffe('tcpecho')] });
  sleep = await makeLeaf(ca, { uri: [spiffe('sleep')] });
  echo = await startTcpEcho();
  const snapshots = new ManualSnapshots();
  metrics = new Registry();
  mixer = new Mixer({ snapshots, metrics });
  await mixer.start();
  snapshots.publish(snapshotOf(tcpMetricsYaml()));
  server = new grpc.Server();
  mixer.register(server);
  const mixerPort = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  proxy = await startProxy({
    node: { id: 'sidecar~127.0.0.1~tcpecho-v1-0.default~default.svc.cluster.local', cluster: 'tcpecho.default', metadata: { NAME: 'tcpecho-v1-0', NAMESPACE: 'default', LABELS: { app: 'tcpecho', version: 'v1' } } },
    static_resources: {
      clusters: [
        staticCluster('mixer', [mixerPort], H2),
        { ...staticCluster('inbound|9000||', [echo.port]), metadata: { filter_metadata: { istio: { services: [{ host: SERVICE, name: 'tcpecho', namespace: 'default' }] } } } },
      ],
      listeners: [tcpProxyListener('virtualInbound', 'inbound|9000||', {
        listener: { traffic_direction: 'INBOUND' },
        transportSocket: serverTls(ca, self),
        tcpProxy: {
          stat_prefix: 'inbound|9000||',
          access_log: [{ name: 'istio.mixer.report', typed_config: { '@type': TYPED_STRUCT, type_url: 'type.googleapis.com/istio.mixer.v1.config.client.ReportConfig', value: { report_cluster: 'mixer', flush_interval_ms: 50 } } }],
          access_log_options: { flush_access_log_on_connected: true, access_log_flush_interval: '0.1s' },
        },
      })],
    },
  });
});

after(async () => {
  await proxy?.stop();
  server?.forceShutdown();
  await mixer?.stop();
  echo?.server.close();
});

test('a TCP connection through the inbound sidecar: opened, bytes both ways, closed, with service, workload and mTLS peer', { timeout: 20_000 }, async () => {
  const socket = connect({ host: '127.0.0.1', port: proxy.listenerPort('virtualInbound')!, ca: ca.cert, cert: sleep.cert, key: sleep.key, servername: SERVICE, rejectUnauthorized: false });
  // Long enough for a few periodic reports between the bytes and the end.
  assert.equal(await converse(socket, ['hello', 250, 'again!', 250], 'secureConnect'), 'echo:helloecho:again!');
  const labels = [`destination_service="${SERVICE}"`, 'destination_app="tcpecho"', `source_principal="${spiffe('sleep')}"`, 'reporter="inbound"', 'security="mutual_tls"'];
  let text = '';
  const deadline = Date.now() + 10_000;
  while (seriesValue(text, 'tcp_connections_closed_total', labels) === undefined) {
    assert.ok(Date.now() < deadline, `no closed connection reported:\n${text}`);
    await new Promise((r) => setTimeout(r, 50));
    await mixer.flushReports();
    text = await metrics.metrics();
  }
  assert.equal(seriesValue(text, 'tcp_connections_opened_total', labels), 1);
  assert.equal(seriesValue(text, 'tcp_connections_closed_total', labels), 1);
  // The deltas of every report add up to the connection's bytes: 11 in, 21 out.
  assert.equal(seriesValue(text, 'tcp_received_bytes_total', labels), 11);
  assert.equal(seriesValue(text, 'tcp_sent_bytes_total', labels), 21);
  assert.ok(proxy.stats.get('access_logs.mixer_report.reports_sent')! >= 4, 'open, at least two periodic reports, close');
});
