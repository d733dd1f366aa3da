// Retries end to end: attempts counted at the upstreams, URX when retries
// run out, the max_retries breaker (UO), per_try_timeout, the gRPC retry_on
// conditions, previous_hosts avoidance over a ring hash, and a POST body
// replayed on the retry.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Proxy } from '../../src/proxy/index.ts';
import type { Upstream } from './helpers.ts';
import { clientAgent, get, hcmListener, startProxy, startUpstream, staticCluster } from './helpers.ts';

let proxy: Proxy;
let port: number;
const ups: Upstream[] = [];
const arrivals = new Map<string, number>();
const bodies: string[] = [];
const logFile = join(mkdtempSync(join(tmpdir(), 'retry-log-')), 'access.log');

function count(key: string): number {
  const n = (arrivals.get(key) ?? 0) + 1;
  arrivals.set(key, n);
  return n;
}

/** Fails the first `fail` requests of each x-key with `status`, then answers 200. */
function flaky(name: string) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const key = String(req.headers['x-key']);
      const n = count(key);
      count(`${name}:${key}`);
      bodies.push(Buffer.concat(chunks).toString());
      const fail = Number(req.headers['x-fail'] ?? 0);
      const status = Number(req.headers['x-status'] ?? 503);
      if (req.headers['x-hang'] && n <= fail) return; // never answers: a per-try timeout
      if (n <= fail) {
        const headers: Record<string, string> = { 'x-upstream': name, 'x-attempt': String(req.headers['x-envoy-attempt-count'] ?? '') };
        if (req.headers['x-grpc-status']) Object.assign(headers, { 'content-type': 'application/grpc', 'grpc-status': String(req.headers['x-grpc-status']) });
        res.writeHead(req.headers['x-grpc-status'] ? 200 : status, headers);
        res.end('fail');
        return;
      }
      res.writeHead(200, { 'x-upstream': name, 'x-attempt': String(req.headers['x-envoy-attempt-count'] ?? '') });
      res.end(`ok from ${name}`);
    });
  };
}

before(async () => {
  const a = await startUpstream('a', flaky('a'));
  const b = await startUpstream('b', flaky('b'));
  ups.push(a, b);
  const backoff = { base_interval: '0.002s', max_interval: '0.01s' };
  const routes = {
    name: 'local',
    virtual_hosts: [
      {
        name: 'svc',
        domains: ['*'],
        include_request_attempt_count: true,
        include_attempt_count_in_response: true,
        routes: [
          { match: { prefix: '/5xx' }, route: { cluster: 'one', retry_policy: { retry_on: '5xx', num_retries: 2, retry_back_off: backoff } } },
          { match: { prefix: '/gw' }, route: { cluster: 'one', retry_policy: { retry_on: 'gateway-error', num_retries: 3, retry_back_off: backoff } } },
          { match: { prefix: '/codes' }, route: { cluster: 'one', retry_policy: { retry_on: 'retriable-status-codes,retriable-4xx', retriable_status_codes: [418], num_retries: 2, retry_back_off: backoff } } },
          { match: { prefix: '/grpc' }, route: { cluster: 'one', retry_policy: { retry_on: 'unavailable,resource-exhausted', num_retries: 2, retry_back_off: backoff } } },
          { match: { prefix: '/pertry-noretry' }, route: { cluster: 'one', timeout: '5s', retry_policy: { retry_on: 'retriable-4xx', num_retries: 1, per_try_timeout: '0.15s' } } },
          { match: { prefix: '/pertry' }, route: { cluster: 'one', timeout: '5s', retry_policy: { retry_on: '5xx', num_retries: 1, per_try_timeout: '0.15s', retry_back_off: backoff } } },
          { match: { prefix: '/overflow' }, route: { cluster: 'no-retry-budget', retry_policy: { retry_on: '5xx', num_retries: 2, retry_back_off: backoff } } },
          {
            match: { prefix: '/sticky-avoid' },
            route: { cluster: 'ring', hash_policy: [{ header: { header_name: 'x-key' } }], retry_policy: { retry_on: '5xx', num_retries: 1, retry_back_off: backoff, retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts' }], host_selection_retry_max_attempts: 3 } },
          },
          { match: { prefix: '/sticky' }, route: { cluster: 'ring', hash_policy: [{ header: { header_name: 'x-key' } }], retry_policy: { retry_on: '5xx', num_retries: 1, retry_back_off: backoff } } },
          { match: { prefix: '/none' }, route: { cluster: 'one' } },
        ],
      },
    ],
  };
  proxy = await startProxy({
    static_resources: {
      clusters: [
        staticCluster('one', [a.port]),
        staticCluster('no-retry-budget', [a.port], { circuit_breakers: { thresholds: [{ max_retries: 0 }] } }),
        staticCluster('ring', [a.port, b.port], { lb_policy: 'RING_HASH' }),
      ],
      listeners: [hcmListener('http', routes, { hcm: { access_log: [{ name: 'envoy.access_loggers.file', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog', path: logFile } }] } })],
    },
  });
  port = proxy.listenerPort('http')!;
});

after(async () => {
  clientAgent.destroy();
  await proxy.stop();
  await Promise.all(ups.map((u) => u.close()));
});

/** The access-log line of a request (by x-key in the path), waiting for the buffered write. */
async function logLine(marker: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const line = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').find((l) => l.includes(marker)) : undefined;
    if (line) return line;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no access log line for ${marker}`);
}

const stat = (name: string): number => proxy.stats.get(name);

test('5xx: two failures then success, three attempts seen upstream, attempt count sent both ways', async () => {
  const before = stat('cluster.one.upstream_rq_retry');
  const r = await get(port, '/5xx/a', { headers: { 'x-key': 'k1', 'x-fail': '2' } });
  assert.equal(r.status, 200);
  assert.equal(arrivals.get('k1'), 3);
  assert.equal(r.headers['x-attempt'], '3', 'the upstream saw x-envoy-attempt-count 3');
  assert.equal(r.headers['x-envoy-attempt-count'], '3');
  assert.equal(stat('cluster.one.upstream_rq_retry') - before, 2);
  assert.ok(stat('cluster.one.upstream_rq_retry_success') >= 1);
});

test('retries exhausted: the last 503 passes through with URX; num_retries bounds the attempts', async () => {
  const r = await get(port, '/5xx/urx-marker', { headers: { 'x-key': 'k2', 'x-fail': '10' } });
  assert.equal(r.status, 503);
  assert.equal(r.body, 'fail');
  assert.equal(arrivals.get('k2'), 3, 'one try plus num_retries 2');
  assert.match(await logLine('/5xx/urx-marker'), /" 503 URX /);
  assert.ok(stat('cluster.one.upstream_rq_retry_limit_exceeded') >= 1);
});

test('gateway-error retries 502/503/504 but not 500; no retry_policy means one attempt', async () => {
  assert.equal((await get(port, '/gw', { headers: { 'x-key': 'k3', 'x-fail': '1', 'x-status': '502' } })).status, 200);
  assert.equal(arrivals.get('k3'), 2);
  assert.equal((await get(port, '/gw', { headers: { 'x-key': 'k4', 'x-fail': '1', 'x-status': '500' } })).status, 500);
  assert.equal(arrivals.get('k4'), 1);
  assert.equal((await get(port, '/none', { headers: { 'x-key': 'k5', 'x-fail': '1' } })).status, 503);
  assert.equal(arrivals.get('k5'), 1);
});

test('retriable-status-codes and retriable-4xx (409) retry; other 4xx do not', async () => {
  assert.equal((await get(port, '/codes', { headers: { 'x-key': 'k6', 'x-fail': '1', 'x-status': '418' } })).status, 200);
  assert.equal(arrivals.get('k6'), 2);
  assert.equal((await get(port, '/codes', { headers: { 'x-key': 'k7', 'x-fail': '1', 'x-status': '409' } })).status, 200);
  assert.equal(arrivals.get('k7'), 2);
  assert.equal((await get(port, '/codes', { headers: { 'x-key': 'k8', 'x-fail': '1', 'x-status': '404' } })).status, 404);
  assert.equal(arrivals.get('k8'), 1);
});

test('gRPC conditions retry on the grpc-status of a trailers-only response', async () => {
  assert.equal((await get(port, '/grpc', { headers: { 'x-key': 'k9', 'x-fail': '2', 'x-grpc-status': '14' } })).status, 200);
  assert.equal(arrivals.get('k9'), 3);
  const r = await get(port, '/grpc', { headers: { 'x-key': 'k10', 'x-fail': '1', 'x-grpc-status': '3' } });
  assert.equal(r.headers['grpc-status'], '3', 'INVALID_ARGUMENT is not retried');
  assert.equal(arrivals.get('k10'), 1);
});

test('per_try_timeout: a hung attempt is abandoned and retried; without a matching condition it is 504 UT', async () => {
  const started = performance.now();
  const r = await get(port, '/pertry', { headers: { 'x-key': 'k11', 'x-fail': '1', 'x-hang': '1' } });
  assert.equal(r.status, 200);
  assert.equal(arrivals.get('k11'), 2);
  assert.ok(performance.now() - started < 3000);
  assert.ok(stat('cluster.one.upstream_rq_per_try_timeout') >= 1);
  const t = await get(port, '/pertry-noretry', { headers: { 'x-key': 'k12', 'x-fail': '1', 'x-hang': '1' } });
  assert.equal(t.status, 504);
  assert.equal(arrivals.get('k12'), 1);
});

test('max_retries circuit breaker: no retry, the failure passes through flagged UO', async () => {
  const r = await get(port, '/overflow/uo-marker', { headers: { 'x-key': 'k13', 'x-fail': '5' } });
  assert.equal(r.status, 503);
  assert.equal(arrivals.get('k13'), 1);
  assert.equal(stat('cluster.no-retry-budget.upstream_rq_retry_overflow'), 1);
  assert.match(await logLine('/overflow/uo-marker'), /" 503 UO /);
});

test('previous_hosts: a hashed request retries on the other host; without it, on the same one', async () => {
  for (let i = 0; i < 5; i++) {
    const key = `s${i}`;
    const r = await get(port, '/sticky', { headers: { 'x-key': key, 'x-fail': '1' } });
    assert.equal(r.status, 200);
    assert.ok((arrivals.get(`a:${key}`) ?? 0) === 2 || (arrivals.get(`b:${key}`) ?? 0) === 2, `both attempts of ${key} on one host`);
  }
  for (let i = 0; i < 5; i++) {
    const key = `p${i}`;
    const r = await get(port, '/sticky-avoid', { headers: { 'x-key': key, 'x-fail': '1' } });
    assert.equal(r.status, 200);
    assert.equal(arrivals.get(`a:${key}`), 1, `${key} tried a once`);
    assert.equal(arrivals.get(`b:${key}`), 1, `${key} tried b once`);
  }
});

test('a POST body is replayed in full on the retry', async () => {
  bodies.length = 0;
  const r = await get(port, '/5xx/post', { method: 'POST', body: 'x'.repeat(100_000), headers: { 'x-key': 'k14', 'x-fail': '1' } });
  assert.equal(r.status, 200);
  assert.deepEqual(bodies.map((b) => b.length), [100_000, 100_000]);
});
