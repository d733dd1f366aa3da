// The report path's wire: the proxy's ALS entries, encoded in one call per
// batch (no proto-loader fromObject pass), decode as standard ALS v3; Mixer
// reads them both as proto-loader objects and as raw protobufjs messages
// (its own cheap path) into the same attribute bag.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AttributeVocabulary } from '../../src/api/index.ts';
import { attributesFromAccessLog } from '../../src/mixer/envoy-attributes.ts';
import type { AccessLogEntry } from '../../src/proxy/access-log.ts';
import { encodeMessage, httpEntry } from '../../src/proxy/access-loggers/grpc-als/grpc-als.ts';
import { setFilterMetadata } from '../../src/proxy/rbac/stream-metadata.ts';
import { loadXdsProtos } from '../../src/xds/index.ts';

const protos = loadXdsProtos();
const vocabulary = AttributeVocabulary.builtin();
const MESSAGE = 'envoy.service.accesslog.v3.StreamAccessLogsMessage';

function logEntry(method: string, status: number, flags: string): AccessLogEntry {
  const requestHeaders = { 'x-request-id': 'req-1', 'content-type': 'application/grpc', referer: 'http://a/' };
  setFilterMetadata(requestHeaders, 'istio.mixer', { 'source.labels': { app: 'reviews', version: 'v3' }, 'source.name': 'reviews-v3' });
  return {
    startTime: Date.UTC(2026, 0, 1, 0, 0, 0, 250), method, path: '/ratings/1?x=2', protocol: 'HTTP/2', status, flags,
    bytesReceived: 12, bytesSent: 1024, durationMs: 7.5, upstreamServiceTime: undefined, forwardedFor: undefined, userAgent: 'curl', requestId: 'req-1',
    authority: 'ratings:9080', upstreamHost: undefined, upstreamCluster: 'inbound|9080||ratings.default.svc.cluster.local', requestHeaders,
  } as unknown as AccessLogEntry;
}

const identifier = { node: { id: 'sidecar~10.0.0.1~ratings-v1.default~default.svc.cluster.local' }, log_name: 'mixer' };

const cases = [
  { name: 'GET 200 without flags', method: 'GET', status: 200, flags: '', proxyErrorCode: '-' },
  { name: 'POST 429 rate limited', method: 'POST', status: 429, flags: 'RL', proxyErrorCode: 'RL' },
  { name: 'PATCH 403 denied by ext_authz', method: 'PATCH', status: 403, flags: 'UAEX', proxyErrorCode: 'UAEX' },
  { name: 'an unknown method is left out', method: 'PURGE', status: 200, flags: 'UH,UF', proxyErrorCode: 'UH,UF' },
];

for (const c of cases) {
  test(`ALS entry round trip: ${c.name}`, () => {
    const bytes = encodeMessage({ identifier, http_logs: { log_entry: [httpEntry(logEntry(c.method, c.status, c.flags), [], [])] } });
    const type = protos.root.lookupType(MESSAGE);
    // What any ALS v3 server sees (proto-loader objects) and what Mixer reads (raw messages).
    const standard = protos.serviceDefinition('envoy.service.accesslog.v3.AccessLogService').StreamAccessLogs!.requestDeserialize(Buffer.from(bytes)) as any;
    const raw = type.decode(bytes) as any;
    assert.equal(standard.identifier.log_name, 'mixer');
    const fromStandard = attributesFromAccessLog(standard.http_logs.log_entry[0], standard.identifier, vocabulary).toText();
    const fromRaw = attributesFromAccessLog(raw.http_logs.log_entry[0], raw.identifier, vocabulary).toText();
    assert.deepEqual(fromRaw, fromStandard);
    if (c.method === 'PURGE') assert.equal(fromRaw['request.method'], undefined);
    else assert.equal(fromRaw['request.method'], c.method);
    assert.equal(fromRaw['response.code'], String(c.status));
    assert.equal(fromRaw['context.proxy_error_code'], c.proxyErrorCode);
    assert.equal(fromRaw['request.path'], '/ratings/1?x=2');
    assert.equal(fromRaw['request.size'], '12');
    assert.equal(fromRaw['response.size'], '1024');
    assert.equal(fromRaw['response.duration'], '7.5');
    assert.equal(fromRaw['request.time'], '2026-01-01T00:00:00.250Z');
    assert.equal(fromRaw['context.protocol'], 'grpc');
    assert.equal(fromRaw['destination.service.host'], 'ratings.default.svc.cluster.local');
    assert.equal(fromRaw['source.labels'], '{"app":"reviews","version":"v3"}');
    assert.equal(fromRaw['source.name'], 'reviews-v3');
    assert.equal(fromRaw['context.reporter.kind'], 'inbound');
  });
}
