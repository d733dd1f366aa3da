// Mixer end to end over real gRPC on 127.0.0.1: ext_authz v3 Check, RLS v3
// ShouldRateLimit and ALS v3 StreamAccessLogs with @grpc/grpc-js clients on
// Envoy's own service definitions, config from snapshots, a fake clock for
// quota windows.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { Registry } from '../../src/common/metrics.ts';
import { AUTHORIZATION_SERVICE, ACCESS_LOG_SERVICE, Mixer, MixerClient, RATE_LIMIT_SERVICE, AttributeBag } from '../../src/mixer/index.ts';
import { loadXdsProtos } from '../../src/xds/index.ts';
import { FakeClock, ManualSnapshots, snapshotOf } from './helpers.ts';
import { denyV3Yaml, listcheckerYaml, memquotaSpec, requestCountQuotaYaml, versionWhitelistYaml } from './mixer-config-fixtures.ts';

const protos = loadXdsProtos();

const DENY_V3 = denyV3Yaml({
  status: '{ code: 7, message: "Not allowed: reviews v3 is blocked" }',
  validDuration: '10s',
  validUseCount: 100,
  rule: 'denyreviewsv3',
  match: 'source.labels["version"] == "v3" && destination.service.host == "ratings.default.svc.cluster.local"',
  ruleExtra: 'responseHeaderOperations: [{ name: x-denied-by, values: [\'"mixer"\'] }]',
});

const LISTS = versionWhitelistYaml({ instance: 'appversion', match: 'destination.service.name == "reviews"' }) + '---' + listcheckerYaml({
  handler: 'badnets',
  params: '{ overrides: ["10.66.0.0/16", "fd66::/16"], entryType: IP_ADDRESSES, blacklist: true }',
  instance: 'sourceip',
  value: 'source.ip',
  rule: 'blockbadnets',
});

const QUOTA = requestCountQuotaYaml({
  handlerSpec: memquotaSpec({ maxAmount: 1, validDuration: '1s', overrides: [{ dimensions: { source: 'productpage' }, maxAmount: 3 }] }),
  dimensions: { source: 'source.labels["app"] | "unknown"', destination: 'destination.service.host | "unknown"' },
});

const TELEMETRY = `
apiVersion: config.istio.io/v1alpha2
kind: attributemanifest
metadata: { name: custom, namespace: istio-system }
spec:
  attributes:
    myorg.tenant: { valueType: STRING }
---
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: prom, namespace: istio-system }
spec:
  compiledAdapter: prometheus
  params:
    metrics:
    - name: requests_total
      instanceName: requestcount.istio-system
      kind: COUNTER
      labelNames: [response_code, destination_service, tenant]
    - name: request_duration_milliseconds
      instanceName: requestduration.istio-system
      kind: DISTRIBUTION
      labelNames: [destination_service]
      buckets: { explicitBuckets: { bounds: [10, 100, 1000] } }
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: requestcount, namespace: istio-system }
spec:
  compiledTemplate: metric
  params:
    value: "1"
    dimensions:
      response_code: response.code | 200
      destination_service: destination.service.host | "unknown"
      tenant: myorg.tenant | "none"
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: requestduration, namespace: istio-system }
spec:
  compiledTemplate: metric
  params:
    value: response.duration | duration("0ms")
    dimensions:
      destination_service: destination.service.host | "unknown"
---
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: stdio, namespace: istio-system }
spec:
  compiledAdapter: stdio
  params: { outputAsJson: true, logStream: STDOUT }
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: accesslog, namespace: istio-system }
spec:
  compiledTemplate: logentry
  params:
    severity: '"Info"'
    timestamp: request.time
    variables:
      destinationService: destination.service.host | "unknown"
      responseCode: response.code | 0
      path: request.path | ""
      tenant: myorg.tenant | "none"
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: telemetry, namespace: istio-system }
spec:
  match: context.protocol == "http" || context.protocol == "grpc"
  actions:
  - { handler: prom, instances: [requestcount, requestduration] }
  - { handler: stdio, instances: [accesslog] }
`;

interface Harness {
  mixer: Mixer;
  snapshots: ManualSnapshots;
  clock: FakeClock;
  registry: Registry;
  lines: string[];
  address: string;
  server: grpc.Server;
  authz: grpc.Client;
  rls: grpc.Client;
  als: grpc.Client;
}

async function startHarness(): Promise<Harness> {
  const snapshots = new ManualSnapshots();
  const clock = new FakeClock();
  const registry = new Registry();
  const lines: string[] = [];
  const mixer = new Mixer({ snapshots, now: clock.now, metrics: registry, write: (_s, l) => void lines.push(l) });
  await mixer.start();
  const server = new grpc.Server();
  mixer.register(server);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const address = `127.0.0.1:${port}`;
  const creds = grpc.credentials.createInsecure();
  return {
    mixer, snapshots, clock, registry, lines, address, server,
    authz: new (protos.service(AUTHORIZATION_SERVICE))(address, creds),
    rls: new (protos.service(RATE_LIMIT_SERVICE))(address, creds),
    als: new (protos.service(ACCESS_LOG_SERVICE))(address, creds),
  };
}

async function stopHarness(h: Harness): Promise<void> {
  h.authz.close();
  h.rls.close();
  h.als.close();
  await h.mixer.stop();
  await new Promise<void>((resolve) => h.server.tryShutdown(() => resolve()));
}

function unary(client: grpc.Client, method: string, req: unknown): Promise<any> {
  return new Promise((resolve, reject) => (client as any)[method](req, (err: Error | null, res: unknown) => (err ? reject(err) : resolve(res))));
}

/** An ext_authz CheckRequest as Envoy sends it for an inbound HTTP request. */
function checkRequest(o: { version?: string; app?: string; ip?: string; service: string; path?: string }): unknown {
  return {
    attributes: {
      source: {
        address: { socket_address: { address: o.ip ?? '10.1.0.5', port_value: 40000 } },
        principal: `spiffe://cluster.local/ns/default/sa/${o.app ?? 'reviews'}`,
        labels: { ...(o.version ? { version: o.version } : {}), ...(o.app ? { app: o.app } : {}) },
      },
      destination: { address: { socket_address: { address: '10.1.0.9', port_value: 9080 } }, service: o.service },
      request: { http: { id: 'r1', method: 'GET', path: o.path ?? '/ratings/0', host: 'ratings:9080', scheme: 'http', protocol: 'HTTP/1.1', headers: { 'user-agent': 'test' } } },
    },
  };
}

function structField(s: any, ...path: string[]): any {
  let v: any = s;
  for (const p of path) v = v?.fields?.[p]?.structValue ?? v?.fields?.[p];
  return v;
}

describe('Mixer over gRPC', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await stopHarness(h);
  });

  test('a denier rule on a source version answers PERMISSION_DENIED (403) with its message; others are OK', async () => {
    h.snapshots.publish(snapshotOf(DENY_V3));
    const denied = await unary(h.authz, 'Check', checkRequest({ version: 'v3', service: 'ratings.default.svc.cluster.local' }));
    assert.equal(denied.status.code, 7);
    assert.equal(denied.status.message, 'Not allowed: reviews v3 is blocked');
    assert.equal(denied.http_response, 'denied_response');
    assert.equal(denied.denied_response.status.code, 'Forbidden');
    assert.equal(denied.denied_response.body, 'Not allowed: reviews v3 is blocked');
    assert.deepEqual(denied.denied_response.headers.map((x: any) => [x.header.key, x.header.value]), [['x-denied-by', 'mixer']]);
    const hints = structField(denied.dynamic_metadata, 'istio.mixer');
    assert.equal(hints.fields.valid_duration_ms.numberValue, 10_000);
    assert.equal(hints.fields.valid_use_count.numberValue, 100);
    assert.deepEqual(hints.fields.referenced_attributes.listValue.values.map((v: any) => v.stringValue), ['destination.service.host', 'source.labels']);

    for (const req of [checkRequest({ version: 'v2', service: 'ratings.default.svc.cluster.local' }), checkRequest({ version: 'v3', service: 'details.default.svc.cluster.local' })]) {
      const ok = await unary(h.authz, 'Check', req);
      assert.equal(ok.status.code, 0);
      assert.equal(ok.http_response, 'ok_response');
    }
  });

  test('listchecker: whitelist of versions and blacklist of CIDR ranges', async () => {
    h.snapshots.publish(snapshotOf(LISTS));
    const cases = [
      { name: 'whitelisted version', req: { version: 'v1', service: 'reviews.default.svc.cluster.local' }, code: 0 },
      { name: 'version not whitelisted', req: { version: 'v3', service: 'reviews.default.svc.cluster.local' }, code: 5, message: 'v3 is not whitelisted' },
      { name: 'absent version falls back to "none"', req: { service: 'reviews.default.svc.cluster.local' }, code: 5, message: 'none is not whitelisted' },
      { name: 'other service skips the whitelist', req: { version: 'v3', service: 'details.default.svc.cluster.local' }, code: 0 },
      { name: 'blacklisted v4 range', req: { version: 'v1', ip: '10.66.3.4', service: 'details.default.svc.cluster.local' }, code: 7, message: '10.66.3.4 is blacklisted' },
      { name: 'blacklisted v6 range', req: { ip: 'fd66::7', service: 'details.default.svc.cluster.local' }, code: 7, message: 'fd66::7 is blacklisted' },
    ];
    for (const c of cases) {
      const res = await unary(h.authz, 'Check', checkRequest(c.req));
      assert.equal(res.status.code, c.code, c.name);
      if (c.message) assert.equal(res.status.message, c.message, c.name);
    }
  });

  test('memquota 1 req/s with an override of 3 for productpage, over RLS with a fake clock', async () => {
    h.snapshots.publish(snapshotOf(QUOTA));
    const ask = async (app: string) =>
      (await unary(h.rls, 'ShouldRateLimit', { domain: 'mesh', hits_addend: 1, descriptors: [{ entries: [{ key: 'quota', value: 'requestcountquota' }, { key: 'source.labels.app', value: app }] }] })).overall_code;
    assert.deepEqual([await ask('reviews'), await ask('reviews')], ['OK', 'OVER_LIMIT']);
    assert.deepEqual([await ask('productpage'), await ask('productpage'), await ask('productpage'), await ask('productpage')], ['OK', 'OK', 'OK', 'OVER_LIMIT']);
    h.clock.advance(500);
    assert.equal(await ask('reviews'), 'OVER_LIMIT');
    h.clock.advance(500);
    assert.equal(await ask('reviews'), 'OK');

    // Without a quota entry, the QuotaSpecBinding of the destination selects the quota.
    const bySpec = async (host: string) =>
      (await unary(h.rls, 'ShouldRateLimit', { domain: 'mesh', descriptors: [{ entries: [{ key: 'destination.service.host', value: host }, { key: 'source.labels.app', value: 'details' }] }] })).overall_code;
    assert.deepEqual([await bySpec('ratings.default.svc.cluster.local'), await bySpec('ratings.default.svc.cluster.local')], ['OK', 'OVER_LIMIT']);
    assert.equal(await bySpec('details.default.svc.cluster.local'), 'OK');
  });

  test('a config change that does not touch the quota handler keeps its window', async () => {
    h.clock.advance(5000);
    const ask = async () => (await h.mixer.quota(AttributeBag.of({ 'source.labels': new Map([['app', 'keep']]) }), 'requestcountquota', 1)).granted;
    assert.equal(await ask(), 1);
    h.snapshots.publish(snapshotOf(`${QUOTA}\n---\n${DENY_V3}`));
    assert.equal(await ask(), 0, 'the memquota handler (and its window) survived the new snapshot');
  });

  test('reports over ALS feed prometheus metrics defined in config and stdio log lines', async () => {
    h.snapshots.publish(snapshotOf(TELEMETRY));
    const entry = (code: number, cluster: string, ms: number) => ({
      common_properties: {
        downstream_remote_address: { socket_address: { address: '10.1.0.5', port_value: 40000 } },
        upstream_cluster: cluster,
        start_time: { seconds: '1767225600', nanos: 0 },
        duration: { seconds: '0', nanos: ms * 1e6 },
        metadata: { filter_metadata: { 'istio.mixer': { fields: { 'myorg.tenant': { stringValue: 'acme' } } } } },
      },
      request: { request_method: 'GET', path: '/ratings/1', request_headers: { 'content-type': 'application/json' } },
      response: { response_code: { value: code } },
    });
    await new Promise<void>((resolve, reject) => {
      const call = (h.als as any).StreamAccessLogs((err: Error | null) => (err ? reject(err) : resolve()));
      call.write({ identifier: { node: { id: 'sidecar~10.1.0.5~productpage.default~default.svc.cluster.local' }, log_name: 'als' }, http_logs: { log_entry: [entry(200, 'outbound|9080||ratings.default.svc.cluster.local', 5)] } });
      call.write({ http_logs: { log_entry: [entry(503, 'outbound|9080||ratings.default.svc.cluster.local', 50), entry(200, 'outbound|9080||details.default.svc.cluster.local', 500)] } });
      call.end();
    });
    await h.mixer.flushReports();
    const text = await h.registry.metrics();
    assert.match(text, /istio_requests_total\{response_code="200",destination_service="ratings.default.svc.cluster.local",tenant="acme"\} 1/);
    assert.match(text, /istio_requests_total\{response_code="503",destination_service="ratings.default.svc.cluster.local",tenant="acme"\} 1/);
    assert.match(text, /istio_request_duration_milliseconds_bucket\{le="100",destination_service="ratings.default.svc.cluster.local"\} 2/);
    assert.match(text, /istio_request_duration_milliseconds_bucket\{le="100",destination_service="details.default.svc.cluster.local"\} 0/);
    const logs = h.lines.map((l) => JSON.parse(l));
    assert.equal(logs.length, 3);
    assert.deepEqual(
      logs.map((l) => [l.level, l.instance, l.destinationService, l.responseCode, l.path, l.tenant]),
      [
        ['info', 'accesslog.istio-system', 'ratings.default.svc.cluster.local', 200, '/ratings/1', 'acme'],
        ['info', 'accesslog.istio-system', 'ratings.default.svc.cluster.local', 503, '/ratings/1', 'acme'],
        ['info', 'accesslog.istio-system', 'details.default.svc.cluster.local', 200, '/ratings/1', 'acme'],
      ],
    );
    assert.equal(logs[0].time, '2026-01-01T00:00:00.000Z');
  });

  test('a bad snapshot keeps the last good table and names the object', async () => {
    h.snapshots.publish(snapshotOf(DENY_V3));
    const good = h.mixer.table();
    h.snapshots.publish(snapshotOf(`${DENY_V3}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: dangling, namespace: istio-system }
spec:
  actions: [{ handler: nosuchhandler, instances: [denyrequest] }]
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: customattr, namespace: istio-system }
spec: { compiledTemplate: listentry, params: { value: myorg.undeclared } }
`));
    assert.equal(h.mixer.table(), good);
    assert.deepEqual(h.mixer.problems().map((p) => [p.code, p.object, p.path]), [
      ['MESH_ERR_MIXER_CONFIG', 'instance customattr.istio-system', 'spec.params.value'],
      ['MESH_ERR_MIXER_CONFIG', 'rule dangling.istio-system', 'spec.actions[0].handler'],
    ]);
    assert.match(h.mixer.problems()[0]!.message, /unknown attribute "myorg.undeclared"/);
    const denied = await unary(h.authz, 'Check', checkRequest({ version: 'v3', service: 'ratings.default.svc.cluster.local' }));
    assert.equal(denied.status.code, 7);
    const text = await h.registry.metrics();
    assert.match(text, /mixer_config_problems 2/);
    assert.match(text, /mixer_check_total\{code="7"\} \d+/);
  });
});

describe('MixerClient', () => {
  let h: Harness;
  let client: MixerClient;
  before(async () => {
    h = await startHarness();
    client = new MixerClient({ address: h.address, reportBatchSize: 2 });
  });
  after(async () => {
    await client.close();
    await stopHarness(h);
  });

  test('check, quota and batched report with attributes the client names', async () => {
    h.snapshots.publish(snapshotOf(`${DENY_V3}\n---\n${QUOTA}\n---\n${TELEMETRY}`));
    const denied = await client.check({ 'source.labels': new Map([['version', 'v3']]), 'destination.service.host': 'ratings.default.svc.cluster.local' });
    assert.deepEqual([denied.allowed, denied.code, denied.message, denied.validUseCount], [false, 7, 'Not allowed: reviews v3 is blocked', 100]);
    const allowed = await client.check({ 'source.labels': new Map([['version', 'v1']]), 'destination.service.host': 'ratings.default.svc.cluster.local' });
    assert.equal(allowed.allowed, true);
    assert.deepEqual(allowed.referencedAttributes, ['destination.service.host', 'source.labels']);

    assert.deepEqual([await client.quota('requestcountquota', { 'source.labels': new Map([['app', 'c']]) }), await client.quota('requestcountquota', { 'source.labels': new Map([['app', 'c']]) })], [true, false]);

    await client.report({ 'destination.service.host': 'reviews.default.svc.cluster.local', 'response.code': 200, 'context.protocol': 'http', 'myorg.tenant': 't1' });
    assert.equal(h.lines.length, 0, 'one report stays buffered');
    await client.report({ 'destination.service.host': 'reviews.default.svc.cluster.local', 'response.code': 404, 'context.protocol': 'http' });
    await h.mixer.flushReports();
    assert.equal(h.lines.length, 2);
    assert.match(await h.registry.metrics(), /istio_requests_total\{response_code="404",destination_service="reviews.default.svc.cluster.local",tenant="none"\} 1/);
    assert.match(await h.registry.metrics(), /istio_requests_total\{response_code="200",destination_service="reviews.default.svc.cluster.local",tenant="t1"\} 1/);
  });
});
