// The server sidecar's Mixer filters cache what repeats between requests of
// the same source (the istio.mixer metadata per x-istio-attributes value,
// JSON text of source.labels per object, ratelimit descriptors per action
// outputs, report maps per metadata object). These tests change the
// attributes between requests and check that every cache answers for the
// request at hand, never for an earlier one: the RLS descriptors, the check
// cache's decisions and the report bags follow the attributes sent.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { Proxy } from '../../src/proxy/index.ts';
import type { AccessLogEntry } from '../../src/proxy/access-log.ts';
import { reportBag } from '../../src/proxy/access-loggers/mixer-report/mixer-report.ts';
import { filterMetadata, metadataText, setFilterMetadata } from '../../src/proxy/rbac/stream-metadata.ts';
import { loadXdsProtos } from '../../src/xds/index.ts';
import type { Upstream } from '../proxy/helpers.ts';
import { get, hcmListener, startProxy, startUpstream, staticCluster } from '../proxy/helpers.ts';

type Msg = Record<string, any>;
const RATELIMIT = 'type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit';
const PER_ROUTE = 'type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimitPerRoute';
const EXT_AUTHZ = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz';
const TYPED_STRUCT = 'type.googleapis.com/udpa.type.v1.TypedStruct';
const ATTRIBUTES_CONFIG = 'type.googleapis.com/istio.mixer.v1.config.client.HttpClientConfig';
const h2 = { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } } };

let app: Upstream;
let authz: grpc.Server;
let rls: grpc.Server;
let proxy: Proxy;
const checks: Msg[] = [];
const rlsCalls: Msg[] = [];
const appHeaders: Record<string, unknown>[] = [];

const attributes = (a: object): string => Buffer.from(JSON.stringify(a)).toString('base64');
const V1 = attributes({ 'source.labels': { app: 'reviews', version: 'v1' }, 'source.name': 'reviews-v1' });
const V3 = attributes({ 'source.labels': { app: 'reviews', version: 'v3' }, 'source.name': 'reviews-v3' });

async function bind(server: grpc.Server): Promise<number> {
  return new Promise((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
}

/** The last RLS call's descriptor entries as `key=value`. */
function lastDescriptor(): string[] {
  return (rlsCalls.at(-1)!.descriptors as Msg[]).flatMap((d) => (d.entries as Msg[]).map((e) => `${e.key}=${e.value}`));
}

async function send(path: string, header?: string): Promise<number> {
  return (await get(proxy.listenerPort('in')!, path, { headers: header === undefined ? {} : { 'x-istio-attributes': header } })).status;
}

before(async () => {
  app = await startUpstream('app', (req, res) => {
    appHeaders.push({ ...req.headers });
    res.end('ok');
  });
  const num = (n: number): object => ({ numberValue: n });
  authz = new grpc.Server();
  authz.addService(loadXdsProtos().serviceDefinition('envoy.service.auth.v3.Authorization'), {
    Check: (call: grpc.ServerUnaryCall<Msg, Msg>, callback: grpc.sendUnaryData<Msg>) => {
      checks.push(call.request);
      // Mixer's cache hints: the answer holds for every request with the same source.labels.
      const hints = { valid_duration_ms: num(60_000), valid_use_count: num(1000), referenced_attributes: { listValue: { values: [{ stringValue: 'source.labels' }] } } };
      callback(null, { status: { code: 0 }, ok_response: {}, dynamic_metadata: { fields: { 'istio.mixer': { structValue: { fields: hints } } } } });
    },
  });
  rls = new grpc.Server();
  rls.addService(loadXdsProtos().serviceDefinition('envoy.service.ratelimit.v3.RateLimitService'), {
    // No `quota` in the answer: the filter calls once per request, so each call shows that request's descriptors.
    ShouldRateLimit: (call: grpc.ServerUnaryCall<Msg, Msg>, callback: grpc.sendUnaryData<Msg>) => {
      rlsCalls.push(call.request);
      callback(null, { overall_code: 'OK' });
    },
  });
  const [authzPort, rlsPort] = await Promise.all([bind(authz), bind(rls)]);
  const meta = (key: string): object => ({ metadata: { descriptor_key: key, metadata_key: { key: 'istio.mixer', path: [{ key }] }, skip_if_absent: true } });
  const route = {
    virtual_hosts: [{
      name: 'all', domains: ['*'],
      routes: [{
        match: { prefix: '/' }, route: { cluster: 'app' },
        typed_per_filter_config: {
          'istio.mixer.quota': { '@type': PER_ROUTE, rate_limits: [{ actions: [meta('source.labels'), meta('source.name'), meta('destination.name'), { request_headers: { header_name: ':path', descriptor_key: 'request.path' } }] }] },
        },
      }],
    }],
  };
  const filters = [
    { name: 'istio.mixer', typed_config: { '@type': TYPED_STRUCT, type_url: ATTRIBUTES_CONFIG } },
    { name: 'istio.mixer.check', typed_config: { '@type': EXT_AUTHZ, grpc_service: { envoy_grpc: { cluster_name: 'authz' }, timeout: '2s' }, transport_api_version: 'V3', metadata_context_namespaces: ['istio.mixer'] } },
    { name: 'istio.mixer.quota', typed_config: { '@type': RATELIMIT, domain: 'mixer', timeout: '2s', rate_limit_service: { grpc_service: { envoy_grpc: { cluster_name: 'rls' } }, transport_api_version: 'V3' } } },
  ];
  proxy = await startProxy({
    node: { id: 'sidecar~10.0.0.2~ratings-v1.default~default.svc.cluster.local', metadata: { NAME: 'ratings-v1', NAMESPACE: 'default', LABELS: { app: 'ratings' } } },
    static_resources: {
      clusters: [staticCluster('app', [app.port]), staticCluster('authz', [authzPort], h2), staticCluster('rls', [rlsPort], h2)],
      listeners: [hcmListener('in', route, { httpFilters: filters })],
    },
  });
});

after(async () => {
  await proxy?.stop();
  await app?.close();
  authz?.forceShutdown();
  rls?.forceShutdown();
});

test('ratelimit descriptors and check cache decisions follow the attributes of each request', async () => {
  assert.equal(await send('/a', V1), 200);
  assert.deepEqual(lastDescriptor(), ['source.labels={"app":"reviews","version":"v1"}', 'source.name=reviews-v1', 'destination.name=ratings-v1', 'request.path=/a']);
  assert.equal(await send('/a', V1), 200);
  assert.equal(rlsCalls.length, 2);
  assert.deepEqual(lastDescriptor(), ['source.labels={"app":"reviews","version":"v1"}', 'source.name=reviews-v1', 'destination.name=ratings-v1', 'request.path=/a']);
  assert.equal(checks.length, 1, 'the same source.labels: answered by the check cache');

  assert.equal(await send('/a', V3), 200);
  assert.deepEqual(lastDescriptor(), ['source.labels={"app":"reviews","version":"v3"}', 'source.name=reviews-v3', 'destination.name=ratings-v1', 'request.path=/a']);
  assert.equal(checks.length, 2, 'other source.labels: checked, not the v1 answer');
  assert.equal(checks[1]!.attributes.metadata_context.filter_metadata['istio.mixer'].fields['source.labels'].structValue.fields.version.stringValue, 'v3');

  assert.equal(await send('/b', V1), 200);
  assert.deepEqual(lastDescriptor(), ['source.labels={"app":"reviews","version":"v1"}', 'source.name=reviews-v1', 'destination.name=ratings-v1', 'request.path=/b']);
  assert.equal(checks.length, 2, 'v1 again: still cached');

  for (const header of [undefined, 'not base64 json']) {
    assert.equal(await send('/a', header), 200);
    assert.deepEqual(lastDescriptor(), ['destination.name=ratings-v1', 'request.path=/a'], `header ${header}: no source entries`);
  }
  assert.equal(checks.length, 3, 'no source.labels is another key, once');
  assert.ok(appHeaders.every((h) => h['x-istio-attributes'] === undefined), 'the app never sees the header');
});

test('metadata: the first write is kept as handed over, later writes merge into a new object', () => {
  const owner = {};
  const first = Object.freeze({ a: '1', b: '2' });
  setFilterMetadata(owner, 'ns', first);
  assert.equal(filterMetadata(owner, 'ns'), first);
  setFilterMetadata(owner, 'ns', { b: '3', c: '4' });
  assert.deepEqual(filterMetadata(owner, 'ns'), { a: '1', b: '3', c: '4' });
  assert.deepEqual(first, { a: '1', b: '2' }, 'the handed-over object is not changed');
});

test('metadataText: JSON of the value at hand; an object that is not frozen is never remembered', () => {
  const labels: Record<string, string> = { app: 'reviews' };
  assert.equal(metadataText(labels), '{"app":"reviews"}');
  labels.version = 'v2';
  assert.equal(metadataText(labels), '{"app":"reviews","version":"v2"}');
  const frozen = Object.freeze({ app: 'ratings' });
  assert.equal(metadataText(frozen), '{"app":"ratings"}');
  assert.equal(metadataText(frozen), '{"app":"ratings"}');
  const shallow = Object.freeze({ inner: { x: '1' } });
  assert.equal(metadataText(shallow), '{"inner":{"x":"1"}}');
  (shallow.inner as Record<string, string>).x = '2';
  assert.equal(metadataText(shallow), '{"inner":{"x":"2"}}', 'frozen only at the top: not remembered');
  for (const [v, t] of [['s', 's'], [3, '3'], [true, 'true'], [null, undefined], [undefined, undefined]] as const) assert.equal(metadataText(v), t);
});

test('report bags: source.labels follows the metadata object of each request', () => {
  const entry = (labels: Record<string, string>, frozen: boolean): AccessLogEntry => {
    const requestHeaders = { 'content-type': 'text/plain' };
    setFilterMetadata(requestHeaders, 'istio.mixer', frozen ? Object.freeze({ 'source.labels': Object.freeze(labels) }) : { 'source.labels': labels });
    return { startTime: 1_700_000_000_000, method: 'GET', path: '/a?x=1', protocol: 'HTTP/1.1', status: 200, flags: '', bytesReceived: 0, bytesSent: 2, durationMs: 1, upstreamServiceTime: undefined, forwardedFor: undefined, userAgent: undefined, requestId: 'r', authority: 'ratings', upstreamHost: undefined, upstreamCluster: 'inbound|9080||', requestHeaders };
  };
  const labelsOf = (e: AccessLogEntry): unknown => Object.fromEntries(reportBag(e, 'sidecar~1~x~y').get('source.labels') as ReadonlyMap<string, string>);
  const v1 = { app: 'reviews', version: 'v1' };
  assert.deepEqual(labelsOf(entry(v1, true)), v1);
  assert.deepEqual(labelsOf(entry({ app: 'reviews', version: 'v3' }, true)), { app: 'reviews', version: 'v3' });
  assert.deepEqual(labelsOf(entry(v1, true)), v1);
  const mutable = { app: 'details' };
  const e = entry(mutable, false);
  assert.deepEqual(labelsOf(e), { app: 'details' });
  mutable.app = 'productpage';
  assert.deepEqual(labelsOf(e), { app: 'productpage' }, 'a mutable object is read again');
  const bag = reportBag(entry(v1, true), 'sidecar~1~x~y');
  assert.deepEqual(Object.fromEntries(bag.get('request.headers') as ReadonlyMap<string, string>), { 'content-type': 'text/plain' });
  assert.deepEqual(Object.fromEntries(bag.get('request.query_params') as ReadonlyMap<string, string>), { x: '1' });
});
