// Every built-in adapter passes the conformance suite; adapter-specific
// behaviour (lists, windows, overrides, metric kinds) is tested here too.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Registry } from '../../src/common/metrics.ts';
import type { AdapterEnv, Instance } from '../../src/mixer/index.ts';
import { StatusCode, denierAdapter, listcheckerAdapter, memquotaAdapter, prometheusAdapter, stdioAdapter } from '../../src/mixer/index.ts';
import { adapterConformance } from './adapter-conformance.ts';
import { FakeClock } from './helpers.ts';

const checknothing: Instance = { name: 'check.istio-system', template: 'checknothing', fields: {} };
const listentry: Instance = { name: 'src.istio-system', template: 'listentry', fields: { value: '10.0.0.1' } };
const authorization: Instance = { name: 'authz.istio-system', template: 'authorization', fields: { subject: { user: 'u' }, action: { method: 'GET' } } };
const quota: Instance = { name: 'requestcount.istio-system', template: 'quota', fields: { dimensions: new Map([['source', 'a']]) } };
const metric: Instance = { name: 'requestcount.istio-system', template: 'metric', fields: { value: 1, dimensions: new Map<string, string | number>([['response_code', 200]]) } };
const logentry: Instance = { name: 'accesslog.istio-system', template: 'logentry', fields: { severity: 'Info', variables: new Map([['path', '/']]) } };

adapterConformance({
  adapter: denierAdapter,
  valid: [{ status: { code: 7, message: 'nope' }, validDuration: '10s', validUseCount: 5 }],
  invalid: [{ params: { status: { code: 99 } }, path: 'status.code' }, { params: { validDuration: 'soon' }, path: 'validDuration' }],
  instances: [checknothing, listentry, authorization, quota],
});
adapterConformance({
  adapter: listcheckerAdapter,
  valid: [{ overrides: ['10.0.0.0/8'], entryType: 'IP_ADDRESSES', blacklist: true }, { overrides: ['^v[0-9]$'], entryType: 'REGEX' }],
  invalid: [{ params: { entryType: 'IP_ADDRESSES', overrides: ['10.0.0.0/33'] }, path: 'overrides[0]' }, { params: { providerUrl: 'http://x' }, path: 'providerUrl' }],
  instances: [listentry],
});
adapterConformance({
  adapter: memquotaAdapter,
  valid: [{ quotas: [{ name: 'requestcount.istio-system', maxAmount: 1, validDuration: '1s', overrides: [{ dimensions: { source: 'a' }, maxAmount: 2 }] }] }],
  invalid: [{ params: { quotas: [{ name: 'q', maxAmount: -1 }] }, path: 'quotas[0].maxAmount' }, { params: { quotas: [{ name: 'q', maxAmount: 1, overrides: [{ maxAmount: 1 }] }] }, path: 'quotas[0].overrides[0].dimensions' }],
  instances: [quota],
});
adapterConformance({
  adapter: stdioAdapter,
  valid: [{ logStream: 'STDOUT', outputAsJson: false, severityLevels: { Info: 'INFO' } }],
  invalid: [{ params: { logStream: 'FILE' }, path: 'logStream' }],
  instances: [logentry, metric],
});
adapterConformance({
  adapter: prometheusAdapter,
  valid: [{ metrics: [{ name: 'requests_total', instanceName: 'requestcount.istio-system', kind: 'COUNTER', labelNames: ['response_code'] }] }],
  invalid: [{ params: { metrics: [{ name: 'bad-name', instanceName: 'x', kind: 'COUNTER' }] }, path: 'metrics[0].name' }, { params: { metrics: [{ name: 'x', instanceName: 'x', kind: 'SUMMARY' }] }, path: 'metrics[0].kind' }],
  instances: [metric],
});

function envWith(clock: FakeClock, registry = new Registry(), lines: string[] = []): AdapterEnv {
  return { now: clock.now, metrics: registry, write: (_s, l) => void lines.push(l), handlerName: 'h.istio-system' };
}

describe('listchecker', () => {
  const cases = [
    { name: 'whitelist hit', params: { overrides: ['v1', 'v2'] }, value: 'v1', code: StatusCode.OK },
    { name: 'whitelist miss', params: { overrides: ['v1'] }, value: 'v3', code: StatusCode.NOT_FOUND, message: 'v3 is not whitelisted' },
    { name: 'blacklist hit', params: { overrides: ['v1'], blacklist: true }, value: 'v1', code: StatusCode.PERMISSION_DENIED, message: 'v1 is blacklisted' },
    { name: 'blacklist miss', params: { overrides: ['v1'], blacklist: true }, value: 'v2', code: StatusCode.OK },
    { name: 'case-insensitive', params: { overrides: ['Jason'], entryType: 'CASE_INSENSITIVE_STRINGS' }, value: 'JASON', code: StatusCode.OK },
    { name: 'CIDR v4', params: { overrides: ['10.0.0.0/8'], entryType: 'IP_ADDRESSES' }, value: '10.200.1.1', code: StatusCode.OK },
    { name: 'CIDR v4 miss', params: { overrides: ['10.0.0.0/8'], entryType: 'IP_ADDRESSES' }, value: '11.0.0.1', code: StatusCode.NOT_FOUND },
    { name: 'CIDR v6', params: { overrides: ['fd00::/8'], entryType: 'IP_ADDRESSES' }, value: 'fd12::1', code: StatusCode.OK },
    { name: 'regex whole value', params: { overrides: ['v[0-9]'], entryType: 'REGEX' }, value: 'v10', code: StatusCode.NOT_FOUND },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const h = listcheckerAdapter.build(listcheckerAdapter.validate(c.params).params!, envWith(new FakeClock()));
      const r = await h.handleCheck!({ ...listentry, fields: { value: c.value } });
      assert.equal(r.code, c.code);
      if (c.message) assert.equal(r.message, c.message);
    });
  }
});

describe('memquota', () => {
  test('rolling window of 1/s, an override of 3/s for one dimension value', async () => {
    const clock = new FakeClock();
    const params = memquotaAdapter.validate({ quotas: [{ name: 'requestcount.quota.istio-system', maxAmount: 1, validDuration: '1s', overrides: [{ dimensions: { source: 'vip' }, maxAmount: 3 }] }] }).params!;
    const h = memquotaAdapter.build(params, envWith(clock));
    const ask = async (source: string) => (await h.handleQuota!({ ...quota, fields: { dimensions: new Map([['source', source]]) } }, { amount: 1, bestEffort: false })).granted;
    assert.deepEqual([await ask('a'), await ask('a'), await ask('b')], [1, 0, 1]);
    assert.deepEqual([await ask('vip'), await ask('vip'), await ask('vip'), await ask('vip')], [1, 1, 1, 0]);
    clock.advance(999);
    assert.equal(await ask('a'), 0);
    clock.advance(1);
    assert.equal(await ask('a'), 1);
  });
  test('best effort grants what is left', async () => {
    const h = memquotaAdapter.build(memquotaAdapter.validate({ quotas: [{ name: 'requestcount.istio-system', maxAmount: 5, validDuration: '1s' }] }).params!, envWith(new FakeClock()));
    assert.equal((await h.handleQuota!(quota, { amount: 3, bestEffort: false })).granted, 3);
    assert.equal((await h.handleQuota!(quota, { amount: 3, bestEffort: false })).granted, 0);
    assert.equal((await h.handleQuota!(quota, { amount: 3, bestEffort: true })).granted, 2);
  });
});

describe('prometheus', () => {
  test('counter, gauge and distribution with labels', async () => {
    const registry = new Registry();
    const params = prometheusAdapter.validate({
      metrics: [
        { name: 'requests_total', instanceName: 'requestcount.istio-system', kind: 'COUNTER', labelNames: ['response_code'] },
        { name: 'last_code', instanceName: 'requestcount.istio-system', kind: 'GAUGE', labelNames: [] },
        { name: 'request_duration_milliseconds', instanceName: 'requestcount.istio-system', kind: 'DISTRIBUTION', labelNames: ['response_code'], buckets: { explicitBuckets: { bounds: [1, 10, 100] } } },
      ],
    }).params!;
    const h = prometheusAdapter.build(params, envWith(new FakeClock(), registry));
    await h.handleReport!([metric, { ...metric, fields: { value: 5, dimensions: new Map([['response_code', 503]]) } }]);
    const text = await registry.metrics();
    assert.match(text, /istio_requests_total\{response_code="200"\} 1/);
    assert.match(text, /istio_requests_total\{response_code="503"\} 5/);
    assert.match(text, /istio_last_code 5/);
    assert.match(text, /istio_request_duration_milliseconds_bucket\{le="10",response_code="503"\} 1/);
    await h.close();
    assert.equal(await registry.metrics(), '\n');
  });
});
