// Routing extras end to end on a ManualClock: consistent hashing (ring hash
// by header and by a generated cookie, Maglev by query parameter and source
// IP), request mirroring to a `-shadow` host with its response discarded,
// CORS preflights and simple requests, the local rate limit (429 RL) and
// route max_stream_duration.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { Proxy, parseBootstrap } from '../../src/proxy/index.ts';
import { ManualClock } from '../../src/proxy/clock.ts';
import type { Upstream } from './helpers.ts';
import { clientAgent, get, hcmListener, startUpstream, staticCluster } from './helpers.ts';

const CORS = 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors';
const CORS_POLICY = 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy';
const LRL = 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';

let proxy: Proxy;
let port: number;
const clock = new ManualClock(0);
const ups: Upstream[] = [];
const shadowSeen: Array<{ host: string; url: string; body: string }> = [];
let shadowArrived: (() => void) | undefined;
const held: Array<() => void> = [];

function named(name: string) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'x-upstream': name });
      res.end(name);
    });
  };
}

before(async () => {
  for (const n of ['h1', 'h2', 'h3']) ups.push(await startUpstream(n, named(n)));
  const main = await startUpstream('main', named('main'));
  const shadow = await startUpstream('shadow', (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      shadowSeen.push({ host: String(req.headers.host), url: req.url ?? '', body: Buffer.concat(chunks).toString() });
      shadowArrived?.();
      res.writeHead(500, { 'x-upstream': 'shadow' });
      res.end('shadow response must be discarded');
    });
  });
  const hold = await startUpstream('hold', (_req, res) => void held.push(() => res.end('late')));
  ups.push(main, shadow, hold);
  const hashPorts = ups.slice(0, 3).map((u) => u.port);
  const routes = {
    name: 'local',
    virtual_hosts: [
      {
        name: 'cors',
        domains: ['cors.local'],
        typed_per_filter_config: {
          'envoy.filters.http.cors': { '@type': CORS_POLICY, allow_origin_string_match: [{ exact: 'https://app.example.com' }, { suffix: '.trusted.example' }], allow_methods: 'GET,POST', allow_headers: 'content-type,x-custom', expose_headers: 'x-upstream', max_age: '600', allow_credentials: true },
        },
        routes: [{ match: { prefix: '/' }, route: { cluster: 'main' } }],
      },
      {
        name: 'legacy-cors',
        domains: ['legacy-cors.local'],
        cors: { allow_origin_string_match: [{ prefix: 'http://localhost' }], allow_methods: 'PUT' },
        routes: [{ match: { prefix: '/' }, route: { cluster: 'main' } }],
      },
      {
        name: 'svc',
        domains: ['*'],
        routes: [
          { match: { prefix: '/ring-header' }, route: { cluster: 'ring', hash_policy: [{ header: { header_name: 'x-user' } }] } },
          { match: { prefix: '/ring-cookie' }, route: { cluster: 'ring', hash_policy: [{ cookie: { name: 'session', ttl: '3600s', path: '/' } }] } },
          { match: { prefix: '/maglev-query' }, route: { cluster: 'maglev', hash_policy: [{ query_parameter: { name: 'user' } }] } },
          { match: { prefix: '/maglev-ip' }, route: { cluster: 'maglev', hash_policy: [{ connection_properties: { source_ip: true } }] } },
          { match: { prefix: '/mirror-none' }, route: { cluster: 'main', request_mirror_policies: [{ cluster: 'shadow', runtime_fraction: { default_value: { numerator: 0 } } }] } },
          { match: { prefix: '/mirror' }, route: { cluster: 'main', request_mirror_policies: [{ cluster: 'shadow' }] } },
          {
            match: { prefix: '/limited' },
            route: { cluster: 'main' },
            typed_per_filter_config: {
              'envoy.filters.http.local_ratelimit': {
                '@type': LRL,
                stat_prefix: 'route_limit',
                token_bucket: { max_tokens: 3, tokens_per_fill: 2, fill_interval: '1s' },
                filter_enabled: { default_value: { numerator: 100 } },
                filter_enforced: { default_value: { numerator: 100 } },
                response_headers_to_add: [{ header: { key: 'x-local-rate-limit', value: 'true' } }],
              },
            },
          },
          { match: { prefix: '/shadow-limit' }, route: { cluster: 'main' }, typed_per_filter_config: { 'envoy.filters.http.local_ratelimit': { '@type': LRL, stat_prefix: 'shadow_limit', token_bucket: { max_tokens: 1, fill_interval: '1s' }, filter_enabled: { default_value: { numerator: 100 } } } } },
          { match: { prefix: '/duration' }, route: { cluster: 'hold', max_stream_duration: { max_stream_duration: '1s' } } },
          { match: { prefix: '/hold' }, route: { cluster: 'hold', timeout: '0s' } },
          { match: { prefix: '/' }, route: { cluster: 'main' } },
        ],
      },
    ],
  };
  const bootstrap = {
    static_resources: {
      clusters: [
        staticCluster('ring', hashPorts, { lb_policy: 'RING_HASH' }),
        staticCluster('maglev', hashPorts, { lb_policy: 'MAGLEV' }),
        staticCluster('main', [main.port]),
        staticCluster('shadow', [shadow.port]),
        staticCluster('hold', [hold.port]),
      ],
      listeners: [
        hcmListener('http', routes, {
          httpFilters: [
            { name: 'envoy.filters.http.cors', typed_config: { '@type': CORS } },
            // Listener level: no bucket; routes bring their own (as Istio does).
            { name: 'envoy.filters.http.local_ratelimit', typed_config: { '@type': LRL, stat_prefix: 'http_local_rate_limiter' } },
          ],
          hcm: { stream_idle_timeout: '5s', request_timeout: '3s' },
        }),
      ],
    },
  };
  proxy = await Proxy.start({ bootstrap: parseBootstrap(JSON.stringify(bootstrap), 'test'), clock });
  port = proxy.listenerPort('http')!;
});

after(async () => {
  for (const h of held) h();
  clientAgent.destroy();
  await proxy.stop();
  await Promise.all(ups.map((u) => u.close()));
});

async function upstreamOf(path: string, headers: Record<string, string> = {}): Promise<string> {
  const r = await get(port, path, { headers });
  assert.equal(r.status, 200);
  return String(r.headers['x-upstream']);
}

test('RING_HASH by header: a user sticks to one host; users spread over all hosts', async () => {
  const seen = new Set<string>();
  for (let u = 0; u < 24; u++) {
    const first = await upstreamOf('/ring-header', { 'x-user': `user-${u}` });
    for (let i = 0; i < 3; i++) assert.equal(await upstreamOf('/ring-header', { 'x-user': `user-${u}` }), first);
    seen.add(first);
  }
  assert.equal(seen.size, 3);
});

test('RING_HASH by cookie: a missing cookie is generated with its ttl, and the cookie then sticks', async () => {
  const r = await get(port, '/ring-cookie');
  const setCookie = r.headers['set-cookie']?.[0] ?? '';
  assert.match(setCookie, /^session="[0-9a-f]{16}"; Max-Age=3600; Path=\/; HttpOnly$/);
  const cookie = setCookie.split(';')[0];
  const host = String(r.headers['x-upstream']);
  for (let i = 0; i < 5; i++) {
    const again = await get(port, '/ring-cookie', { headers: { cookie: `other=1; ${cookie}` } });
    assert.equal(again.headers['x-upstream'], host);
    assert.equal(again.headers['set-cookie'], undefined, 'no new cookie when the request has one');
  }
});

test('MAGLEV by query parameter and by source IP', async () => {
  const seen = new Set<string>();
  for (let u = 0; u < 24; u++) {
    const first = await upstreamOf(`/maglev-query?user=${u}`);
    assert.equal(await upstreamOf(`/maglev-query?user=${u}&x=1`), first);
    seen.add(first);
  }
  assert.equal(seen.size, 3);
  const ip = await upstreamOf('/maglev-ip');
  for (let i = 0; i < 5; i++) assert.equal(await upstreamOf('/maglev-ip'), ip);
});

test('request mirroring: the shadow gets a copy with Host suffixed -shadow; its response is discarded', async () => {
  shadowSeen.length = 0;
  const arrived = new Promise<void>((r) => (shadowArrived = r));
  const r = await get(port, '/mirror/x?q=1', { method: 'POST', host: 'svc.local:8080', body: 'payload' });
  assert.equal(r.status, 200);
  assert.equal(r.body, 'main');
  await arrived;
  assert.deepEqual(shadowSeen, [{ host: 'svc.local-shadow:8080', url: '/mirror/x?q=1', body: 'payload' }]);
  assert.ok(proxy.stats.get('cluster.shadow.upstream_rq_500') >= 1, 'the shadow answered 500 and nobody saw it');
  // runtime_fraction 0%: never mirrored.
  await get(port, '/mirror-none');
  await get(port, '/mirror/y');
  for (let i = 0; i < 100 && shadowSeen.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(shadowSeen.map((s) => s.url), ['/mirror/x?q=1', '/mirror/y']);
});

test('CORS preflight from an allowed origin is answered by the proxy', async () => {
  const before = proxy.stats.get('cluster.main.upstream_rq_total');
  const r = await get(port, '/api', { method: 'OPTIONS', host: 'cors.local', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' } });
  assert.equal(r.status, 200);
  assert.equal(r.headers['access-control-allow-origin'], 'https://app.example.com');
  assert.equal(r.headers['access-control-allow-methods'], 'GET,POST');
  assert.equal(r.headers['access-control-allow-headers'], 'content-type,x-custom');
  assert.equal(r.headers['access-control-max-age'], '600');
  assert.equal(r.headers['access-control-allow-credentials'], 'true');
  assert.equal(proxy.stats.get('cluster.main.upstream_rq_total'), before, 'the preflight never reached the upstream');
  // A suffix match also passes; a foreign origin's preflight goes upstream without CORS headers.
  const s = await get(port, '/api', { method: 'OPTIONS', host: 'cors.local', headers: { origin: 'https://x.trusted.example', 'access-control-request-method': 'GET' } });
  assert.equal(s.headers['access-control-allow-origin'], 'https://x.trusted.example');
  const bad = await get(port, '/api', { method: 'OPTIONS', host: 'cors.local', headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' } });
  assert.equal(bad.headers['access-control-allow-origin'], undefined);
  assert.equal(bad.headers['x-upstream'], 'main');
  assert.ok(proxy.stats.get('http.http.cors.origin_invalid') >= 1);
});

test('CORS simple request: allowed origin gets allow-origin, credentials and expose headers; legacy vhost cors works', async () => {
  const r = await get(port, '/api', { host: 'cors.local', headers: { origin: 'https://app.example.com' } });
  assert.equal(r.headers['x-upstream'], 'main');
  assert.equal(r.headers['access-control-allow-origin'], 'https://app.example.com');
  assert.equal(r.headers['access-control-expose-headers'], 'x-upstream');
  assert.equal(r.headers['access-control-allow-credentials'], 'true');
  const none = await get(port, '/api', { host: 'cors.local', headers: { origin: 'https://evil.example' } });
  assert.equal(none.headers['access-control-allow-origin'], undefined);
  const legacy = await get(port, '/', { method: 'OPTIONS', host: 'legacy-cors.local', headers: { origin: 'http://localhost:3000', 'access-control-request-method': 'PUT' } });
  assert.equal(legacy.headers['access-control-allow-origin'], 'http://localhost:3000');
  assert.equal(legacy.headers['access-control-allow-methods'], 'PUT');
});

test('local rate limit: the bucket of 3 passes 3, then 429 RL with x-envoy-ratelimited; a fill adds tokens_per_fill', async () => {
  const statuses: number[] = [];
  let limited;
  for (let i = 0; i < 5; i++) {
    const r = await get(port, '/limited');
    statuses.push(r.status);
    if (r.status === 429) limited = r;
  }
  assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
  assert.equal(limited!.body, 'local_rate_limited');
  assert.equal(limited!.headers['x-envoy-ratelimited'], 'true');
  assert.equal(limited!.headers['x-local-rate-limit'], 'true');
  assert.equal(proxy.stats.get('route_limit.http_local_rate_limit.rate_limited'), 2);
  assert.equal(proxy.stats.get('route_limit.http_local_rate_limit.ok'), 3);
  clock.advance(1000);
  const after = [];
  for (let i = 0; i < 3; i++) after.push((await get(port, '/limited')).status);
  assert.deepEqual(after, [200, 200, 429]);
  // Not enforced (filter_enforced unset = 0%): counted, never blocked; other routes have no bucket.
  for (let i = 0; i < 3; i++) assert.equal((await get(port, '/shadow-limit')).status, 200);
  assert.equal(proxy.stats.get('shadow_limit.http_local_rate_limit.rate_limited'), 2);
  for (let i = 0; i < 5; i++) assert.equal((await get(port, '/other')).status, 200);
});

test('route max_stream_duration: a stream over its limit gets 408 before the response starts', async () => {
  const pending = get(port, '/duration');
  for (let i = 0; i < 100 && held.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(held.length, 1);
  clock.advance(1000);
  const r = await pending;
  assert.equal(r.status, 408);
  assert.equal(r.body, 'downstream duration timeout');
});

/** Sends raw bytes and resolves with everything the proxy writes back until it closes or `until` matches. */
function raw(payload: string, until: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1', () => sock.write(payload));
    let got = '';
    sock.on('data', (d: Buffer) => {
      got += d.toString();
      if (until.test(got)) {
        sock.destroy();
        resolve(got);
      }
    });
    sock.on('error', reject);
    sock.on('close', () => resolve(got));
  });
}

test('HCM request_timeout: a request body that never completes gets 408 "request timeout"', async () => {
  const reply = raw('POST /slow-body HTTP/1.1\r\nhost: svc.local\r\ncontent-length: 100\r\n\r\nonly-part', /request timeout/);
  // Wait (bounded) until the proxy has the request's headers, then let the virtual clock run.
  for (let i = 0; i < 100 && proxy.stats.get('http.http.downstream_rq_active') === 0; i++) await new Promise((r) => setTimeout(r, 10));
  clock.advance(3000);
  assert.match(await reply, /^HTTP\/1\.1 408 [\s\S]*request timeout$/);
});

test('HCM stream_idle_timeout: no bytes either way for 5s -> 408 "stream timeout"', async () => {
  const before = held.length;
  const pending = get(port, '/hold');
  for (let i = 0; i < 100 && held.length === before; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(held.length, before + 1);
  clock.advance(4000);
  clock.advance(1000);
  const r = await pending;
  assert.equal(r.status, 408);
  assert.equal(r.body, 'stream timeout');
});
