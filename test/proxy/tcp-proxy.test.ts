// tcp_proxy through a real proxy and a TCP echo upstream. Its access_log:
// one entry when the connection ends with the bytes both ways; with
// access_log_options an entry when the upstream connects and one every
// flush interval (%ACCESS_LOG_TYPE% TcpUpstreamConnected / TcpPeriodic /
// TcpConnectionEnd); flags NR (no such cluster), UH (no host), UO (the
// cluster's max_connections circuit breaker) and UF (the connect failed);
// Envoy's default line for TCP ("- - -"). Connect failures feed the
// cluster's outlier detection: a dead endpoint is ejected. (TLS upstream:
// tls-mtls.test.ts.)

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Proxy } from '../../src/proxy/index.ts';
import { flushAccessLogs } from '../../src/proxy/access-loggers/file-access-log.ts';
import type { TcpEcho } from './helpers.ts';
import { converse, deadPort, startProxy, startTcpEcho, staticCluster, tcpProxyListener } from './helpers.ts';

const FILE_LOG = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';
const JSON_FORMAT = { type: '%ACCESS_LOG_TYPE%', rx: '%BYTES_RECEIVED%', tx: '%BYTES_SENT%', flags: '%RESPONSE_FLAGS%', cluster: '%UPSTREAM_CLUSTER%', upstream: '%UPSTREAM_HOST%', duration: '%DURATION%', protocol: '%PROTOCOL%' };

let dir: string;
let echo: TcpEcho;
let proxy: Proxy;

function fileLog(path: string, json: boolean): object {
  return { name: 'envoy.access_loggers.file', typed_config: { '@type': FILE_LOG, path, ...(json ? { log_format: { json_format: JSON_FORMAT } } : {}) } };
}

function tcpListener(name: string, cluster: string, extra: object = {}, json = true): object {
  return tcpProxyListener(name, cluster, { tcpProxy: { access_log: [fileLog(join(dir, `${name}.log`), json)], ...extra } });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tcp-proxy-'));
  echo = await startTcpEcho();
  proxy = await startProxy({
    static_resources: {
      clusters: [staticCluster('echo', [echo.port]), staticCluster('dead', [await deadPort()]), staticCluster('empty', []), staticCluster('one-connection', [echo.port], { circuit_breakers: { thresholds: [{ max_connections: 1 }] } }),
        staticCluster('half-dead', [await deadPort(), echo.port], { outlier_detection: { consecutive_5xx: 2, interval: '10s', base_ejection_time: '30s', max_ejection_percent: 100 } })],
      listeners: [
        tcpListener('plain', 'echo'),
        tcpListener('flushed', 'echo', { access_log_options: { flush_access_log_on_connected: true, access_log_flush_interval: '0.1s' } }),
        tcpListener('default-format', 'echo', {}, false),
        tcpListener('no-route', 'nowhere'),
        tcpListener('no-host', 'empty'),
        tcpListener('refused', 'dead'),
        tcpListener('one-connection', 'one-connection'),
        tcpListener('half-dead', 'half-dead'),
      ],
    },
  });
});

after(async () => {
  await proxy?.stop();
  echo?.server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Connects through `listener`, sends `data`, keeps the connection `holdMs` more than 100 ms, ends it; the reply. */
function exchange(listener: string, data: string, holdMs = 0): Promise<string> {
  return converse(connect(proxy.listenerPort(listener)!, '127.0.0.1'), [data, 100 + holdMs]);
}

/** The log's lines once it has `n` of them and, when given, a last line matching `last` (lines are written off the hot path). */
async function lines(name: string, n: number, last?: RegExp): Promise<string[]> {
  const file = join(dir, `${name}.log`);
  for (let i = 0; i < 100; i++) {
    flushAccessLogs();
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    const all = text.split('\n').filter(Boolean);
    if (all.length >= n && (!last || last.test(all[all.length - 1]))) return all;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`${name}.log never had ${n} lines`);
}

test('one entry when the connection ends: bytes both ways, cluster, upstream host, no protocol', async () => {
  assert.equal(await exchange('plain', 'hello'), 'echo:hello');
  const [line] = await lines('plain', 1, /TcpConnectionEnd/);
  const e = JSON.parse(line);
  assert.equal(e.type, 'TcpConnectionEnd');
  assert.equal(e.rx, 5);
  assert.equal(e.tx, 10);
  assert.equal(e.cluster, 'echo');
  assert.equal(e.upstream, `127.0.0.1:${echo.port}`);
  assert.equal(e.flags, null);
  assert.equal(e.protocol, null);
  assert.ok(e.duration >= 100, `duration ${e.duration} ms covers the connection`);
});

test('access_log_options: an entry when the upstream connects, periodic ones, then the end; totals only grow', async () => {
  await exchange('flushed', 'hello', 300);
  const entries = (await lines('flushed', 3, /TcpConnectionEnd/)).map((l) => JSON.parse(l));
  const last = entries[entries.length - 1];
  assert.equal(entries[0].type, 'TcpUpstreamConnected');
  assert.equal(last.type, 'TcpConnectionEnd');
  const periodic = entries.filter((e) => e.type === 'TcpPeriodic');
  assert.ok(periodic.length >= 2, `${periodic.length} periodic entries in ~400 ms at 0.1 s`);
  assert.deepEqual([last.rx, last.tx], [5, 10]);
  for (let i = 1; i < entries.length; i++) assert.ok(entries[i].tx >= entries[i - 1].tx && entries[i].duration >= entries[i - 1].duration);
});

test('no periodic entry is written once the connection has ended', async () => {
  const before = (await lines('flushed', 1)).length;
  await new Promise((r) => setTimeout(r, 300));
  flushAccessLogs();
  assert.equal((await lines('flushed', 1)).length, before);
});

test('failures are logged with their flags: NR (no such cluster), UH (no host), UF (connect refused)', async () => {
  for (const [listener, flag] of [['no-route', 'NR'], ['no-host', 'UH'], ['refused', 'UF']] as const) {
    assert.equal(await exchange(listener, 'x'), '');
    const [line] = await lines(listener, 1);
    assert.equal(JSON.parse(line).flags, flag, listener);
  }
});

test('max_connections: a second connection while the first is open is closed at once, flag UO', async () => {
  const first = exchange('one-connection', 'first', 300);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(await exchange('one-connection', 'second'), '', 'the circuit breaker is open');
  assert.equal(await first, 'echo:first');
  const entries = (await lines('one-connection', 2, /TcpConnectionEnd/)).map((l) => JSON.parse(l));
  assert.deepEqual(entries.map((e) => e.flags), ['UO', null]);
  assert.equal(proxy.stats.get('cluster.one-connection.upstream_cx_overflow'), 1);
  assert.equal(await exchange('one-connection', 'third'), 'echo:third', 'closed again once the first has ended');
});

test('outlier detection: two connect failures eject the dead endpoint; every later connection reaches the live one', async () => {
  const replies: string[] = [];
  for (let i = 0; i < 8; i++) replies.push(await exchange('half-dead', `c${i}`));
  assert.equal(proxy.stats.get('cluster.half-dead.outlier_detection.ejections_enforced_consecutive_5xx'), 1);
  assert.equal(replies.filter((r) => r === '').length, 2, `the dead endpoint failed twice, then was ejected: ${JSON.stringify(replies)}`);
  assert.deepEqual(replies.slice(4), ['echo:c4', 'echo:c5', 'echo:c6', 'echo:c7']);
});

test("no format: Envoy's default line for a TCP connection", async () => {
  await exchange('default-format', 'hi');
  const [line] = await lines('default-format', 1);
  assert.match(line, /^\[\d{4}-\d\d-\d\dT[\d:.]+Z\] "- - -" 0 - 2 7 \d+ - "-" "-" "-" "-" "127\.0\.0\.1:\d+"$/);
});

test('a flush interval under 1 ms is a config error naming the field', async () => {
  await assert.rejects(
    startProxy({ static_resources: { clusters: [staticCluster('echo', [1])], listeners: [tcpListener('bad', 'echo', { access_log_options: { access_log_flush_interval: '0.0001s' } })] } }),
    /access_log_options\.access_log_flush_interval/,
  );
});
