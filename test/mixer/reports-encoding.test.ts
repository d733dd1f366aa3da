// Istio 1.4's Report API wire: bags encoded by src/xds/mixer-report.ts
// (global dictionary, one word list per message, delta encoding) decode in
// Mixer (src/mixer/report-decoder.ts) to the same bags; the proxy's report
// bag of a request equals what Mixer derives from the ALS entry of the same
// request; malformed and oversized requests are refused naming the field.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AttributeVocabulary } from '../../src/api/index.ts';
import { attributesFromAccessLog } from '../../src/mixer/envoy-attributes.ts';
import { REPORT_LIMITS, bagsFromReport } from '../../src/mixer/report-decoder.ts';
import type { AccessLogEntry } from '../../src/proxy/access-log.ts';
import { encodeMessage, httpEntry } from '../../src/proxy/access-loggers/grpc-als/grpc-als.ts';
import { reportBag } from '../../src/proxy/access-loggers/mixer-report/mixer-report.ts';
import { setFilterMetadata } from '../../src/proxy/rbac/stream-metadata.ts';
import { DELTA_ENCODING, GLOBAL_WORDS, INDEPENDENT_ENCODING, ReportEncoder, encodeReport, encodeReportRequest, encodeReports, loadXdsProtos, mixerReportProtos } from '../../src/xds/index.ts';
import { ProtoWriter, WIRE_VARINT, zigzag32 } from '../../src/xds/index.ts';
import type { ReportBag } from '../../src/xds/index.ts';

const vocabulary = AttributeVocabulary.builtin();
const typeOf = (name: string): string | undefined => vocabulary.typeOf(name);
const decode = (bytes: Uint8Array): Record<string, any> => mixerReportProtos().request.decode(bytes) as unknown as Record<string, any>;
/** The request encodeReport writes, as protobufjs reads it back. */
const encoded = (bags: ReportBag[], options: Parameters<typeof encodeReport>[1] = {}): Record<string, any> => decode(encodeReport(bags, { typeOf, ...options }));
/** The fields of a decoded attribute set that carry something. */
const fieldsSet = (attributes: Record<string, any>): string[] => Object.keys(attributes).filter((k) => Object.keys(attributes[k] ?? {}).length > 0).sort();
const roundTrip = (bags: ReportBag[], semantics?: 'auto' | 'delta' | 'independent') => bagsFromReport(encodeReport(bags, { typeOf, semantics }), vocabulary).map((b) => b.toText());

const ALL_TYPES: ReportBag = new Map<string, any>([
  ['source.ip', '10.0.0.7'],
  ['destination.ip', 'fd00::1:2'],
  ['source.port', 40123],
  ['request.path', '/ratings/1'],
  ['request.method', 'GET'],
  ['response.code', 503],
  ['response.duration', 12.5],
  ['request.time', new Date(Date.UTC(2026, 0, 1, 0, 0, 1, 250))],
  ['connection.mtls', true],
  ['source.labels', new Map([['app', 'reviews'], ['version', 'v3'], ['content-type', 'text/plain']])],
  ['request.headers', new Map()],
  ['myorg.ratio', 0.25],
  ['myorg.blob', new Uint8Array([1, 2, 3])],
]);

test('Istio global dictionary: 176 words in the YAML order, unique, quoted entries as Istio generated them', () => {
  assert.equal(GLOBAL_WORDS.length, 176);
  assert.equal(new Set(GLOBAL_WORDS).size, GLOBAL_WORDS.length);
  const at: [number, string][] = [[0, 'source.ip'], [7, 'source.principal'], [16, 'request.headers'], [32, ':authority'], [91, 'GET'], [95, "'200'"], [114, 'true'], [135, '0'], [175, 'quota.cache_hit']];
  for (const [i, w] of at) assert.equal(GLOBAL_WORDS[i], w, `word ${i}`);
});

const cases: { name: string; bags: ReportBag[]; semantics?: 'auto' | 'delta' | 'independent'; expect: number }[] = [
  { name: 'every value type in one bag', bags: [ALL_TYPES], expect: INDEPENDENT_ENCODING },
  { name: 'two bags, the second changing two values: delta', bags: [ALL_TYPES, new Map([...ALL_TYPES, ['response.code', 200], ['request.path', '/ratings/2']])], expect: DELTA_ENCODING },
  { name: 'a bag dropping an attribute: independent', bags: [ALL_TYPES, new Map([...ALL_TYPES].filter(([k]) => k !== 'connection.mtls'))], expect: INDEPENDENT_ENCODING },
  { name: 'forced independent', bags: [ALL_TYPES, ALL_TYPES], semantics: 'independent', expect: INDEPENDENT_ENCODING },
];

for (const c of cases) {
  test(`round trip: ${c.name}`, () => {
    const bytes = encodeReport(c.bags, { typeOf, semantics: c.semantics });
    assert.equal(decode(bytes).repeated_attributes_semantics, c.expect);
    const decoded = bagsFromReport(bytes, vocabulary);
    assert.equal(decoded.length, c.bags.length);
    for (let i = 0; i < c.bags.length; i++) {
      const want: Record<string, unknown> = {};
      for (const [k, v] of c.bags[i]!) want[k] = v;
      const got = decoded[i]!;
      assert.deepEqual(got.names(), Object.keys(want).sort());
      assert.equal(got.get('destination.ip'), 'fd00::1:2');
      assert.equal(got.get('source.ip'), '10.0.0.7');
      assert.equal(got.get('response.duration'), 12.5);
      assert.equal((got.get('request.time') as Date).toISOString(), '2026-01-01T00:00:01.250Z');
      assert.deepEqual(got.get('source.labels'), want['source.labels']);
      assert.deepEqual([...(got.get('myorg.blob') as Uint8Array)], [1, 2, 3]);
      assert.equal(got.get('myorg.ratio'), 0.25);
      assert.equal(got.get('response.code'), want['response.code']);
      assert.equal(got.get('request.path'), want['request.path']);
      assert.equal(got.get('connection.mtls'), want['connection.mtls']);
    }
  });
}

test('words: attribute names and common values index the global dictionary, the rest one word list per message', () => {
  const request = encoded([ALL_TYPES, ALL_TYPES], { semantics: 'independent' });
  const first = request.attributes[0];
  assert.equal(first.strings[GLOBAL_WORDS.indexOf('request.method')], GLOBAL_WORDS.indexOf('GET'));
  assert.ok(GLOBAL_WORDS.indexOf('source.ip') in first.bytes, 'source.ip as IP bytes under its global index');
  assert.deepEqual([...first.bytes[0]], [10, 0, 0, 7]);
  assert.ok(request.default_words.includes('/ratings/1') && request.default_words.includes('myorg.ratio'));
  assert.ok(!request.default_words.includes('request.path') && !request.default_words.includes('GET'));
  assert.equal(new Set(request.default_words).size, request.default_words.length, 'each word once per message');
  assert.equal(request.global_word_count, GLOBAL_WORDS.length);
  // A set with its own words uses them instead of default_words (Istio's per-set dictionary).
  const own = { attributes: [{ words: ['myorg.tenant', 'acme'], strings: { [-1]: -2 } }], default_words: ['x'], global_word_count: GLOBAL_WORDS.length, repeated_attributes_semantics: INDEPENDENT_ENCODING };
  assert.deepEqual(bagsFromReport(encodeReportRequest(own), vocabulary)[0]!.toText(), { 'myorg.tenant': 'acme' });
  // A client that knows fewer global words gets only those from the encoder.
  const older = encoded([new Map([['quota.cache_hit', true]])], { globalWordCount: 170 });
  assert.deepEqual([...older.default_words], ['quota.cache_hit']);
  assert.equal(older.global_word_count, 170);
  assert.deepEqual(bagsFromReport(encodeReport([new Map([['quota.cache_hit', true]])], { globalWordCount: 170 }), vocabulary)[0]!.toText(), { 'quota.cache_hit': 'true' });
});

test('delta encoding sends only what changed and makes a batch of similar bags smaller', () => {
  const bags = Array.from({ length: 100 }, (_, i) => new Map([...ALL_TYPES, ['request.path', `/ratings/${i}`], ['request.time', new Date(1_767_225_600_000 + i)]]));
  const delta = encoded(bags);
  assert.equal(delta.repeated_attributes_semantics, DELTA_ENCODING);
  assert.deepEqual(fieldsSet(delta.attributes[0]), ['bools', 'bytes', 'doubles', 'durations', 'int64s', 'string_maps', 'strings', 'timestamps']);
  assert.deepEqual(fieldsSet(delta.attributes[1]), ['strings', 'timestamps']);
  const dBytes = encodeReport(bags, { typeOf }).byteLength;
  const iBytes = encodeReport(bags, { typeOf, semantics: 'independent' }).byteLength;
  assert.ok(dBytes * 3 < iBytes, `delta ${dBytes} B vs independent ${iBytes} B`);
  assert.deepEqual(roundTrip(bags), roundTrip(bags, 'independent'));
});

test('edge values survive the hand-written encoder: zero, negative and 64-bit numbers, times around the epoch, empty words', () => {
  const bag: ReportBag = new Map<string, any>([
    ['response.code', 0],
    ['request.size', -5],
    ['response.size', 2 ** 40 + 3],
    ['myorg.big', Number.MIN_SAFE_INTEGER],
    ['myorg.ratio', -0.5],
    ['connection.mtls', false],
    ['response.duration', -1.5],
    ['request.time', new Date(0)],
    ['response.time', new Date(-1500)],
    ['request.path', ''],
    ['request.headers', new Map([['', 'x'], ['k', '']])],
    ['myorg.blob', new Uint8Array(0)],
  ]);
  for (const semantics of ['independent', 'delta'] as const) {
    const got = bagsFromReport(encodeReport([bag, bag], { typeOf, semantics }), vocabulary);
    for (const b of got) {
      assert.equal(b.get('response.code'), 0);
      assert.equal(b.get('request.size'), -5);
      assert.equal(b.get('response.size'), 2 ** 40 + 3);
      assert.equal(b.get('myorg.big'), Number.MIN_SAFE_INTEGER);
      assert.equal(b.get('myorg.ratio'), -0.5);
      assert.equal(b.get('connection.mtls'), false);
      assert.equal(b.get('response.duration'), -1.5);
      assert.equal((b.get('request.time') as Date).getTime(), 0);
      assert.equal((b.get('response.time') as Date).getTime(), -1500);
      assert.equal(b.get('request.path'), '');
      assert.deepEqual(b.get('request.headers'), new Map([['', 'x'], ['k', '']]));
      assert.equal((b.get('myorg.blob') as Uint8Array).length, 0);
    }
  }
});

test('ReportEncoder: a set dropping an attribute closes the delta message; after a short run the next message is independent', () => {
  const withUa = (i: number): ReportBag => new Map<string, any>([['request.path', `/p${i}`], ['request.useragent', 'curl']]);
  const withoutUa = (i: number): ReportBag => new Map<string, any>([['request.path', `/p${i}`]]);
  const encoder = new ReportEncoder({ typeOf });
  const input = [withUa(0), withUa(1), withoutUa(2), withUa(3), withoutUa(4), withUa(5)];
  for (const bag of input) assert.equal(encoder.add(bag), true);
  assert.equal(encoder.buffered, 6);
  encoder.finish();
  const messages = encoder.take();
  assert.equal(encoder.buffered, 0);
  // [0,1] delta, closed by 2 (drops useragent) after 2 sets: the rest in one independent message.
  assert.deepEqual(messages.map((m) => m.bags), [2, 4]);
  const decoded = messages.map((m) => decode(m.bytes));
  assert.equal(decoded[0]!.repeated_attributes_semantics, DELTA_ENCODING);
  assert.equal(decoded[1]!.repeated_attributes_semantics, INDEPENDENT_ENCODING);
  const bags = messages.flatMap((m) => bagsFromReport(m.bytes, vocabulary)).map((b) => b.toText());
  assert.deepEqual(bags, input.map((b) => Object.fromEntries(b)));
});

test('ReportEncoder: max_batch_entries and max_message_bytes close messages; a set too large alone is refused and leaves nothing behind', () => {
  const bag = (i: number): ReportBag => new Map<string, any>([['request.path', `/ratings/${i}`], ['response.code', 200]]);
  const byCount = new ReportEncoder({ typeOf }, { maxBags: 3 });
  for (let i = 0; i < 7; i++) byCount.add(bag(i));
  assert.equal(byCount.ready, true);
  byCount.finish();
  assert.deepEqual(byCount.take().map((m) => m.bags), [3, 3, 1]);

  const bySize = new ReportEncoder({ typeOf }, { maxBytes: 200 });
  const sent: ReportBag[] = [];
  for (let i = 0; i < 40; i++) {
    sent.push(bag(i));
    assert.equal(bySize.add(bag(i)), true);
  }
  assert.equal(bySize.add(new Map([['request.path', 'x'.repeat(300)]])), false);
  bySize.finish();
  const messages = bySize.take();
  assert.ok(messages.length > 1 && messages.every((m) => m.bytes.byteLength <= 200), `sizes ${messages.map((m) => m.bytes.byteLength)}`);
  // Every set arrives once, in order, and the refused one left no word behind.
  const got = messages.flatMap((m) => bagsFromReport(m.bytes, vocabulary)).map((b) => b.get('request.path'));
  assert.deepEqual(got, sent.map((b) => b.get('request.path')));
  for (const m of messages) assert.ok(!decode(m.bytes).default_words.some((w: string) => w.startsWith('xxx')));
});

test('ReportEncoder: request ids are written once each, also across a split, and a refused set leaves none behind', () => {
  const bag = (i: number): ReportBag => new Map<string, any>([['request.id', `id-${i}`], ['request.path', '/ratings'], ['response.code', 200]]);
  const encoder = new ReportEncoder({ typeOf }, { maxBytes: 160 });
  const sent: string[] = [];
  for (let i = 0; i < 30; i++) {
    assert.equal(encoder.add(bag(i)), true);
    sent.push(`id-${i}`);
    // The same id again (a retried request reported twice) is still its own set.
    if (i === 7) {
      assert.equal(encoder.add(bag(i)), true);
      sent.push(`id-${i}`);
    }
  }
  assert.equal(encoder.add(new Map([['request.id', 'z'.repeat(300)]])), false);
  encoder.finish();
  const messages = encoder.take();
  assert.ok(messages.length > 2 && messages.every((m) => m.bytes.byteLength <= 160), `sizes ${messages.map((m) => m.bytes.byteLength)}`);
  assert.deepEqual(messages.flatMap((m) => bagsFromReport(m.bytes, vocabulary)).map((b) => b.get('request.id')), sent);
  for (const m of messages) {
    const words: string[] = decode(m.bytes).default_words;
    assert.ok(!words.some((w) => w.startsWith('zzz')));
    // An id travels in the message that carries its set, and no word is left unused (a
    // set repeating the id before it carries none: delta encoding).
    const ids = words.filter((w) => w.startsWith('id-')).length;
    assert.ok(ids === m.bags || (ids === m.bags - 1 && words.includes('id-7')), `${ids} ids for ${m.bags} sets`);
  }
});

test('encodeReports splits a batch past the byte bound and counts a single bag that cannot fit', () => {
  const big = (i: number): ReportBag => new Map([['request.path', `/${String(i).repeat(1)}${'x'.repeat(3000)}`]]);
  const { messages, tooLarge } = encodeReports([big(1), big(2), big(3), big(4), new Map([['request.path', 'y'.repeat(20_000)]])], 8000);
  assert.equal(tooLarge, 1);
  assert.equal(messages.reduce((n, m) => n + m.bags, 0), 4);
  assert.ok(messages.every((m) => m.bytes.byteLength <= 8000));
});

const bad: { name: string; request: Record<string, any>; field: RegExp }[] = [
  { name: 'a message word that does not exist', request: { attributes: [{ strings: { [-3]: -1 } }], default_words: ['a'], global_word_count: 176 }, field: /ReportRequest\.attributes\[0\]\.strings: word -3 is not in the message's word list \(1 words\)/ },
  { name: 'a value word that does not exist', request: { attributes: [{ strings: { 0: -9 } }], default_words: [], global_word_count: 176 }, field: /ReportRequest\.attributes\[0\]\.strings\[source\.ip\]: word -9/ },
  { name: 'a global word past global_word_count', request: { attributes: [{ bools: { 175: true } }], global_word_count: 100 }, field: /ReportRequest\.attributes\[0\]\.bools: global word 175 is past global_word_count 100/ },
  { name: 'a client dictionary larger than Mixer\'s', request: { attributes: [], global_word_count: 500 }, field: /ReportRequest\.global_word_count: .*500 words, Mixer's 176/ },
  { name: 'too many attribute sets', request: { attributes: Array.from({ length: REPORT_LIMITS.maxBags + 1 }, () => ({})), global_word_count: 176 }, field: /ReportRequest\.attributes: 10001 attribute sets, more than 10000/ },
  { name: 'too many attributes in a set', request: { attributes: [{ int64s: Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [-(i + 1), i])) }], default_words: Array.from({ length: 1001 }, (_, i) => `a${i}`), global_word_count: 176 }, field: /ReportRequest\.attributes\[0\]: 1001 attributes, more than 1000/ },
  { name: 'too many words', request: { attributes: [], default_words: Array.from({ length: REPORT_LIMITS.maxWords + 1 }, (_, i) => `w${i}`), global_word_count: 176 }, field: /ReportRequest\.default_words: 100001 words/ },
  { name: 'a string map too large', request: { attributes: [{ string_maps: { 5: { entries: Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [-(i + 1), 0])) } } }], default_words: Array.from({ length: 1001 }, (_, i) => `k${i}`), global_word_count: 176 }, field: /ReportRequest\.attributes\[0\]\.string_maps\[source\.labels\]: 1001 entries/ },
];

test('the decoder reads fields in any order, skips unknown ones, and refuses bytes that are not a ReportRequest', () => {
  const g = (w: string): number => GLOBAL_WORDS.indexOf(w);
  const w = new ProtoWriter(Buffer.alloc(256));
  const varintField = (field: number, n: number): void => {
    w.tag(field, WIRE_VARINT);
    w.varint(n);
  };
  // Message fields before the set, and an unknown varint field 15.
  varintField(3, GLOBAL_WORDS.length);
  w.header(2, 4);
  w.pos += w.buf.write('acme', w.pos);
  varintField(15, 7);
  // One set: strings {value first, then key}; string_maps {value first, then key}.
  const entry = Buffer.from([0x10, zigzag32(-1), 0x08, zigzag32(g('request.path'))]);
  const mapEntry = Buffer.from([0x10, zigzag32(-1), 0x08, zigzag32(g(':authority'))]);
  const stringMap = Buffer.concat([Buffer.from([0x0a, mapEntry.length]), mapEntry]);
  const mapAttr = Buffer.concat([Buffer.from([0x12, stringMap.length]), stringMap, Buffer.from([0x08, zigzag32(g('source.labels'))])]);
  const set = Buffer.concat([Buffer.from([0x12, entry.length]), entry, Buffer.from([0x4a, mapAttr.length]), mapAttr]);
  w.header(1, set.length);
  w.pos += set.copy(w.buf, w.pos);
  const [bag] = bagsFromReport(w.bytesWritten(), vocabulary);
  assert.equal(bag!.get('request.path'), 'acme');
  assert.deepEqual(bag!.get('source.labels'), new Map([[':authority', 'acme']]));

  const truncated = encodeReport([ALL_TYPES], { typeOf }).subarray(0, 30);
  assert.throws(() => bagsFromReport(truncated, vocabulary), /MESH_ERR_MIXER_REPORT|ReportRequest: not a ReportRequest/);
});

test('random and mangled bytes give bags or MESH_ERR_MIXER_REPORT, never another error', () => {
  const good = encodeReport([ALL_TYPES, new Map([...ALL_TYPES, ['response.code', 200]])], { typeOf });
  let seed = 42;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  let refused = 0;
  for (let i = 0; i < 2000; i++) {
    const bytes = i % 2 === 0 ? Buffer.from(Array.from({ length: random(64) }, () => random(256))) : Buffer.from(good);
    if (i % 2 === 1) for (let k = 0; k < 1 + random(4); k++) bytes[random(bytes.length)] = random(256);
    try {
      bagsFromReport(bytes, vocabulary);
    } catch (err) {
      assert.equal((err as { code?: string }).code, 'MESH_ERR_MIXER_REPORT', `input ${bytes.toString('hex')}: ${(err as Error).message}`);
      refused++;
    }
  }
  assert.ok(refused > 100, `${refused} refused`);
});

for (const c of bad) {
  test(`refused: ${c.name}`, () => {
    assert.throws(() => bagsFromReport(encodeReportRequest(c.request), vocabulary), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'MESH_ERR_MIXER_REPORT');
      assert.match(err.message, c.field);
      return true;
    });
  });
}

function logEntry(method: string, status: number, flags: string, mtlsPeer = false): AccessLogEntry {
  const requestHeaders = { 'x-request-id': 'req-1', 'content-type': 'application/grpc', referer: 'http://a/' };
  setFilterMetadata(requestHeaders, 'istio.mixer', { 'source.labels': { app: 'reviews', version: 'v3' }, 'source.name': 'reviews-v3', 'destination.workload.name': 'ratings-v1' });
  const socket = { remoteAddress: '::ffff:10.0.0.9', remotePort: 51000, localAddress: '10.0.0.1', localPort: 9080, ...(mtlsPeer ? {} : {}) };
  return {
    startTime: Date.UTC(2026, 0, 1, 0, 0, 0, 250), method, path: '/ratings/1?x=2&y=3', protocol: 'HTTP/2', status, flags,
    bytesReceived: 12, bytesSent: 1024, durationMs: 7.5, upstreamServiceTime: undefined, forwardedFor: undefined, userAgent: 'curl', requestId: 'req-1',
    authority: 'ratings:9080', upstreamHost: undefined, upstreamCluster: 'inbound|9080||ratings.default.svc.cluster.local', requestHeaders, socket,
  } as unknown as AccessLogEntry;
}

const parity = [
  { name: 'GET 200', method: 'GET', status: 200, flags: '' },
  { name: 'POST 429 rate limited', method: 'POST', status: 429, flags: 'RL' },
  { name: 'PATCH 403 denied by ext_authz', method: 'PATCH', status: 403, flags: 'UAEX' },
  { name: 'upstream failures', method: 'GET', status: 503, flags: 'UH,UF' },
];
const nodeId = 'sidecar~10.0.0.1~ratings-v1.default~default.svc.cluster.local';

for (const c of parity) {
  test(`parity with the ALS path: ${c.name} gives the same bag`, () => {
    const e = logEntry(c.method, c.status, c.flags);
    const als = loadXdsProtos().root.lookupType('envoy.service.accesslog.v3.StreamAccessLogsMessage').decode(encodeMessage({ identifier: { node: { id: nodeId }, log_name: 'mixer' }, http_logs: { log_entry: [httpEntry(e, [], [])] } })) as any;
    const fromAls = attributesFromAccessLog(als.http_logs.log_entry[0], als.identifier, vocabulary).toText();
    const [fromReport] = roundTrip([reportBag(e, nodeId)]);
    assert.deepEqual(fromReport, fromAls);
    assert.equal(fromReport!['source.ip'], '10.0.0.9');
    assert.equal(fromReport!['request.query_params'], '{"x":"2","y":"3"}');
  });
}
