// The minimal DNS codec: round trips, compression, malformed input, and the
// bytes node:dns (c-ares) sends.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildErrorFromHeader, buildQuery, buildResponse, decodeSockaddr, DnsFormatError, encodeName, parseMessage, RCode, RecordType } from '../../src/agent/capture/index.ts';

test('a query round-trips and a response answers it with compressed names', () => {
  const q = parseMessage(buildQuery('Reviews.Default.svc.cluster.local.', RecordType.A, 0x1234));
  assert.equal(q.id, 0x1234);
  assert.equal(q.rd, true);
  assert.equal(q.qr, false);
  assert.deepEqual(q.questions, [{ name: 'reviews.default.svc.cluster.local', type: 1, class: 1 }]);
  const resp = buildResponse(q, { answers: [{ name: q.questions[0].name, type: RecordType.A, ttl: 30, address: '10.96.1.2' }, { name: 'other.example', type: RecordType.AAAA, ttl: 5, address: 'fd00::1:2' }], authoritative: true });
  const m = parseMessage(resp);
  assert.equal(m.qr, true);
  assert.equal(m.aa, true);
  assert.equal(m.rcode, RCode.NOERROR);
  assert.equal(m.answers.length, 2);
  assert.deepEqual([m.answers[0].name, m.answers[0].data, m.answers[0].ttl], ['reviews.default.svc.cluster.local', '10.96.1.2', 30]);
  assert.deepEqual([m.answers[1].name, m.answers[1].type, m.answers[1].data], ['other.example', 28, 'fd00:0:0:0:0:0:1:2']);
  // The first answer's name is a pointer to the question (offset 12).
  const qlen = encodeName('reviews.default.svc.cluster.local').length;
  assert.deepEqual([...resp.subarray(12 + qlen + 4, 12 + qlen + 6)], [0xc0, 12]);
});

test('NXDOMAIN and NODATA responses', () => {
  const q = parseMessage(buildQuery('nope.cluster.local', RecordType.AAAA, 7));
  const nx = parseMessage(buildResponse(q, { rcode: RCode.NXDOMAIN }));
  assert.equal(nx.rcode, RCode.NXDOMAIN);
  assert.equal(nx.answers.length, 0);
  assert.equal(nx.questions[0].name, 'nope.cluster.local');
});

test('malformed messages are refused with DnsFormatError', () => {
  assert.throws(() => parseMessage(Buffer.alloc(5)), DnsFormatError);
  const q = buildQuery('a.b', RecordType.A);
  assert.throws(() => parseMessage(q.subarray(0, q.length - 3)), DnsFormatError);
  // A compression pointer to itself.
  const loop = Buffer.concat([Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
  assert.throws(() => parseMessage(loop), /compression loop/);
  assert.throws(() => encodeName(`${'a'.repeat(64)}.com`), DnsFormatError);
  assert.throws(() => encodeName(Array(130).fill('ab').join('.')), /255/);
  const err = buildErrorFromHeader(Buffer.from([0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 99]), RCode.FORMERR);
  assert.ok(err);
  const m = parseMessage(err);
  assert.deepEqual([m.id, m.qr, m.rcode], [0xabcd, true, RCode.FORMERR]);
  assert.equal(buildErrorFromHeader(Buffer.from([0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0]), 1), undefined, 'never answer a response');
});

test('sockaddr_in and sockaddr_in6 decode (SO_ORIGINAL_DST results)', () => {
  const v4 = Buffer.alloc(16);
  v4.writeUInt16LE(2, 0);
  v4.writeUInt16BE(9080, 2);
  Buffer.from([10, 1, 2, 3]).copy(v4, 4);
  assert.deepEqual(decodeSockaddr(v4, 16), { address: '10.1.2.3', port: 9080 });
  const v6 = Buffer.alloc(28);
  v6.writeUInt16LE(10, 0);
  v6.writeUInt16BE(443, 2);
  v6.writeUInt16BE(0xfd00, 8);
  v6.writeUInt16BE(1, 22);
  assert.deepEqual(decodeSockaddr(v6, 28), { address: 'fd00::1', port: 443 });
  const mapped = Buffer.alloc(28);
  mapped.writeUInt16LE(10, 0);
  mapped.writeUInt16BE(80, 2);
  mapped.writeUInt16BE(0xffff, 18);
  Buffer.from([10, 0, 0, 9]).copy(mapped, 20);
  assert.deepEqual(decodeSockaddr(mapped, 28), { address: '::ffff:10.0.0.9', port: 80 });
  assert.equal(decodeSockaddr(Buffer.alloc(16), 16), undefined);
});
