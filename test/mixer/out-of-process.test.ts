// Out-of-process adapters through the real gRPC path: the sample adapter
// (samples/mixer-adapter) as its own process passes the adapter conformance
// suite; handlers built by the dispatch table deliver typed instances, batch
// reports, share one channel per address, fail checks closed when the
// adapter is dead or slow, refuse oversized messages, and config problems
// name their object and field.

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parse } from 'yaml';
import { istioKinds, validateObject } from '../../src/api/index.ts';
import { AttributeBag, BUILTIN_ADAPTERS, StatusCode, adapterRegistry, buildDispatchTable } from '../../src/mixer/index.ts';
import type { AdapterEnv, DispatchTable, Instance } from '../../src/mixer/index.ts';
import { dispatchCheck, dispatchReport } from '../../src/mixer/dispatcher.ts';
import { AdapterConnections, adapterType, outOfProcessAdapter, structConfigCodec } from '../../src/mixer/out-of-process/index.ts';
import type { AdapterSpec, OutOfProcessLimits } from '../../src/mixer/out-of-process/index.ts';
import { Registry } from '../../src/common/metrics.ts';
import { tempDir } from '../helpers/processes.ts';
import { adapterConformance } from './adapter-conformance.ts';
import { SampleAdapter } from './e2e-helpers.ts';
import { snapshotOf } from './helpers.ts';

// One sample adapter process for the whole file (and a slow one for deadlines).
const dir = tempDir('mesh-oop-adapter-');
const [sample, slow] = await Promise.all([SampleAdapter.start(), SampleAdapter.start({ delayMs: 3000 })]);
const ADAPTER_YAML = await SampleAdapter.adapterYaml();
const adapterSpec = (parse(ADAPTER_YAML) as { spec: AdapterSpec }).spec;
after(async () => {
  await Promise.all([sample.stop(), slow.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

const file = (name: string): string => join(dir, name);
const env: AdapterEnv = { now: () => Date.now(), metrics: new Registry(), write: () => undefined, handlerName: 'h.istio-system' };

const listentry = (value: string): Instance => ({ name: 'version.istio-system', template: 'listentry', fields: { value } });
const metric: Instance = {
  name: 'requestcount.istio-system',
  template: 'metric',
  fields: { value: 1, dimensions: new Map<string, string | number | Date>([['source_ip', '10.1.2.3'], ['response_code', 200], ['at', new Date(Date.UTC(2026, 0, 1))]]) },
  types: { value: 'INT64', dimensions: { source_ip: 'IP_ADDRESS', response_code: 'INT64', at: 'TIMESTAMP' } },
};
const logentry: Instance = { name: 'accesslog.istio-system', template: 'logentry', fields: { severity: 'Info', variables: new Map([['path', '/ratings']]), timestamp: new Date(Date.UTC(2026, 0, 1)) } };

adapterConformance({
  adapter: outOfProcessAdapter('sampleadapter', adapterSpec, { address: sample.address }, { connections: new AdapterConnections() }),
  valid: [{ file_path: file('conformance.jsonl'), allow: ['v1', 'v2'], valid_seconds: 10 }, { filePath: file('conformance.jsonl'), allow: [] }],
  invalid: [
    { params: { nope: 1 }, path: 'nope' },
    { params: { allow: 'v1' }, path: 'allow' },
    { params: { valid_seconds: 'soon' }, path: 'valid_seconds' },
  ],
  instances: [metric, logentry, listentry('v1')],
});

function adapterFor(address: string, limits: Partial<OutOfProcessLimits> = {}, connections = new AdapterConnections()) {
  return outOfProcessAdapter('sampleadapter', adapterSpec, { address }, { connections, limits });
}

describe('the sample adapter over gRPC', () => {
  test('listentry: allowed values are OK, others PERMISSION_DENIED with the adapter message and cache hints', async () => {
    const a = adapterFor(sample.address);
    const h = a.build(a.validate({ allow: ['v1'], valid_seconds: 7 }).params!, env);
    try {
      assert.deepEqual(await h.handleCheck!(listentry('v1')), { code: StatusCode.OK, message: '', validDurationMs: 7000, validUseCount: 1000 });
      const denied = await h.handleCheck!(listentry('v3'));
      assert.equal(denied.code, StatusCode.PERMISSION_DENIED);
      assert.equal(denied.message, 'v3 is not on the allow list');
    } finally {
      await h.close();
    }
  });

  test('metric and logentry instances arrive with their typed values (IP bytes, INT64, TIMESTAMP)', async () => {
    const out = file('typed.jsonl');
    const a = adapterFor(sample.address);
    const h = a.build(a.validate({ file_path: out }).params!, env);
    try {
      await h.handleReport!([metric, logentry]);
      const records = SampleAdapter.records(out);
      assert.deepEqual(records.map((r) => [r.template, r.instance]), [['metric', 'requestcount.istio-system'], ['logentry', 'accesslog.istio-system']]);
      assert.deepEqual(records[0]!['dimensions'], { source_ip: '10.1.2.3', response_code: 200, at: '2026-01-01T00:00:00.000Z' });
      assert.equal(records[0]!['value'], 1);
      assert.deepEqual(records[1]!['variables'], { path: '/ratings' });
      assert.equal(records[1]!['timestamp'], '2026-01-01T00:00:00.000Z');
      assert.notEqual(records[0]!.dedup_id, records[1]!.dedup_id, 'each call has its own dedup_id');
    } finally {
      await h.close();
    }
  });

  test('a report batch is one call per template, split at maxInstancesPerReportCall', async () => {
    const out = file('batch.jsonl');
    const a = adapterFor(sample.address, { maxInstancesPerReportCall: 100 });
    const h = a.build(a.validate({ file_path: out }).params!, env);
    try {
      await h.handleReport!(Array.from({ length: 250 }, () => metric));
      const records = SampleAdapter.records(out);
      assert.equal(records.length, 250);
      assert.equal(new Set(records.map((r) => r.dedup_id)).size, 3, '250 instances in calls of at most 100');
    } finally {
      await h.close();
    }
  });

  test('handlers at one address share one channel; it closes with the last handler', async () => {
    const connections = new AdapterConnections();
    const a = adapterFor(sample.address, {}, connections);
    const h1 = a.build(a.validate({ allow: ['v1'] }).params!, env);
    const h2 = a.build(a.validate({ allow: ['v2'] }).params!, env);
    assert.equal(connections.size, 1);
    assert.equal((await h1.handleCheck!(listentry('v1'))).code, StatusCode.OK);
    assert.equal((await h2.handleCheck!(listentry('v1'))).code, StatusCode.PERMISSION_DENIED, 'each handler sends its own params');
    await h1.close();
    assert.equal(connections.size, 1);
    await h2.close();
    await h2.close();
    assert.equal(connections.size, 0);
    await assert.rejects(async () => h1.handleCheck!(listentry('v1')), /handler is closed/);
  });

  test('without a config descriptor params travel as a google.protobuf.Struct', () => {
    const codec = structConfigCodec();
    const packed = codec.pack({ file_path: '/tmp/x', allow: ['a', 'b'], nested: { n: 1.5, ok: true } });
    assert.equal(packed.type_url, 'type.googleapis.com/google.protobuf.Struct');
    const type = adapterType('google.protobuf.Struct');
    const decoded = type.toObject(type.decode(packed.value)) as { fields: Record<string, Record<string, unknown>> };
    assert.deepEqual(decoded.fields['allow'], { listValue: { values: [{ stringValue: 'a' }, { stringValue: 'b' }] } });
    assert.deepEqual(codec.validate({ bad: Number.POSITIVE_INFINITY }), [{ path: 'bad', message: 'Infinity is not a finite number' }]);
  });
});

const checkConfig = (address: string, timeout = '') => `
${ADAPTER_YAML}
---
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: allowv1, namespace: istio-system }
spec:
  adapter: sampleadapter
  connection: { address: "${address}"${timeout ? `, timeout: ${timeout}` : ''} }
  params: { allow: [v1] }
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: version, namespace: istio-system }
spec: { template: listentry, params: { value: 'source.labels["version"] | "none"' } }
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: checkversion, namespace: istio-system }
spec:
  actions: [{ handler: allowv1, instances: [version] }]
`;

function table(yaml: string, limits: Partial<OutOfProcessLimits> = {}): { table: DispatchTable; close(): Promise<void> } {
  const result = buildDispatchTable(snapshotOf(yaml), {
    adapters: adapterRegistry(BUILTIN_ADAPTERS),
    rootNamespace: 'istio-system',
    env: () => env,
    outOfProcess: { connections: new AdapterConnections(), limits },
  });
  assert.deepEqual(result.problems, []);
  const t = result.table!;
  return { table: t, close: async () => void (await Promise.all([...t.handlers.values()].map((h) => h.handler.close()))) };
}

const bag = (version: string): AttributeBag => AttributeBag.of({ 'source.labels': new Map([['version', version]]) });

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

describe('through the dispatch table', () => {
  test('a rule sends the instance to the out-of-process handler: v1 allowed, v3 denied', async () => {
    const t = table(checkConfig(sample.address));
    try {
      assert.equal((await dispatchCheck(t.table, bag('v1'))).code, StatusCode.OK);
      const denied = await dispatchCheck(t.table, bag('v3'));
      assert.equal(denied.code, StatusCode.PERMISSION_DENIED);
      assert.equal(denied.message, 'v3 is not on the allow list');
    } finally {
      await t.close();
    }
  });

  test('a dead adapter fails the check closed (UNAVAILABLE) and the report with MESH_ERR_MIXER_ADAPTER_CALL', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const yaml = `${checkConfig(dead)}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: requestcount, namespace: istio-system }
spec: { template: metric, params: { value: "1" } }
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: count, namespace: istio-system }
spec:
  actions: [{ handler: allowv1, instances: [requestcount] }]
`;
    const t = table(yaml);
    try {
      const r = await dispatchCheck(t.table, bag('v1'));
      assert.equal(r.code, StatusCode.UNAVAILABLE);
      assert.match(r.message, /^allowv1\.istio-system: out-of-process adapter call \/listentry\.HandleListEntryService\/HandleListEntry to .* failed/);
      assert.equal(r.validDurationMs, 0, 'a failure is not cached');
      const failures = await dispatchReport(t.table, [bag('v1')]);
      assert.equal(failures.length, 1);
      assert.equal((failures[0]!.error as { code: string }).code, 'MESH_ERR_MIXER_ADAPTER_CALL');
    } finally {
      await t.close();
    }
  });

  test('a slow adapter fails the check closed at connection.timeout instead of holding the request', async () => {
    const t = table(checkConfig(slow.address, '300ms'));
    try {
      const started = Date.now();
      const r = await dispatchCheck(t.table, bag('v1'));
      const elapsed = Date.now() - started;
      assert.equal(r.code, StatusCode.UNAVAILABLE);
      assert.match(r.message, /Deadline exceeded/i);
      assert.ok(elapsed < 2500, `the check waited ${elapsed} ms; the adapter answers after 3000 ms and the deadline is 300 ms`);
    } finally {
      await t.close();
    }
  });

  test('messages over the size limits are refused both ways, and the check fails closed', async () => {
    const sendLimited = table(checkConfig(sample.address), { maxSendMessageBytes: 16 * 1024 });
    const receiveLimited = table(checkConfig(sample.address), { maxReceiveMessageBytes: 1024 });
    try {
      const big = 'x'.repeat(64 * 1024);
      const sent = await dispatchCheck(sendLimited.table, bag(big));
      assert.equal(sent.code, StatusCode.UNAVAILABLE);
      assert.match(sent.message, /larger than/);
      // 4 KiB request is fine; the denial echoes the value, so the answer is over 1 KiB.
      const received = await dispatchCheck(receiveLimited.table, bag('y'.repeat(4096)));
      assert.equal(received.code, StatusCode.UNAVAILABLE);
      assert.match(received.message, /larger than/);
      assert.equal((await dispatchCheck(receiveLimited.table, bag('v1'))).code, StatusCode.OK, 'small messages still pass');
    } finally {
      await sendLimited.close();
      await receiveLimited.close();
    }
  });

  test('reports beyond maxReportCallsInFlight are refused, not queued', async () => {
    const a = adapterFor(slow.address, { maxReportCallsInFlight: 1, reportTimeoutMs: 500 });
    const h = a.build(a.validate({}).params!, env);
    try {
      const first = Promise.resolve(h.handleReport!([metric]));
      // The slow adapter still holds the first call: the second batch is refused at once.
      await assert.rejects(async () => h.handleReport!([metric, metric]), /1 report calls are waiting for the adapter; 2 metric instances dropped/);
      await assert.rejects(first, /Deadline exceeded/);
    } finally {
      await h.close();
    }
  });
});

describe('config errors name the object and field', () => {
  const build = (yaml: string) =>
    buildDispatchTable(snapshotOf(yaml), { adapters: adapterRegistry(BUILTIN_ADAPTERS), rootNamespace: 'istio-system', env: () => env, outOfProcess: { connections: new AdapterConnections() } }).problems.map((p) => [p.code, p.object, p.path, p.message]);

  test('a handler whose adapter object does not exist', () => {
    const problems = build(checkConfig(sample.address).replace('adapter: sampleadapter', 'adapter: missing'));
    assert.deepEqual(problems[0]!.slice(0, 3), ['MESH_ERR_MIXER_UNKNOWN_ADAPTER', 'handler allowv1.istio-system', 'spec.adapter']);
    assert.match(String(problems[0]![3]), /adapter "missing" not found/);
  });

  test('params that do not fit the adapter config descriptor', () => {
    const problems = build(checkConfig(sample.address).replace('params: { allow: [v1] }', 'params: { allow: [v1], colour: red }'));
    assert.deepEqual(problems[0], ['MESH_ERR_MIXER_ADAPTER_PARAMS', 'handler allowv1.istio-system', 'spec.params.colour', 'unknown field "colour": sampleadapter.Params has file_path, allow, valid_seconds']);
  });

  test('an instance of a template the adapter does not declare', () => {
    const yaml = `${checkConfig(sample.address)}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: requestcount, namespace: istio-system }
spec: { compiledTemplate: quota, params: { dimensions: { source: source.name | "x" } } }
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: q, namespace: istio-system }
spec:
  actions: [{ handler: allowv1, instances: [requestcount] }]
`;
    assert.deepEqual(build(yaml), [['MESH_ERR_MIXER_CONFIG', 'rule q.istio-system', 'spec.actions[0].instances[0]', 'handler allowv1.istio-system (sampleadapter) does not handle template quota']]);
  });

  test('an adapter object whose config is not a usable descriptor', () => {
    const yaml = checkConfig(sample.address).replace(/config: \S+/, 'config: aGVsbG8=');
    const problems = build(yaml);
    assert.deepEqual(problems[0]!.slice(0, 3), ['MESH_ERR_MIXER_CONFIG', 'adapter sampleadapter.istio-system', 'spec.config']);
  });

  test('an adapter object named like a built-in adapter', () => {
    const yaml = checkConfig(sample.address).replace('name: sampleadapter', 'name: denier').replace('adapter: sampleadapter', 'adapter: denier');
    assert.deepEqual(build(yaml)[0]!.slice(0, 3), ['MESH_ERR_MIXER_CONFIG', 'adapter denier.istio-system', 'metadata.name']);
  });
});

describe('validation of the adapter kind and out-of-process handlers', () => {
  const errorsOf = (kind: string, spec: unknown): string[][] =>
    validateObject({ apiVersion: 'config.istio.io/v1alpha2', kind, metadata: { name: 'x', namespace: 'istio-system' }, spec }, istioKinds)
      .diagnostics.filter((d) => d.severity === 'error')
      .map((d) => [d.path, d.message]);
  const cases: { name: string; kind: string; spec: unknown; errors: string[][] }[] = [
    { name: 'the sample adapter object', kind: 'adapter', spec: adapterSpec, errors: [] },
    { name: 'no templates', kind: 'adapter', spec: { templates: [] }, errors: [['spec.templates', 'an adapter declares at least one template']] },
    { name: 'unknown template', kind: 'adapter', spec: { templates: ['metric', 'bogus'] }, errors: [['spec.templates[1]', 'unknown template "bogus": known are metric, logentry, tracespan, reportnothing, checknothing, listentry, authorization, quota']] },
    { name: 'duplicate template', kind: 'adapter', spec: { templates: ['metric', 'metric'] }, errors: [['spec.templates[1]', 'duplicate template "metric"']] },
    { name: 'config not base64', kind: 'adapter', spec: { templates: ['metric'], config: 'not base64!' }, errors: [['spec.config', 'config must be base64 text (a serialized google.protobuf.FileDescriptorSet)']] },
    { name: 'session-based', kind: 'adapter', spec: { templates: ['metric'], session_based: true }, errors: [['spec.session_based', 'session-based adapters (InfrastructureBackend sessions) are not supported; set session_based: false']] },
    { name: 'handler with both adapters', kind: 'handler', spec: { compiledAdapter: 'denier', adapter: 'x', connection: { address: 'x:1' } }, errors: [['spec', 'only one of compiledAdapter or adapter may be set'], ['spec.connection', 'connection is only for out-of-process adapters (adapter), not compiledAdapter']] },
    { name: 'handler address without a port', kind: 'handler', spec: { adapter: 'x', connection: { address: 'localhost' } }, errors: [['spec.connection.address', 'invalid address "localhost": use host:port']] },
  ];
  for (const c of cases) test(c.name, () => assert.deepEqual(errorsOf(c.kind, c.spec), c.errors));
});
