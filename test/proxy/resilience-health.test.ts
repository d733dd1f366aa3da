// Active health checks through the proxy on a ManualClock: a health-checked
// endpoint is removed and restored; a priority fails over to the next when
// its hosts fail their health checks; TCP checks. Checks use real sockets,
// so the clock moves one interval at a time and the test waits for results.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { Proxy, parseBootstrap } from '../../src/proxy/index.ts';
import { ManualClock } from '../../src/proxy/clock.ts';
import type { Upstream } from './helpers.ts';
import { clientAgent, get, hcmListener, startUpstream, staticCluster } from './helpers.ts';

let proxy: Proxy;
let port: number;
const clock = new ManualClock(1_000_000);
const ups: Upstream[] = [];
const hcFailing = new Set<string>();
let tcpServer: Server;
let tcpPort: number;
let grpcServer: grpc.Server;
// grpc.health.v1.Health/Check, encoded by hand: status SERVING = 1, NOT_SERVING = 2.
let grpcServing = 1;
const grpcServices: string[] = [];

function app(name: string) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (req.url === '/healthz') {
      res.writeHead(hcFailing.has(name) ? 503 : 200);
      res.end();
      return;
    }
    res.writeHead(200, { 'x-upstream': name });
    res.end(name);
  };
}

const hc = { timeout: '1s', interval: '5s', unhealthy_threshold: 2, healthy_threshold: 2, http_health_check: { path: '/healthz' } };

function priorityCluster(name: string, p0: number, p1: number): Record<string, unknown> {
  const ep = (port: number) => ({ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } });
  return { name, type: 'STATIC', connect_timeout: '1s', health_checks: [hc], load_assignment: { cluster_name: name, endpoints: [{ priority: 0, lb_endpoints: [ep(p0)] }, { priority: 1, lb_endpoints: [ep(p1)] }] } };
}

before(async () => {
  for (const n of ['c', 'd', 'p0', 'p1']) ups.push(await startUpstream(n, app(n)));
  const [c, d, p0, p1] = ups;
  tcpServer = createServer((s) => s.end()).listen(0, '127.0.0.1');
  await once(tcpServer, 'listening');
  tcpPort = (tcpServer.address() as { port: number }).port;
  grpcServer = new grpc.Server();
  grpcServer.addService(
    {
      Check: {
        path: '/grpc.health.v1.Health/Check',
        requestStream: false,
        responseStream: false,
        requestSerialize: (v: Buffer) => v,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (status: number) => Buffer.from([0x08, status]),
        responseDeserialize: (b: Buffer) => b[1],
      },
    } as never,
    {
      Check: (call: grpc.ServerUnaryCall<Buffer, number>, cb: grpc.sendUnaryData<number>) => {
        grpcServices.push(call.request.subarray(2).toString());
        cb(null, grpcServing);
      },
    },
  );
  const grpcPort = await new Promise<number>((resolve, reject) => grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const routes = {
    name: 'local',
    virtual_hosts: [
      {
        name: 'svc',
        domains: ['*'],
        routes: [
          { match: { prefix: '/hc' }, route: { cluster: 'hc' } },
          { match: { prefix: '/prio' }, route: { cluster: 'prio' } },
        ],
      },
    ],
  };
  const bootstrap = {
    static_resources: {
      clusters: [
        staticCluster('hc', [c.port, d.port], { health_checks: [hc] }),
        priorityCluster('prio', p0.port, p1.port),
        staticCluster('grpc-hc', [grpcPort], { health_checks: [{ timeout: '2s', interval: '5s', unhealthy_threshold: 1, healthy_threshold: 1, grpc_health_check: { service_name: 'reviews' } }] }),
        staticCluster('tcp-hc', [tcpPort], { health_checks: [{ timeout: '1s', interval: '5s', unhealthy_threshold: 1, healthy_threshold: 1, tcp_health_check: {} }] }),
      ],
      listeners: [hcmListener('http', routes)],
    },
  };
  proxy = await Proxy.start({ bootstrap: parseBootstrap(JSON.stringify(bootstrap), 'test'), clock });
  port = proxy.listenerPort('http')!;
});

after(async () => {
  clientAgent.destroy();
  await proxy.stop();
  tcpServer.close();
  grpcServer.forceShutdown();
  await Promise.all(ups.map((u) => u.close()));
});

const stat = (name: string): number => proxy.stats.get(name);

async function hits(path: string, n: number): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const r = await get(port, path);
    const k = `${r.headers['x-upstream']}:${r.status}`;
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

/** Waits (bounded) for real-socket health checks to report, then checks `cond`. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), what);
}

const HC_CLUSTERS = ['hc', 'prio', 'grpc-hc', 'tcp-hc'];
const settled = (): boolean => HC_CLUSTERS.every((c) => stat(`cluster.${c}.health_check.attempt`) === stat(`cluster.${c}.health_check.success`) + stat(`cluster.${c}.health_check.failure`));

/**
 * Advances the clock by one health-check interval and waits until every
 * check it started has a result, so no check is still in flight (and timed
 * out by the virtual clock) when the clock moves again.
 */
async function hcRound(_cluster?: string, rounds = 1): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    await until(settled, 'health checks settled before the round');
    clock.advance(5000);
    await until(settled, 'health checks of the round ran');
  }
}

test('active HTTP health check: a failing endpoint is removed and restored after healthy_threshold passes', async () => {
  assert.equal(stat('cluster.hc.health_check.healthy'), 2, 'both hosts passed their first check at warm-up');
  assert.equal(stat('cluster.hc.membership_healthy'), 2);
  hcFailing.add('c');
  await hcRound('hc');
  // A status outside expected_statuses marks the host unhealthy at once.
  assert.equal(stat('cluster.hc.health_check.healthy'), 1);
  assert.equal(stat('cluster.hc.membership_healthy'), 1);
  assert.deepEqual([...(await hits('/hc', 6)).keys()], ['d:200']);
  hcFailing.delete('c');
  await hcRound('hc');
  assert.equal(stat('cluster.hc.health_check.healthy'), 1, 'one pass is not enough (healthy_threshold 2)');
  await hcRound('hc');
  assert.equal(stat('cluster.hc.health_check.healthy'), 2);
  assert.deepEqual([...(await hits('/hc', 6)).keys()].sort(), ['c:200', 'd:200']);
});

test('priority failover: P0 failing its health checks sends traffic to P1, and back when it recovers', async () => {
  assert.deepEqual([...(await hits('/prio', 4)).keys()], ['p0:200']);
  hcFailing.add('p0');
  await hcRound('prio');
  assert.deepEqual(proxy.clusters.get('prio')!.priorityLoad, [0, 100]);
  assert.deepEqual([...(await hits('/prio', 4)).keys()], ['p1:200']);
  hcFailing.delete('p0');
  await hcRound('prio', 2);
  assert.deepEqual([...(await hits('/prio', 4)).keys()], ['p0:200']);
});

test('TCP health check: a listener that accepts is healthy; a closed port becomes unhealthy', async () => {
  assert.equal(stat('cluster.tcp-hc.health_check.healthy'), 1);
  await new Promise((r) => tcpServer.close(r));
  await hcRound();
  await until(() => stat('cluster.tcp-hc.health_check.healthy') === 0, 'tcp host marked unhealthy');
  assert.ok(stat('cluster.tcp-hc.health_check.network_failure') >= 1);
});

test('gRPC health check: grpc.health.v1 SERVING is healthy, NOT_SERVING is not', async () => {
  assert.equal(stat('cluster.grpc-hc.health_check.healthy'), 1);
  assert.equal(grpcServices[0], 'reviews');
  grpcServing = 2;
  const before = stat('cluster.grpc-hc.health_check.failure');
  await hcRound();
  assert.ok(stat('cluster.grpc-hc.health_check.failure') > before, 'the NOT_SERVING check ran');
  assert.equal(stat('cluster.grpc-hc.health_check.healthy'), 0);
  grpcServing = 1;
  await hcRound();
  await until(() => stat('cluster.grpc-hc.health_check.healthy') === 1, 'SERVING again restores the host');
});
