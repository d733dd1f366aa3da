// The HTTP path end to end on real sockets: a static bootstrap with an HCM
// listener and static clusters in front of node:http upstreams. Each route
// action, matcher and failure mode is checked through a real client.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Proxy } from '../../src/proxy/index.ts';
import type { Upstream } from './helpers.ts';
import { FAULT, clientAgent, deadPort, get, hcmListener, startProxy, startUpstream, staticCluster } from './helpers.ts';

let proxy: Proxy;
let port: number;
const ups: Upstream[] = [];
const held: Array<() => void> = [];
let heldArrived: (() => void) | undefined;
const logFile = join(mkdtempSync(join(tmpdir(), 'proxy-log-')), 'access.log');

before(async () => {
  const a = await startUpstream('a');
  const b = await startUpstream('b');
  const slow = await startUpstream('slow', (_req, res) => void setTimeout(() => res.end('late'), 1500));
  const hold = await startUpstream('hold', (_req, res) => {
    held.push(() => res.end('released'));
    heldArrived?.();
  });
  ups.push(a, b, slow, hold);
  const dead = await deadPort();
  const direct = (status: number, body: string): Record<string, unknown> => ({ direct_response: { status, body: { inline_string: body } } });
  const routes = {
    name: 'local',
    response_headers_to_add: [{ header: { key: 'x-table', value: 't' } }],
    virtual_hosts: [
      { name: 'direct', domains: ['direct.local'], routes: [{ match: { prefix: '/' }, ...direct(418, 'teapot') }] },
      {
        name: 'redirect',
        domains: ['redirect.local'],
        routes: [
          { match: { path: '/old' }, redirect: { host_redirect: 'new.local', path_redirect: '/new', response_code: 'PERMANENT_REDIRECT' } },
          { match: { prefix: '/r/' }, redirect: { https_redirect: true, prefix_rewrite: '/s/' } },
        ],
      },
      { name: 'wild', domains: ['*.wild.local'], routes: [{ match: { prefix: '/' }, ...direct(200, 'suffix-wildcard') }] },
      { name: 'prefixwild', domains: ['api.*'], routes: [{ match: { prefix: '/' }, ...direct(200, 'prefix-wildcard') }] },
      {
        name: 'svc',
        domains: ['svc.local', 'svc.local:8080'],
        request_headers_to_add: [{ header: { key: 'x-vhost', value: 'svc' } }],
        routes: [
          { match: { prefix: '/hdr', headers: [{ name: 'x-canary', string_match: { exact: 'yes' } }] }, route: { cluster: 'b' } },
          { match: { prefix: '/hdr', headers: [{ name: 'x-block', present_match: true, invert_match: true }] }, route: { cluster: 'a' }, request_headers_to_add: [{ header: { key: 'x-added', value: '1' } }], request_headers_to_remove: ['x-secret'], response_headers_to_add: [{ header: { key: 'x-resp', value: 'r' } }], response_headers_to_remove: ['x-upstream'] },
          { match: { prefix: '/hdr' }, ...direct(403, 'blocked') },
          { match: { path_separated_prefix: '/sep' }, ...direct(200, 'sep') },
          { match: { safe_regex: { regex: '/items/[0-9]+' } }, ...direct(200, 'item') },
          { match: { prefix: '/q', query_parameters: [{ name: 'debug', string_match: { exact: '1' } }] }, ...direct(200, 'debug') },
          { match: { prefix: '/CaSe', case_sensitive: false }, ...direct(200, 'case') },
          { match: { prefix: '/rewrite/' }, route: { cluster: 'a', prefix_rewrite: '/v2/', host_rewrite_literal: 'rewritten.local' } },
          { match: { prefix: '/slow' }, route: { cluster: 'slow', timeout: '0.2s' } },
          { match: { prefix: '/weighted' }, route: { weighted_clusters: { clusters: [{ name: 'a', weight: 25 }, { name: 'b', weight: 75 }] } } },
          { match: { prefix: '/uh' }, route: { cluster: 'empty' } },
          { match: { prefix: '/uf' }, route: { cluster: 'dead' } },
          { match: { prefix: '/uo' }, route: { cluster: 'hold' } },
          { match: { prefix: '/istio-fault' }, route: { cluster: 'a' }, typed_per_filter_config: { abort: { '@type': FAULT, abort: { http_status: 418, percentage: { numerator: 100 } } } } },
          { match: { prefix: '/pend' }, route: { cluster: 'hold-pending' } },
          { match: { prefix: '/nc' }, route: { cluster: 'no-such-cluster' } },
          { match: { prefix: '/' }, route: { cluster: 'a' } },
        ],
      },
      { name: 'catchall', domains: ['*'], routes: [{ match: { prefix: '/only' }, ...direct(200, 'default') }] },
    ],
  };
  proxy = await startProxy({
    node: { id: 'sidecar~127.0.0.1~test.default~default.svc.cluster.local', cluster: 'test' },
    static_resources: {
      clusters: [
        staticCluster('a', [a.port]),
        staticCluster('b', [b.port]),
        staticCluster('slow', [slow.port]),
        staticCluster('hold', [hold.port], { circuit_breakers: { thresholds: [{ max_requests: 1 }] } }),
        staticCluster('hold-pending', [hold.port], { circuit_breakers: { thresholds: [{ max_connections: 1, max_pending_requests: 1 }] } }),
        staticCluster('dead', [dead]),
        { name: 'empty', type: 'STATIC', load_assignment: { cluster_name: 'empty', endpoints: [] } },
      ],
      listeners: [
        hcmListener('http', routes, {
          httpFilters: [
            { name: 'delay', typed_config: { '@type': FAULT, delay: { fixed_delay: '0.15s', percentage: { numerator: 100 } }, headers: [{ name: 'x-delay', present_match: true }] } },
            { name: 'abort', typed_config: { '@type': FAULT, abort: { http_status: 503, percentage: { numerator: 100 } }, headers: [{ name: 'x-abort', present_match: true }] } },
          ],
          hcm: { access_log: [{ name: 'envoy.access_loggers.file', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog', path: logFile } }] },
        }),
      ],
    },
  });
  port = proxy.listenerPort('http')!;
});

after(async () => {
  for (const h of held) h();
  clientAgent.destroy();
  await proxy.stop();
  await Promise.all(ups.map((u) => u.close()));
});

test('proxies to the cluster with x-request-id, x-forwarded-proto and upstream service time', async () => {
  const r = await get(port, '/hello?x=1', { host: 'svc.local' });
  assert.equal(r.status, 200);
  const echo = r.json();
  assert.equal(echo.upstream, 'a');
  assert.equal(echo.url, '/hello?x=1');
  assert.match(echo.headers['x-request-id'], /^[0-9a-f-]{36}$/);
  assert.equal(echo.headers['x-forwarded-proto'], 'http');
  assert.equal(echo.headers['x-vhost'], 'svc');
  assert.match(String(r.headers['x-envoy-upstream-service-time']), /^\d+$/);
  assert.equal(r.headers['server'], 'envoy');
  assert.equal(r.headers['x-table'], 't');
});

test('virtual hosts: exact with port, suffix and prefix wildcards, then *', async () => {
  assert.equal((await get(port, '/x', { host: 'svc.local:8080' })).json().upstream, 'a');
  assert.equal((await get(port, '/x', { host: 'foo.wild.local' })).body, 'suffix-wildcard');
  assert.equal((await get(port, '/x', { host: 'api.example.com' })).body, 'prefix-wildcard');
  assert.equal((await get(port, '/only', { host: 'elsewhere' })).body, 'default');
  const nr = await get(port, '/nothing', { host: 'elsewhere' });
  assert.equal(nr.status, 404);
});

test('direct_response and redirects', async () => {
  const d = await get(port, '/', { host: 'direct.local' });
  assert.equal(d.status, 418);
  assert.equal(d.body, 'teapot');
  const r1 = await get(port, '/old?a=b', { host: 'redirect.local' });
  assert.equal(r1.status, 308);
  assert.equal(r1.headers['location'], 'http://new.local/new?a=b');
  const r2 = await get(port, '/r/thing', { host: 'redirect.local' });
  assert.equal(r2.status, 301);
  assert.equal(r2.headers['location'], 'https://redirect.local/s/thing');
});

const matcherCases: Array<[string, string, Record<string, string>, number, string]> = [
  ['header exact match picks cluster b', '/hdr', { 'x-canary': 'yes' }, 200, 'b'],
  ['inverted present match passes without the header', '/hdr', {}, 200, 'a'],
  ['inverted present match rejects with the header', '/hdr', { 'x-block': '1' }, 403, 'blocked'],
  ['path_separated_prefix matches the exact path', '/sep', {}, 200, 'sep'],
  ['path_separated_prefix matches a sub path', '/sep/x', {}, 200, 'sep'],
  ['path_separated_prefix does not match a longer segment', '/separate', {}, 200, 'a'],
  ['safe_regex matches the full path', '/items/42', {}, 200, 'item'],
  ['safe_regex does not match a partial path', '/items/42x', {}, 200, 'a'],
  ['query parameter match', '/q?debug=1', {}, 200, 'debug'],
  ['query parameter mismatch falls through', '/q?debug=0', {}, 200, 'a'],
  ['case-insensitive prefix', '/case/x', {}, 200, 'case'],
];
for (const [name, path, headers, status, want] of matcherCases) {
  test(`route match: ${name}`, async () => {
    const r = await get(port, path, { host: 'svc.local', headers });
    assert.equal(r.status, status);
    const got = r.headers['content-type'] === 'application/json' ? r.json().upstream : r.body;
    assert.equal(got, want);
  });
}

test('header mutation on request and response', async () => {
  const r = await get(port, '/hdr', { host: 'svc.local', headers: { 'x-secret': 's' } });
  const echo = r.json();
  assert.equal(echo.headers['x-added'], '1');
  assert.equal(echo.headers['x-secret'], undefined);
  assert.equal(r.headers['x-resp'], 'r');
  assert.equal(r.headers['x-upstream'], undefined);
});

test('prefix_rewrite and host_rewrite_literal', async () => {
  const echo = (await get(port, '/rewrite/a/b?c=d', { host: 'svc.local' })).json();
  assert.equal(echo.url, '/v2/a/b?c=d');
  assert.equal(echo.headers.host, 'rewritten.local');
  assert.equal(echo.headers['x-envoy-original-path'], '/rewrite/a/b?c=d');
});

test('a POST body streams through in both directions', async () => {
  const body = 'x'.repeat(1024 * 1024);
  const r = await get(port, '/post', { host: 'svc.local', method: 'POST', body });
  assert.equal(r.json().body.length, body.length);
});

test('weighted clusters split 25/75 within binomial tolerance over 1000 requests', async () => {
  const counts: Record<string, number> = { a: 0, b: 0 };
  for (let i = 0; i < 1000; i += 50) {
    const batch = await Promise.all(Array.from({ length: 50 }, () => get(port, '/weighted', { host: 'svc.local' })));
    for (const r of batch) counts[r.json().upstream]++;
  }
  // mean 250, sd ~13.7: five sd either side.
  assert.ok(counts.a > 181 && counts.a < 319, `a got ${counts.a}`);
  assert.equal(counts.a + counts.b, 1000);
  // Keep-alive pooling: far fewer upstream connections than requests.
  assert.ok(proxy.stats.get('cluster.b.upstream_cx_total') <= 64, `b opened ${proxy.stats.get('cluster.b.upstream_cx_total')} connections`);
});

test('route timeout -> 504 UT', async () => {
  const r = await get(port, '/slow', { host: 'svc.local' });
  assert.equal(r.status, 504);
  assert.equal(r.body, 'upstream request timeout');
  assert.ok(proxy.stats.get('cluster.slow.upstream_rq_timeout') >= 1);
});

test('no healthy host -> 503 UH, connect failure -> 503 UF, unknown cluster -> 503', async () => {
  const uh = await get(port, '/uh', { host: 'svc.local', headers: { 'user-agent': 'node' } });
  assert.equal(uh.status, 503);
  assert.equal(uh.body, 'no healthy upstream');
  const uf = await get(port, '/uf', { host: 'svc.local' });
  assert.equal(uf.status, 503);
  assert.match(uf.body, /reset reason: connection failure/);
  assert.equal((await get(port, '/nc', { host: 'svc.local' })).status, 503);
  assert.ok(proxy.stats.get('cluster.dead.upstream_cx_connect_fail') >= 1);
});

test('circuit breaker max_requests -> 503 UO while one request is in flight', async () => {
  const arrived = new Promise<void>((r) => (heldArrived = r));
  const first = get(port, '/uo', { host: 'svc.local' });
  await arrived;
  const second = await get(port, '/uo', { host: 'svc.local' });
  assert.equal(second.status, 503);
  assert.match(second.body, /overflow/);
  assert.equal(second.headers['x-envoy-overloaded'], 'true');
  held.shift()!();
  assert.equal((await first).body, 'released');
  assert.equal(proxy.stats.get('cluster.hold.upstream_rq_pending_overflow'), 1);
});

test('circuit breakers max_connections + max_pending_requests -> 503 UO for the request beyond the queue', async () => {
  let arrived = new Promise<void>((r) => (heldArrived = r));
  const first = get(port, '/pend', { host: 'svc.local' });
  await arrived;
  arrived = new Promise<void>((r) => (heldArrived = r));
  const second = get(port, '/pend', { host: 'svc.local' });
  // The second request waits for the only connection; a third has no room.
  await new Promise((r) => setTimeout(r, 30));
  const third = await get(port, '/pend', { host: 'svc.local' });
  assert.equal(third.status, 503);
  held.shift()!();
  await arrived;
  held.shift()!();
  assert.equal((await first).status, 200);
  assert.equal((await second).status, 200);
  assert.equal(proxy.stats.get('cluster.hold-pending.upstream_cx_total'), 1, 'one connection, reused');
});

test('oversized request headers -> 431 (max_request_headers_kb 60)', async () => {
  const ok = await get(port, '/big', { host: 'svc.local', headers: { 'x-big': 'a'.repeat(40 * 1024) } });
  assert.equal(ok.status, 200);
  const status = await new Promise<number>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/big', headers: { host: 'svc.local', 'x-big': 'a'.repeat(70 * 1024) } }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(status, 431);
});

test('fault filter: abort by header and delay by header', async () => {
  const abort = await get(port, '/x', { host: 'svc.local', headers: { 'x-abort': '1' } });
  assert.equal(abort.status, 503);
  assert.equal(abort.body, 'fault filter abort');
  const t0 = performance.now();
  const delayed = await get(port, '/x', { host: 'svc.local', headers: { 'x-delay': '1' } });
  assert.equal(delayed.status, 200);
  assert.ok(performance.now() - t0 >= 140, 'the delay was injected');
  const body = 'b'.repeat(200_000);
  const delayedPost = await get(port, '/x', { host: 'svc.local', method: 'POST', body, headers: { 'x-delay': '1' } });
  assert.equal(delayedPost.json().body.length, body.length, 'the body survives the delay');
  assert.equal(proxy.stats.get('http.http.fault.aborts_injected'), 1);
  assert.equal(proxy.stats.get('http.http.fault.delays_injected'), 2);
});

test('fault filter: a per-route config (as Istio emits it) overrides the filter config', async () => {
  const r = await get(port, '/istio-fault', { host: 'svc.local' });
  assert.equal(r.status, 418);
  assert.equal(r.body, 'fault filter abort');
});

test('stats count requests per cluster, class and code; access log has response flags', async () => {
  assert.ok(proxy.stats.get('cluster.a.upstream_rq_total') > 0);
  assert.ok(proxy.stats.get('cluster.a.upstream_rq_2xx') > 0);
  assert.ok(proxy.stats.get('cluster.a.upstream_rq_200') > 0);
  assert.ok(proxy.stats.get('http.http.downstream_rq_total') > 0);
  assert.ok(proxy.stats.get('http.http.downstream_rq_5xx') > 0);
  await new Promise((r) => setTimeout(r, 50));
  const log = readFileSync(logFile, 'utf8');
  assert.match(log, /^\[\d{4}-\d\d-\d\dT[^\]]+\] "GET \/uh HTTP\/1\.1" 503 UH 0 19 \d+ - "-" "node" "[0-9a-f-]{36}" "svc\.local" "-"$/m);
  assert.match(log, /"GET \/slow HTTP\/1\.1" 504 UT /);
  assert.match(log, /"GET \/uf HTTP\/1\.1" 503 UF /);
  assert.match(log, /"GET \/uo HTTP\/1\.1" 503 UO /);
  assert.match(log, /"GET \/x HTTP\/1\.1" 503 FI /);
  assert.match(log, /"GET \/x HTTP\/1\.1" 200 DI .* "127\.0\.0\.1:\d+"$/m);
  assert.match(log, /"GET \/nothing HTTP\/1\.1" 404 NR /);
});
