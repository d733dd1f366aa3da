// Real traffic capture: a private bridge and two workload namespaces (A with
// Istio's iptables rules, B plain), connections between them, SO_ORIGINAL_DST
// read through koffi, and DNS captured to the DNS proxy. Every address used is
// in a random 10.x subnet that exists only on the test's own bridge and
// namespaces; everything is removed in `after`, even when a test fails.
// Skips (with the reason) when not root or when iproute2/iptables are absent
// (Debian: apt-get install -y iproute2 iptables dnsutils).

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  applyCaptureRules,
  captureSupport,
  createWorkloadNamespace,
  enableEgress,
  HOST_RULE_COMMENT_PREFIX,
  removeHostRules,
  ensureBridge,
  execInNamespace,
  hostAddress,
  inSubnet,
  listNamespaces,
  PROXY_UID,
  removeCaptureRules,
  runCommand as run,
  saveRules,
  searchDomains,
  setupCapturedWorkload,
  spawnInNamespace,
  teardownByPrefix,
  findExecutable as which,
} from '../../src/agent/capture/index.ts';
import type { BridgeInfo, WorkloadNamespace } from '../../src/agent/capture/index.ts';
import { freeSubnet } from '../helpers/free-subnet.ts';

const support = captureSupport();
const skip = support.ok ? false : `traffic capture unavailable: ${support.reason}`;
const FIXTURE = fileURLToPath(new URL('./fixtures/ns-peer.ts', import.meta.url));
const tag = randomBytes(3).toString('hex');
const NS_PREFIX = `mesh-tcap${tag}-`;
const BRIDGE = `mesh-br${tag}`;

const children: ChildProcess[] = [];

function startIn(ns: string, args: string[]): Promise<ChildProcess> {
  const child = spawnInNamespace(ns, process.execPath, ['--disable-warning=ExperimentalWarning', FIXTURE, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`${args[0]} in ${ns} not ready: ${err}`)), 10_000);
    child.stderr?.on('data', (d) => (err += d));
    child.stdout?.on('data', (d) => {
      out += d;
      if (out.includes('ready')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${args[0]} in ${ns} exited ${code}: ${err}`));
    });
  });
}

async function inNs(ns: string, args: string[]): Promise<Record<string, unknown>> {
  const r = await execInNamespace(ns, process.execPath, ['--disable-warning=ExperimentalWarning', FIXTURE, ...args], { timeoutMs: 10_000 });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
}

describe('traffic capture in network namespaces', { skip, timeout: 50_000 }, () => {
  let bridge: BridgeInfo;
  let a: WorkloadNamespace;
  let b: WorkloadNamespace;
  let vip: string;

  before(async () => {
    const subnet = await freeSubnet();
    bridge = await ensureBridge({ bridge: BRIDGE, subnet });
    a = await createWorkloadNamespace({ name: `${NS_PREFIX}a`, bridge, resolv: { nameservers: ['127.0.0.1'], search: searchDomains('default'), ndots: 5 } });
    b = await createWorkloadNamespace({ name: `${NS_PREFIX}b`, bridge });
    vip = hostAddress(subnet, 200); // never assigned to anything: only a DNS answer
    await applyCaptureRules(a.name, { dnsServers: 'all' });
    await startIn(b.name, ['serve', '9080']);
    await startIn(a.name, ['serve', '15001', '15006', '15020']);
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    const report = await teardownByPrefix({ namespacePrefix: NS_PREFIX, bridgePrefix: BRIDGE });
    const left = (await listNamespaces()).filter((n) => n.startsWith(NS_PREFIX));
    assert.deepEqual(left, [], `namespaces left behind: ${left.join(', ')}`);
    assert.equal((await run('ip', ['link', 'show', 'dev', BRIDGE])).code === 0, false, 'bridge left behind');
    assert.ok(report.namespaces.length === 2 || report.namespaces.length === 0);
  });

  test('the namespace gets an address on the bridge, loopback up and a default route', async () => {
    assert.ok(inSubnet(a.address, bridge.subnet) && a.address !== b.address);
    const addr = await execInNamespace(a.name, 'ip', ['-4', '-o', 'addr', 'show']);
    assert.match(addr.stdout, /lo\s+inet 127\.0\.0\.1\/8/);
    assert.match(addr.stdout, new RegExp(`eth0\\s+inet ${a.address.replaceAll('.', '\\.')}/24`));
    const route = await execInNamespace(a.name, 'ip', ['route', 'show', 'default']);
    assert.match(route.stdout, new RegExp(`default via ${bridge.gateway.replaceAll('.', '\\.')} dev eth0`));
    const resolv = await execInNamespace(a.name, 'cat', ['/etc/resolv.conf']);
    assert.match(resolv.stdout, /^nameserver 127\.0\.0\.1$/m);
    assert.match(resolv.stdout, /^search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local$/m);
  });

  test("the rules are Istio's chains, visible with iptables-save in the namespace", async () => {
    const saved = await saveRules(a.name);
    for (const chain of ['ISTIO_INBOUND', 'ISTIO_IN_REDIRECT', 'ISTIO_OUTPUT', 'ISTIO_REDIRECT']) assert.match(saved, new RegExp(`^:${chain} `, 'm'));
    assert.match(saved, /-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001/);
    assert.match(saved, /-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006/);
    // Re-applying replaces rather than stacks.
    await applyCaptureRules(a.name, { dnsServers: 'all' });
    const again = await saveRules(a.name);
    assert.equal(again.match(/-j ISTIO_OUTPUT/g)?.length, 1);
    // The host's own tables are untouched.
    const host = await run('iptables-save', ['-t', 'nat']);
    assert.doesNotMatch(host.stdout, /ISTIO_/);
  });

  test('outbound: the app connecting to 10.x:9080 lands on 15001, and SO_ORIGINAL_DST gives 10.x:9080', async () => {
    const r = await inNs(a.name, ['connect', b.address, '9080']);
    assert.equal(r.listener, 15001);
    assert.deepEqual(r.original, { address: b.address, port: 9080 });
  });

  test('the proxy uid (and gid) is not captured: it reaches the real destination', async () => {
    const byUid = await inNs(a.name, ['connect', b.address, '9080', `${PROXY_UID}:${PROXY_UID}`]);
    assert.equal(byUid.listener, 9080);
    assert.equal(byUid.local, `${b.address}:9080`);
    const byGid = await inNs(a.name, ['connect', b.address, '9080', `0:${PROXY_UID}`]);
    assert.equal(byGid.listener, 9080);
  });

  test('inbound: a peer connecting to the workload on 9080 lands on 15006 with the original destination', async () => {
    const r = await inNs(b.name, ['connect', a.address, '9080']);
    assert.equal(r.listener, 15006);
    assert.deepEqual(r.original, { address: a.address, port: 9080 });
  });

  test("Istio's own ports are not captured inbound, nor loopback, but the proxy's hairpin to its pod IP is", async () => {
    assert.equal((await inNs(b.name, ['connect', a.address, '15020'])).listener, 15020);
    assert.equal((await inNs(a.name, ['connect', '127.0.0.1', '15020'])).listener, 15020);
    assert.equal((await inNs(a.name, ['connect', a.address, '15020'])).listener, 15020, 'app -> own pod IP over lo is not captured');
    const hairpin = await inNs(a.name, ['connect', a.address, '9080', `${PROXY_UID}:${PROXY_UID}`]);
    assert.equal(hairpin.listener, 15006);
    assert.deepEqual(hairpin.original, { address: a.address, port: 9080 });
    // Without a redirect the original destination is the local address (conntrack's tuple, un-NATed).
    assert.deepEqual((await inNs(a.name, ['connect', '127.0.0.1', '15020'])).original, { address: '127.0.0.1', port: 15020 });
  });

  test('DNS from the app goes to the DNS proxy: mesh names locally, others to the upstream', async () => {
    const upstreamAnswer = hostAddress(bridge.subnet, 201);
    await startIn(b.name, ['fake-upstream', '53', upstreamAnswer]);
    const table = { 'reviews.default.svc.cluster.local': [vip], 'api.example.com': [vip] };
    await startIn(a.name, ['dns', b.address, '53', String(PROXY_UID), 'default', JSON.stringify(table)]);
    // getaddrinfo with the namespace's resolv.conf (search list, ndots:5).
    assert.deepEqual(await inNs(a.name, ['lookup', 'reviews']), { addresses: [vip] });
    assert.deepEqual(await inNs(a.name, ['lookup', 'reviews.default']), { addresses: [vip] });
    assert.deepEqual(await inNs(a.name, ['lookup', 'reviews.default.svc.cluster.local']), { addresses: [vip] });
    assert.deepEqual(await inNs(a.name, ['lookup', 'api.example.com']), { addresses: [vip] });
    assert.deepEqual(await inNs(a.name, ['lookup', 'ratings.default.svc.cluster.local.']), { error: 'ENOTFOUND' });
    // Forwarded by the proxy (running as the proxy uid, so not captured again).
    assert.deepEqual(await inNs(a.name, ['lookup', 'outside.test.']), { addresses: [upstreamAnswer] });
  });

  test('DNS with dig: udp and tcp, to any server address, all captured', { skip: which('dig') ? false : 'dig not installed (Debian: apt-get install -y dnsutils)' }, async () => {
    const dig = async (...args: string[]) => {
      const r = await execInNamespace(a.name, 'dig', ['+short', '+time=2', '+tries=1', ...args], { timeoutMs: 10_000 });
      return r.stdout.trim();
    };
    assert.equal(await dig('reviews.default.svc.cluster.local'), vip);
    assert.equal(await dig('+tcp', 'reviews.default.svc.cluster.local'), vip);
    assert.equal(await dig('+search', 'reviews'), vip);
    assert.equal(await dig(`@${b.address}`, 'reviews.default.svc.cluster.local'), vip, 'a query to another server is captured too');
    assert.equal(await dig('AAAA', 'reviews.default.svc.cluster.local'), '', 'AAAA: NODATA');
    assert.equal(await dig('+tcp', 'outside.test'), hostAddress(bridge.subnet, 201));
  });

  test('IPv6: ip6tables rules redirect, and IP6T_SO_ORIGINAL_DST gives the original [addr]:port', async () => {
    // Written in canonical form (no leading zeros in a group), as the kernel hands it back.
    const group = (Number.parseInt(tag.slice(0, 4), 16) | 0x1000).toString(16);
    const v6a = `fd00:${group}::a`;
    const v6b = `fd00:${group}::b`;
    await execInNamespace(a.name, 'ip', ['addr', 'add', `${v6a}/64`, 'dev', 'eth0', 'nodad']);
    await execInNamespace(b.name, 'ip', ['addr', 'add', `${v6b}/64`, 'dev', 'eth0', 'nodad']);
    await applyCaptureRules(a.name, { dnsServers: 'all', ipv6: true });
    assert.match(await saveRules(a.name, 6), /-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001/);
    await startIn(a.name, ['serve6', '15001']);
    const r = await inNs(a.name, ['connect', v6b, '9080']);
    assert.equal(r.listener, 15001);
    assert.deepEqual(r.original, { address: v6b, port: 9080 });
  });

  test('removing the rules restores plain routing', async () => {
    await removeCaptureRules(a.name, { ipv6: true });
    assert.doesNotMatch(await saveRules(a.name, 6), /ISTIO_|mesh-capture/);
    assert.doesNotMatch(await saveRules(a.name), /ISTIO_|mesh-capture/);
    const r = await inNs(a.name, ['connect', b.address, '9080']);
    assert.equal(r.listener, 9080);
    await removeCaptureRules(a.name); // idempotent
  });

  test('setupCapturedWorkload: one call for namespace + rules; commands run as the proxy user; teardown', async () => {
    const w = await setupCapturedWorkload({ id: `tcap${tag}-w`, bridgeSuffix: tag, subnet: bridge.subnet, kubeNamespace: 'bookinfo' });
    try {
      assert.equal(w.namespace, `${NS_PREFIX}w`);
      assert.ok(inSubnet(w.address, bridge.subnet) && ![a.address, b.address].includes(w.address), 'a fresh address');
      assert.match(w.rules, /ISTIO_REDIRECT/);
      assert.equal((await w.exec('id', ['-u'], { user: w.proxyUser })).stdout.trim(), String(PROXY_UID));
      assert.equal((await w.exec('id', ['-g'], { user: w.proxyUser })).stdout.trim(), String(PROXY_UID));
      assert.match((await w.exec('cat', ['/etc/resolv.conf'])).stdout, /search bookinfo\.svc\.cluster\.local /);
      assert.match(await saveRules(w.namespace), /-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006/);
    } finally {
      await w.teardown();
    }
    assert.ok(!(await listNamespaces()).includes(w.namespace));
    await w.teardown();
  });

  test('egress: host NAT/forward rules carry the bridge comment and are removed exactly', async () => {
    const comment = `${HOST_RULE_COMMENT_PREFIX}${BRIDGE}`;
    const count = async () => ((await run('iptables-save', [])).stdout.match(new RegExp(comment, 'g')) ?? []).length;
    const before = (await run('iptables-save', [])).stdout.split('\n').filter((l) => l.startsWith('-A')).length;
    try {
      await enableEgress(bridge);
      await enableEgress(bridge); // idempotent
      assert.equal(await count(), 3);
      assert.match((await run('iptables-save', ['-t', 'nat'])).stdout, new RegExp(`-A POSTROUTING -s ${bridge.subnet.replaceAll('.', '\\.')} ! -o ${BRIDGE} .*${comment}.* -j MASQUERADE`));
    } finally {
      assert.equal(await removeHostRules(comment), 3);
    }
    assert.equal(await count(), 0);
    assert.equal((await run('iptables-save', [])).stdout.split('\n').filter((l) => l.startsWith('-A')).length, before, 'host rules as they were');
  });

  test('teardown by prefix is idempotent and leaves nothing', async () => {
    const extra = await createWorkloadNamespace({ name: `${NS_PREFIX}c`, bridge });
    assert.ok(existsSync(`/etc/netns/${extra.name}/resolv.conf`));
    await teardownByPrefix({ namespacePrefix: `${NS_PREFIX}c` });
    assert.ok(!existsSync(`/etc/netns/${extra.name}`));
    assert.ok(!(await listNamespaces()).includes(extra.name));
    assert.notEqual((await run('ip', ['link', 'show', 'dev', extra.hostVeth])).code, 0, 'host veth removed');
    await teardownByPrefix({ namespacePrefix: `${NS_PREFIX}c` });
  });
});
