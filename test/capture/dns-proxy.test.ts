// The DNS proxy on loopback: mesh names from the table (short and long
// forms, ServiceEntry hosts, wildcards), NXDOMAIN for unknown cluster names,
// forwarding to an upstream (a fake one on loopback), bounded by timeouts and
// concurrency. Queried with node:dns Resolver, raw UDP/TCP, and dig if installed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import type { Socket as UdpSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { connect, createServer } from 'node:net';
import type { Server } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { buildQuery, buildResponse, DnsProxy, parseMessage, RCode, RecordType, upstreamsFromResolvConf, findExecutable as which } from '../../src/agent/capture/index.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const TABLE = {
  'reviews.default.svc.cluster.local': ['10.96.0.20', 'fd00::20'],
  'ratings.bookinfo.svc.cluster.local': ['10.96.0.21'],
  'api.example.com': ['10.96.0.30'],
  '*.wild.example.org': ['10.96.0.40'],
};

function udpAsk(port: number, name: string, type: number, id = 4242): Promise<ReturnType<typeof parseMessage>> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    const t = setTimeout(() => {
      s.close();
      reject(new Error('no UDP answer'));
    }, 5000);
    s.on('message', (m) => {
      clearTimeout(t);
      s.close();
      resolve(parseMessage(m));
    });
    s.send(buildQuery(name, type, id), port, '127.0.0.1');
  });
}

function tcpAsk(port: number, name: string, type: number): Promise<ReturnType<typeof parseMessage>> {
  return new Promise((resolve, reject) => {
    const q = buildQuery(name, type, 77);
    const head = Buffer.alloc(2);
    head.writeUInt16BE(q.length);
    const s = connect(port, '127.0.0.1', () => s.write(Buffer.concat([head, q])));
    let got = Buffer.alloc(0);
    s.setTimeout(5000, () => {
      s.destroy();
      reject(new Error('no TCP answer'));
    });
    s.on('error', reject);
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
        s.end();
        resolve(parseMessage(got.subarray(2)));
      }
    });
  });
}

describe('DNS proxy', { timeout: 30_000 }, () => {
  let proxy: DnsProxy;
  let upstreamUdp: UdpSocket;
  let upstreamTcp: Server;
  let blackhole: UdpSocket;
  let upstreamPort = 0;
  let upstreamSeen = 0;
  const resolver = new Resolver({ timeout: 3000, tries: 1 });

  before(async () => {
    // A fake upstream on loopback: every A query gets 192.0.2.7 (TEST-NET; only data, never dialled).
    const answer = (m: Buffer) => {
      upstreamSeen++;
      const q = parseMessage(m);
      return buildResponse(q, { answers: q.questions[0].type === RecordType.A ? [{ name: q.questions[0].name, type: RecordType.A, ttl: 60, address: '192.0.2.7' }] : [] });
    };
    // UDP and TCP on one port number: the UDP port comes from bind(0), and the same TCP
    // port may be held by some other connection at that moment, so try again then.
    for (let attempt = 0; ; attempt++) {
      upstreamUdp = createSocket('udp4');
      upstreamUdp.on('message', (m, r) => upstreamUdp.send(answer(m), r.port, r.address));
      await new Promise<void>((r) => upstreamUdp.bind(0, '127.0.0.1', () => r()));
      upstreamPort = upstreamUdp.address().port;
      upstreamTcp = createServer((c) =>
        c.once('data', (d: Buffer) => {
          const out = answer(d.subarray(2));
          const h = Buffer.alloc(2);
          h.writeUInt16BE(out.length);
          c.end(Buffer.concat([h, out]));
        }),
      );
      const listening = await new Promise<boolean>((r) => {
        upstreamTcp.once('error', () => r(false));
        upstreamTcp.listen(upstreamPort, '127.0.0.1', () => r(true));
      });
      if (listening) break;
      upstreamUdp.close();
      if (attempt >= 20) throw new Error(`no port free for both UDP and TCP after ${attempt + 1} tries`);
    }
    blackhole = createSocket('udp4');
    await new Promise<void>((r) => blackhole.bind(0, '127.0.0.1', () => r()));
    proxy = new DnsProxy({ port: 0, namespace: 'default', upstreams: [{ address: '127.0.0.1', port: upstreamPort }], upstreamTimeoutMs: 300 });
    proxy.setNames(TABLE);
    const { port } = await proxy.start();
    resolver.setServers([`127.0.0.1:${port}`]);
  }, { timeout: 20_000 });

  after(async () => {
    await proxy?.close();
    upstreamUdp?.close();
    blackhole?.close();
    upstreamTcp?.close();
  });

  test('service names in every form the search list produces', async () => {
    for (const name of ['reviews', 'reviews.default', 'reviews.default.svc', 'reviews.default.svc.cluster.local', 'reviews.default.default.svc.cluster.local', 'REVIEWS.default.svc.cluster.local.']) {
      assert.deepEqual(await resolver.resolve4(name), ['10.96.0.20'], name);
    }
    // Another namespace's service: not by its bare name.
    assert.deepEqual(await resolver.resolve4('ratings.bookinfo'), ['10.96.0.21']);
    await assert.rejects(resolver.resolve4('ratings.default.svc.cluster.local'), { code: 'ENOTFOUND' });
    assert.equal(proxy.resolve('ratings').kind, 'forward', 'a bare name from another namespace is not ours');
  });

  test('ServiceEntry hosts, wildcards, AAAA and NODATA', async () => {
    assert.deepEqual(await resolver.resolve4('api.example.com'), ['10.96.0.30']);
    assert.deepEqual(await resolver.resolve4('api.example.com.default.svc.cluster.local'), ['10.96.0.30']);
    assert.deepEqual(await resolver.resolve4('a.b.wild.example.org'), ['10.96.0.40']);
    assert.deepEqual(await resolver.resolve6('reviews'), ['fd00::20']);
    const nodata = await udpAsk(proxy.port, 'api.example.com', RecordType.AAAA);
    assert.deepEqual([nodata.rcode, nodata.answers.length, nodata.aa], [RCode.NOERROR, 0, true]);
    const mx = await udpAsk(proxy.port, 'reviews', RecordType.MX);
    assert.deepEqual([mx.rcode, mx.answers.length], [RCode.NOERROR, 0]);
  });

  test('unknown cluster names are NXDOMAIN without asking upstream; other names are forwarded', async () => {
    const before = upstreamSeen;
    const nx = await udpAsk(proxy.port, 'nothing.default.svc.cluster.local', RecordType.A);
    assert.equal(nx.rcode, RCode.NXDOMAIN);
    assert.equal(upstreamSeen, before);
    assert.deepEqual(await resolver.resolve4('www.outside.test'), ['192.0.2.7']);
    assert.equal(upstreamSeen, before + 1);
    const tcp = await tcpAsk(proxy.port, 'tcp.outside.test', RecordType.A);
    assert.equal(tcp.answers[0]?.data, '192.0.2.7');
    assert.equal(upstreamSeen, before + 2);
  });

  test('over TCP, mesh names are answered too', async () => {
    const m = await tcpAsk(proxy.port, 'reviews.default', RecordType.A);
    assert.deepEqual(m.answers.map((a) => a.data), ['10.96.0.20']);
    assert.equal(m.id, 77);
  });

  test('the table is replaced atomically', async () => {
    proxy.setNames({ 'reviews.default.svc.cluster.local': '10.96.0.99' });
    try {
      assert.deepEqual(await resolver.resolve4('reviews'), ['10.96.0.99']);
      assert.deepEqual(await resolver.resolve4('api.example.com'), ['192.0.2.7'], 'no longer a mesh name: forwarded');
    } finally {
      proxy.setNames(TABLE);
    }
    assert.throws(() => proxy.setNames({ 'x.y': 'not-an-ip' }), /not an IP/);
  });

  test('a silent upstream gives SERVFAIL within the timeout; overload gives SERVFAIL at once', async () => {
    const slow = new DnsProxy({ port: 0, upstreams: [{ address: '127.0.0.1', port: blackhole.address().port }], upstreamTimeoutMs: 200, maxInflight: 1 });
    await slow.start();
    try {
      const t0 = Date.now();
      const first = udpAsk(slow.port, 'one.outside.test', RecordType.A, 1);
      const second = await udpAsk(slow.port, 'two.outside.test', RecordType.A, 2);
      assert.equal(second.rcode, RCode.SERVFAIL);
      assert.ok(Date.now() - t0 < 150, 'overload is answered without waiting');
      const r = await first;
      assert.equal(r.rcode, RCode.SERVFAIL);
      assert.ok(Date.now() - t0 < 2000);
      assert.equal(slow.stats.overloaded, 1);
      assert.equal(slow.stats.upstreamFailures, 1);
      // Still a mesh name server while upstream is down.
      slow.setNames({ 'reviews.default.svc.cluster.local': '10.96.0.20' });
      assert.deepEqual((await udpAsk(slow.port, 'reviews', RecordType.A)).answers.map((a) => a.data), ['10.96.0.20']);
    } finally {
      await slow.close();
    }
  });

  test('malformed queries get FORMERR, responses are never answered', async () => {
    const bad = Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0x05, 0x61]);
    const r = await proxy.handle(bad, 'udp');
    assert.ok(r);
    assert.equal(parseMessage(r).rcode, RCode.FORMERR);
    const q = parseMessage(buildQuery('reviews', RecordType.A));
    assert.equal(await proxy.handle(buildResponse(q, {}), 'udp'), undefined);
  });

  test('with dig', { skip: which('dig') ? false : 'dig not installed (Debian: apt-get install -y dnsutils)' }, async () => {
    const dig = (...args: string[]) =>
      new Promise<string>((resolve, reject) =>
        execFile('dig', ['@127.0.0.1', '-p', String(proxy.port), '+short', '+time=2', '+tries=1', ...args], { timeout: 10_000 }, (err, out) => (err ? reject(err) : resolve(out.trim()))),
      );
    assert.equal(await dig('reviews.default.svc.cluster.local'), '10.96.0.20');
    assert.equal(await dig('+tcp', 'reviews'), '10.96.0.20');
    assert.equal(await dig('AAAA', 'reviews.default'), 'fd00::20');
    assert.equal(await dig('elsewhere.test'), '192.0.2.7');
  });

  test('upstreams are read from resolv.conf', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mesh-dns-'));
    writeFileSync(join(dir, 'resolv.conf'), 'nameserver 10.0.0.2\nnameserver fd00::53\nnameserver bogus\nsearch x\n');
    assert.deepEqual(upstreamsFromResolvConf(join(dir, 'resolv.conf')), [{ address: '10.0.0.2', port: 53 }, { address: 'fd00::53', port: 53 }]);
    assert.deepEqual(upstreamsFromResolvConf(join(dir, 'missing')), []);
  });
});
