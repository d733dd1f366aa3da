// The proxy's Mixer report logger (src/proxy/access-loggers/mixer-report)
// against real gRPC servers on 127.0.0.1: bags go to Mixer's
// istio.mixer.v1.Mixer/Report in batches and reach its report handlers; an
// absent Mixer (connection refused), a cluster without hosts and a Mixer
// that never answers all leave log() synchronous: bags wait in a bounded
// buffer, calls in flight are bounded, and every bag lost is counted.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { Registry } from '../../src/common/metrics.ts';
import { Mixer } from '../../src/mixer/index.ts';
import { DEFAULT_REPORTER_SETTINGS, MixerReporter } from '../../src/proxy/access-loggers/mixer-report/mixer-report.ts';
import type { MixerReporterSettings } from '../../src/proxy/access-loggers/mixer-report/mixer-report.ts';
import { StatsStore } from '../../src/proxy/stats.ts';
import type { ClusterManager } from '../../src/proxy/upstream/cluster-manager.ts';
import { mixerReportServiceDefinition } from '../../src/xds/index.ts';
import type { ReportBag } from '../../src/xds/index.ts';
import { ManualSnapshots, snapshotOf } from './helpers.ts';

const TELEMETRY = `
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: prom, namespace: istio-system }
spec:
  compiledAdapter: prometheus
  params:
    metrics:
    - { name: reports_total, instanceName: count.instance.istio-system, kind: COUNTER, labelNames: [code, reporter] }
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: count, namespace: istio-system }
spec:
  compiledTemplate: metric
  params:
    value: "1"
    dimensions: { code: response.code | 0, reporter: context.reporter.kind | "none" }
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: telemetry, namespace: istio-system }
spec:
  actions: [{ handler: prom, instances: [count] }]
`;

function clustersWith(port: number | undefined): ClusterManager {
  return { get: () => (port === undefined ? undefined : { pickHost: () => ({ address: '127.0.0.1', port }) }) } as unknown as ClusterManager;
}

function reporter(port: number | undefined, settings: Partial<MixerReporterSettings> = {}): { r: MixerReporter; stats: StatsStore } {
  const stats = new StatsStore();
  const r = new MixerReporter(clustersWith(port), { ...DEFAULT_REPORTER_SETTINGS, flushIntervalMs: 50, ...settings }, {
    sent: stats.counter('sent'), dropped: stats.counter('dropped'), calls: stats.counter('calls'), failures: stats.counter('failures'),
  });
  return { r, stats };
}

const bag = (i: number): ReportBag => new Map<string, any>([
  ['destination.service.host', 'ratings.default.svc.cluster.local'], ['request.path', `/ratings/${i}`], ['response.code', i % 10 === 0 ? 503 : 200],
  ['context.reporter.kind', 'inbound'], ['source.ip', '10.0.0.9'], ['response.duration', 3.5], ['request.time', new Date(1_767_225_600_000 + i)],
  ['source.labels', new Map([['app', 'reviews'], ['version', 'v1']])],
]);

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function listen(server: grpc.Server): Promise<number> {
  return new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
}

test('bags reach Mixer report handlers in batches of max_batch_entries over Report', { timeout: 20_000 }, async () => {
  const snapshots = new ManualSnapshots();
  const metrics = new Registry();
  const mixer = new Mixer({ snapshots, metrics });
  await mixer.start();
  snapshots.publish(snapshotOf(TELEMETRY));
  const server = new grpc.Server();
  mixer.register(server);
  const port = await listen(server);
  const { r, stats } = reporter(port, { maxBatchEntries: 1000 });
  try {
    for (let i = 0; i < 2500; i++) r.push(bag(i));
    await until(() => stats.counter('sent').value === 2500, 'all 2500 bags sent');
    await mixer.flushReports();
    assert.ok(stats.counter('calls').value <= 4, `${stats.counter('calls').value} calls for 2500 bags`);
    assert.equal(stats.counter('dropped').value, 0);
    const text = await metrics.metrics();
    assert.match(text, /mixer_report_attribute_bags_total 2500/);
    assert.match(text, /istio_reports_total\{code="200",reporter="inbound"\} 2250/);
    assert.match(text, /istio_reports_total\{code="503",reporter="inbound"\} 250/);
  } finally {
    r.close();
    server.forceShutdown();
    await mixer.stop();
  }
});

test('an absent Mixer (connection refused): log() stays synchronous, every bag is dropped and counted', { timeout: 20_000 }, async () => {
  const server = new grpc.Server();
  const port = await listen(server);
  server.forceShutdown(); // nothing listens on the port any more
  const { r, stats } = reporter(port, { maxBatchEntries: 100 });
  try {
    for (let i = 0; i < 1000; i++) assert.equal(r.push(bag(i)), undefined);
    await until(() => stats.counter('dropped').value === 1000, '1000 bags dropped');
    assert.equal(stats.counter('sent').value, 0);
    assert.ok(stats.counter('failures').value > 0);
    assert.equal(r.buffered, 0);
  } finally {
    r.close();
  }
});

test('no host for the report cluster: at most max_buffered bags wait, the rest are dropped and counted', { timeout: 10_000 }, async () => {
  const { r, stats } = reporter(undefined, { maxBuffered: 500 });
  try {
    for (let i = 0; i < 800; i++) r.push(bag(i));
    await new Promise((res) => setTimeout(res, 150));
    assert.equal(r.buffered, 500);
    assert.equal(stats.counter('dropped').value, 300);
    assert.equal(stats.counter('calls').value, 0);
  } finally {
    r.close();
  }
});

test('a Mixer that never answers: calls in flight are bounded, time out, and their bags are counted as dropped', { timeout: 20_000 }, async () => {
  const server = new grpc.Server();
  const held: grpc.sendUnaryData<unknown>[] = [];
  let received = 0;
  server.addService(mixerReportServiceDefinition((b: Buffer) => b), {
    Report: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      received++;
      held.push(callback); // never answered
    },
  });
  const port = await listen(server);
  const { r, stats } = reporter(port, { maxBatchEntries: 10, maxInflight: 2, timeoutMs: 500, maxBuffered: 100 });
  try {
    for (let i = 0; i < 300; i++) r.push(bag(i));
    await until(() => received === 2, 'two calls in flight');
    // While both calls hang, bags wait in the buffer (bounded), none is sent.
    assert.equal(stats.counter('calls').value, 2);
    assert.ok(r.buffered <= 100);
    assert.equal(stats.counter('dropped').value, 300 - 20 - r.buffered);
    await until(() => stats.counter('failures').value >= 2, 'the deadlines');
    assert.equal(stats.counter('sent').value, 0);
  } finally {
    r.close();
    server.forceShutdown();
  }
});

test('Mixer refuses a malformed request with INVALID_ARGUMENT naming the field', { timeout: 10_000 }, async () => {
  const snapshots = new ManualSnapshots();
  const mixer = new Mixer({ snapshots, metrics: new Registry() });
  await mixer.start();
  snapshots.publish(snapshotOf(TELEMETRY));
  const server = new grpc.Server();
  mixer.register(server);
  const port = await listen(server);
  const { encodeReportRequest, mixerReportClient } = await import('../../src/xds/index.ts');
  const client = mixerReportClient(`127.0.0.1:${port}`);
  try {
    const err = await new Promise<grpc.ServiceError | null>((resolve) => client.Report(encodeReportRequest({ attributes: [{ strings: { [-4]: 0 } }], global_word_count: 176 }), {}, resolve));
    assert.equal(err?.code, grpc.status.INVALID_ARGUMENT);
    assert.match(String(err?.details), /MESH_ERR_MIXER_REPORT: ReportRequest\.attributes\[0\]\.strings: word -4/);
  } finally {
    client.close();
    server.forceShutdown();
    await mixer.stop();
  }
});
