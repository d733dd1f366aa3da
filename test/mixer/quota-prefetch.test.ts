// Quota prefetch on RLS v3's cacheable quota, through real proxies on
// 127.0.0.1: two proxies' ratelimit filters call one Mixer (memquota) over
// gRPC. A high limit is decided locally almost always; a 1 req/s limit still
// refuses the second request in a second (and the refusal is cached); a
// pool shared by both proxies is never exceeded. An RLS server that sends
// no `quota` still sees one call per request. Mixer rejects a bad allotment.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { Registry } from '../../src/common/metrics.ts';
import { Mixer, RATE_LIMIT_SERVICE } from '../../src/mixer/index.ts';
import type { Proxy } from '../../src/proxy/index.ts';
import { loadXdsProtos } from '../../src/xds/index.ts';
import type { Upstream } from '../proxy/helpers.ts';
import { get, hcmListener, startProxy, startUpstream, staticCluster } from '../proxy/helpers.ts';
import { ManualSnapshots, snapshotOf } from './helpers.ts';
import { memquotaSpec, requestCountQuotaYaml } from './mixer-config-fixtures.ts';

type Msg = Record<string, any>;
const RATINGS = 'ratings.default.svc.cluster.local';
const RATELIMIT = 'type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit';
const PER_ROUTE = 'type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimitPerRoute';

const QUOTA = requestCountQuotaYaml({
  handlerSpec: memquotaSpec({
    maxAmount: 1,
    validDuration: '1s',
    overrides: [{ dimensions: { source: 'high' }, maxAmount: 1000000 }, { dimensions: { source: 'pool' }, maxAmount: 40, validDuration: '0s' }],
  }),
  dimensions: { source: 'source.name | "unknown"' },
});

let registry: Registry;
let mixer: Mixer;
let mixerServer: grpc.Server;
let mixerPort: number;
let plainServer: grpc.Server;
let plainCalls: Msg[] = [];
let app: Upstream;
let proxyA: Proxy;
let proxyB: Proxy;
let proxyPlain: Proxy;

const h2 = { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } } };

/** A proxy whose one route charges a descriptor {destination.service.host, source.name from x-source}. */
function proxyBootstrap(rlsPort: number): Record<string, unknown> {
  const route = {
    virtual_hosts: [{
      name: 'all', domains: ['*'],
      routes: [{
        match: { prefix: '/' }, route: { cluster: 'app' },
        typed_per_filter_config: {
          'istio.mixer.quota': { '@type': PER_ROUTE, rate_limits: [{ actions: [
            { generic_key: { descriptor_key: 'destination.service.host', descriptor_value: RATINGS } },
            { request_headers: { header_name: 'x-source', descriptor_key: 'source.name' } },
          ] }] },
        },
      }],
    }],
  };
  const filter = { name: 'istio.mixer.quota', typed_config: { '@type': RATELIMIT, domain: 'mixer', timeout: '2s', rate_limit_service: { grpc_service: { envoy_grpc: { cluster_name: 'rls' } }, transport_api_version: 'V3' } } };
  return { static_resources: { clusters: [staticCluster('app', [app.port]), staticCluster('rls', [rlsPort], h2)], listeners: [hcmListener('in', route, { httpFilters: [filter] })] } };
}

function portOf(p: Proxy): number {
  return p.listenerPort('in')!;
}

async function rlsCalls(): Promise<number> {
  const m = await registry.getSingleMetric('mixer_rls_calls_total')!.get();
  return m.values.reduce((n, v) => n + v.value, 0);
}

/** `n` requests as `source`, `concurrency` at a time; the statuses in order of completion. */
async function send(port: number, source: string, n: number, concurrency: number): Promise<number[]> {
  const statuses: number[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      next++;
      statuses.push((await get(port, '/r', { headers: { 'x-source': source } })).status);
    }
  }));
  return statuses;
}

before(async () => {
  registry = new Registry();
  const snapshots = new ManualSnapshots();
  mixer = new Mixer({ snapshots, metrics: registry });
  await mixer.start();
  snapshots.publish(snapshotOf(QUOTA));
  mixerServer = new grpc.Server();
  mixer.register(mixerServer);
  mixerPort = await bind(mixerServer);
  // An RLS server without quota support: OK, or OVER_LIMIT for source "deny" (with a reset time it must not cache).
  plainServer = new grpc.Server();
  plainServer.addService(loadXdsProtos().serviceDefinition(RATE_LIMIT_SERVICE), {
    ShouldRateLimit: (call: grpc.ServerUnaryCall<Msg, Msg>, callback: grpc.sendUnaryData<Msg>) => {
      plainCalls.push(call.request);
      const deny = JSON.stringify(call.request.descriptors).includes('"deny"');
      callback(null, { overall_code: deny ? 'OVER_LIMIT' : 'OK', statuses: [{ code: deny ? 'OVER_LIMIT' : 'OK', duration_until_reset: { seconds: '60' } }] });
    },
  });
  const plainPort = await bind(plainServer);
  app = await startUpstream('app');
  proxyA = await startProxy(proxyBootstrap(mixerPort));
  proxyB = await startProxy(proxyBootstrap(mixerPort));
  proxyPlain = await startProxy(proxyBootstrap(plainPort));
});

after(async () => {
  await Promise.all([proxyA, proxyB, proxyPlain].map((p) => p?.stop()));
  await app?.close();
  mixerServer?.forceShutdown();
  plainServer?.forceShutdown();
  await mixer?.stop();
});

async function bind(server: grpc.Server): Promise<number> {
  return new Promise((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
}

test('a high limit is almost always decided in the proxy: at most 5% of requests reach Mixer', async () => {
  const before = await rlsCalls();
  const statuses = await send(portOf(proxyA), 'high', 1000, 8);
  const calls = (await rlsCalls()) - before;
  assert.ok(statuses.every((s) => s === 200), `all allowed: ${statuses.filter((s) => s !== 200)}`);
  assert.ok(calls <= 50, `${calls} RLS calls for 1000 requests`);
  assert.equal(proxyA.stats.counter('cluster.rls.ratelimit.ok').value >= 1000, true);
});

test('1 req/s: the second request within a second gets 429 (RL); the refusal is cached; the next window passes', async () => {
  const port = portOf(proxyA);
  // Start just after a window boundary of our own, so the three requests share one window.
  const first = await get(port, '/r', { headers: { 'x-source': 'slow' } });
  assert.equal(first.status, 200);
  const callsBefore = await rlsCalls();
  const second = await get(port, '/r', { headers: { 'x-source': 'slow' } });
  assert.equal(second.status, 429);
  assert.equal(second.headers['x-envoy-ratelimited'], 'true');
  const third = await get(port, '/r', { headers: { 'x-source': 'slow' } });
  assert.equal(third.status, 429);
  assert.equal((await rlsCalls()) - callsBefore, 1, 'the third request was refused from the cache');
  await new Promise((r) => setTimeout(r, 1_100));
  assert.equal((await get(port, '/r', { headers: { 'x-source': 'slow' } })).status, 200);
});

test('a pool shared by two proxies is never exceeded', async () => {
  const [a, b] = await Promise.all([send(portOf(proxyA), 'pool', 120, 6), send(portOf(proxyB), 'pool', 120, 6)]);
  const all = [...a, ...b];
  assert.ok(all.every((s) => s === 200 || s === 429), `${all.filter((s) => s !== 200 && s !== 429)}`);
  const allowed = all.filter((s) => s === 200).length;
  assert.ok(allowed <= 40, `${allowed} allowed for a pool of 40`);
  assert.ok(allowed >= 20, `${allowed} allowed: most of the pool is used`);
  assert.ok(a.includes(200) && b.includes(200), 'both proxies got a share');
});

test('an RLS server that sends no quota sees one call per request, as with Envoy', async () => {
  plainCalls = [];
  const ok = await send(portOf(proxyPlain), 'any', 20, 4);
  assert.deepEqual(ok, new Array(20).fill(200));
  assert.equal(plainCalls.length, 20);
  const denied = await send(portOf(proxyPlain), 'deny', 5, 1);
  assert.deepEqual(denied, new Array(5).fill(429));
  assert.equal(plainCalls.length, 25, 'over-limit answers of a server without quota are not cached');
});

test('Mixer grants an allotment with valid_until, and rejects a bad x-mesh-quota-prefetch', async () => {
  const client = new (loadXdsProtos().service(RATE_LIMIT_SERVICE))(`127.0.0.1:${mixerPort}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & { ShouldRateLimit: (req: Msg, md: grpc.Metadata, cb: (err: Error | null, res: Msg) => void) => void };
  const call = (prefetch: string): Promise<Msg> => {
    const md = new grpc.Metadata();
    md.set('x-mesh-quota-prefetch', prefetch);
    const req = { domain: 'mixer', descriptors: [{ entries: [{ key: 'destination.service.host', value: RATINGS }, { key: 'source.name', value: 'high' }] }], hits_addend: 1 };
    return new Promise((resolve, reject) => client.ShouldRateLimit(req, md, (err: Error | null, res: Msg) => (err ? reject(err) : resolve(res))));
  };
  try {
    const t0 = Date.now();
    const res = await call('50');
    assert.equal(res.overall_code, 'OK');
    assert.equal(res.quota.requests, 50);
    const until = Number(res.quota.valid_until.seconds) * 1000;
    assert.ok(until > t0 - 1000 && until <= t0 + 2000, `valid_until ${until} within the 1 s window`);
    await assert.rejects(call('lots'), (err: grpc.ServiceError) => err.code === grpc.status.INVALID_ARGUMENT && /x-mesh-quota-prefetch: "lots"/.test(err.details));
    await assert.rejects(call('1000001'), (err: grpc.ServiceError) => err.code === grpc.status.INVALID_ARGUMENT && /1 to 100000/.test(err.details));
  } finally {
    client.close();
  }
});
