// Access logs in Envoy's formats: a custom text format with command
// operators, a JSON dictionary with typed values, Envoy's default format,
// and response flags written as Envoy writes them (NR, UH, UF). Lines are
// buffered off the hot path; the test waits until the file holds them.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Proxy } from '../../src/proxy/index.ts';
import { flushAccessLogs } from '../../src/proxy/access-loggers/file-access-log.ts';
import type { Upstream } from './helpers.ts';
import { deadPort, get, hcmListener, startProxy, startUpstream, staticCluster } from './helpers.ts';

const FILE_LOG = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';
const TEXT = '[%START_TIME%] %REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL% %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %UPSTREAM_CLUSTER% %UPSTREAM_HOST% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% "%REQ(USER-AGENT):5%" "%RESP(X-UPSTREAM)%" "%REQ(X-MISSING)%" 100%%\n';
const JSON_FORMAT = {
  start: '%START_TIME%',
  method: '%REQ(:METHOD)%',
  path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  code: '%RESPONSE_CODE%',
  flags: '%RESPONSE_FLAGS%',
  bytes_sent: '%BYTES_SENT%',
  duration: '%DURATION%',
  cluster: '%UPSTREAM_CLUSTER%',
  upstream: '%UPSTREAM_HOST%',
  missing: '%REQ(X-MISSING)%',
  mixed: 'code=%RESPONSE_CODE%',
  nested: { authority: '%REQ(:AUTHORITY)%', request_id: '%REQ(X-REQUEST-ID)%' },
};

let dir: string;
let app: Upstream;
let proxy: Proxy;
let port: number;

function fileLog(path: string, format?: Record<string, unknown>): object {
  return { name: 'envoy.access_loggers.file', typed_config: { '@type': FILE_LOG, path, ...format } };
}

async function linesOf(file: string, n: number): Promise<string[]> {
  for (let i = 0; i < 200; i++) {
    flushAccessLogs();
    const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
    if (lines.length >= n) return lines;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${file}: fewer than ${n} lines`);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mesh-access-log-'));
  app = await startUpstream('app');
  const routes = {
    name: 'r',
    virtual_hosts: [
      {
        name: 'all',
        domains: ['*'],
        routes: [
          { match: { prefix: '/app' }, route: { cluster: 'app' } },
          { match: { prefix: '/empty' }, route: { cluster: 'empty' } },
          { match: { prefix: '/dead' }, route: { cluster: 'dead' } },
        ],
      },
    ],
  };
  proxy = await startProxy({
    static_resources: {
      clusters: [staticCluster('app', [app.port]), staticCluster('empty', []), staticCluster('dead', [await deadPort()])],
      listeners: [
        hcmListener('l', routes, {
          hcm: {
            access_log: [
              fileLog(join(dir, 'text.log'), { log_format: { text_format_source: { inline_string: TEXT } } }),
              fileLog(join(dir, 'json.log'), { log_format: { json_format: JSON_FORMAT } }),
              fileLog(join(dir, 'omit.log'), { log_format: { json_format: { code: '%RESPONSE_CODE%', missing: '%REQ(X-MISSING)%' }, omit_empty_values: true } }),
              fileLog(join(dir, 'legacy.log'), { format: '%RESPONSE_CODE% %RESPONSE_FLAGS%\n' }),
              fileLog(join(dir, 'default.log')),
            ],
          },
        }),
      ],
    },
  });
  port = proxy.listenerPort('l')!;
  // Four requests, in order: 200, NR, UH, UF.
  assert.equal((await get(port, '/app/x?q=1', { headers: { 'user-agent': 'curl/8.0.1' } })).status, 200);
  assert.equal((await get(port, '/nothing')).status, 404);
  assert.equal((await get(port, '/empty')).status, 503);
  assert.equal((await get(port, '/dead')).status, 503);
});

after(async () => {
  await proxy?.stop();
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('custom text format: operators, alternatives, truncation, "-" for missing, %%', async () => {
  const [ok, nr, uh, uf] = await linesOf(join(dir, 'text.log'), 4);
  const m = /^\[(\S+)\] GET \/app\/x\?q=1 HTTP\/1\.1 200 - 0 (\d+) app 127\.0\.0\.1:(\d+) 127\.0\.0\.1 "curl\/" "app" "-" 100%$/.exec(ok);
  assert.ok(m, ok);
  assert.ok(!Number.isNaN(Date.parse(m[1])));
  assert.ok(Number(m[2]) > 0);
  assert.equal(Number(m[3]), app.port);
  assert.match(nr, / GET \/nothing HTTP\/1\.1 404 NR 0 0 - - /);
  assert.match(uh, / GET \/empty HTTP\/1\.1 503 UH 0 19 empty - /);
  assert.match(uf, / GET \/dead HTTP\/1\.1 503 UF /);
});

test('JSON format: typed numbers, null for missing, mixed strings, nested objects', async () => {
  const [ok, nr, uh, uf] = (await linesOf(join(dir, 'json.log'), 4)).map((l) => JSON.parse(l));
  assert.equal(ok.method, 'GET');
  assert.equal(ok.path, '/app/x?q=1');
  assert.equal(ok.code, 200);
  assert.equal(ok.flags, null);
  assert.equal(typeof ok.bytes_sent, 'number');
  assert.equal(typeof ok.duration, 'number');
  assert.equal(ok.cluster, 'app');
  assert.equal(ok.upstream, `127.0.0.1:${app.port}`);
  assert.equal(ok.missing, null);
  assert.equal(ok.mixed, 'code=200');
  assert.match(ok.nested.request_id, /^[0-9a-f-]{36}$/);
  assert.equal(ok.nested.authority, `127.0.0.1:${port}`);
  assert.ok(!Number.isNaN(Date.parse(ok.start)));
  assert.deepEqual([nr.flags, uh.flags, uf.flags], ['NR', 'UH', 'UF']);
  assert.deepEqual([nr.code, uh.code, uf.code], [404, 503, 503]);
});

test('omit_empty_values drops missing values; the deprecated format field still works', async () => {
  const omitted = (await linesOf(join(dir, 'omit.log'), 4)).map((l) => JSON.parse(l));
  assert.deepEqual(omitted[0], { code: 200 });
  assert.deepEqual(await linesOf(join(dir, 'legacy.log'), 4), ['200 -', '404 NR', '503 UH', '503 UF']);
});

test("no format: Envoy's default line", async () => {
  const [ok] = await linesOf(join(dir, 'default.log'), 4);
  assert.match(ok, /^\[\S+\] "GET \/app\/x\?q=1 HTTP\/1\.1" 200 - 0 \d+ \d+ \d+ "-" "curl\/8\.0\.1" "[0-9a-f-]{36}" "127\.0\.0\.1:\d+" "127\.0\.0\.1:\d+"$/);
});

test('an unknown command operator is a config error naming the field', async () => {
  await assert.rejects(
    startProxy({ static_resources: { listeners: [hcmListener('bad', { virtual_hosts: [] }, { hcm: { access_log: [fileLog('/dev/null', { log_format: { text_format_source: { inline_string: '%NOT_AN_OPERATOR%' } } })] } })] } }),
    /access_log\[0\]\.typed_config\.log_format\.text_format_source\.inline_string: Not supported field in StreamInfo: NOT_AN_OPERATOR/,
  );
});
