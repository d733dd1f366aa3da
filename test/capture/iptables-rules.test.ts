// The capture rules as text: Istio's chains, order and exclusions.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hostAddress, inSubnet, parseCidr, parseResolvConf, renderCaptureRules, renderRemoval, renderResolvConf, searchDomains, splitRule } from '../../src/agent/capture/index.ts';

const lines = (text: string) => text.trim().split('\n');
const idx = (all: string[], rule: string) => {
  const i = all.indexOf(rule);
  assert.ok(i >= 0, `missing rule: ${rule}\n${all.join('\n')}`);
  return i;
};

test('default rules: Istio chains, redirects to 15001/15006, DNS to 15053, uid and gid 1337 excluded', () => {
  const r = lines(renderCaptureRules());
  assert.equal(r[0], '*nat');
  assert.equal(r.at(-1), 'COMMIT');
  for (const chain of ['ISTIO_INBOUND', 'ISTIO_IN_REDIRECT', 'ISTIO_OUTPUT', 'ISTIO_REDIRECT']) idx(r, `:${chain} - [0:0]`);
  idx(r, '-A PREROUTING -p tcp -m comment --comment mesh-capture -j ISTIO_INBOUND');
  idx(r, '-A OUTPUT -p tcp -m comment --comment mesh-capture -j ISTIO_OUTPUT');
  idx(r, '-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006');
  idx(r, '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001');
  for (const p of [15000, 15001, 15006, 15020, 15021, 15090]) {
    assert.ok(idx(r, `-A ISTIO_INBOUND -p tcp --dport ${p} -j RETURN`) < idx(r, '-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT'));
  }
  // The proxy's own traffic returns before the catch-all redirect; DNS from the proxy is not captured.
  const catchAll = idx(r, '-A ISTIO_OUTPUT -j ISTIO_REDIRECT');
  assert.ok(idx(r, '-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN') < catchAll);
  assert.ok(idx(r, '-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN') < catchAll);
  assert.ok(idx(r, '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN') < catchAll);
  assert.ok(idx(r, '-A ISTIO_OUTPUT -o lo -p tcp ! --dport 53 -m owner ! --uid-owner 1337 -j RETURN') < catchAll);
  idx(r, '-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp ! --dport 53 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT');
  const udpUid = idx(r, '-A OUTPUT -p udp --dport 53 -m owner --uid-owner 1337 -m comment --comment mesh-capture -j RETURN');
  const udpRedirect = idx(r, '-A OUTPUT -p udp --dport 53 -m comment --comment mesh-capture -j REDIRECT --to-ports 15053');
  assert.ok(udpUid < udpRedirect);
  assert.ok(idx(r, '-A ISTIO_OUTPUT -p tcp --dport 53 -j REDIRECT --to-ports 15053') < idx(r, '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN'));
});

test('options: uid/gid, ports, include/exclude lists, DNS servers, no DNS capture', () => {
  const text = renderCaptureRules({
    proxyUid: 2000,
    proxyGid: 3000,
    inboundPort: 16006,
    outboundPort: 16001,
    dnsPort: 16053,
    includeInboundPorts: [9080, 15020],
    excludeInboundPorts: [22],
    excludeOutboundPorts: [5432],
    includeOutboundCidrs: ['10.0.0.0/8', 'fd00::/8'],
    excludeOutboundCidrs: ['10.1.2.3'],
    dnsServers: ['10.96.0.10'],
  });
  const r = lines(text);
  assert.doesNotMatch(text, /1337/);
  idx(r, '-A ISTIO_OUTPUT -m owner --uid-owner 2000 -j RETURN');
  idx(r, '-A ISTIO_OUTPUT -m owner --gid-owner 3000 -j RETURN');
  idx(r, '-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 16006');
  idx(r, '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 16001');
  idx(r, '-A ISTIO_INBOUND -p tcp --dport 9080 -j ISTIO_IN_REDIRECT');
  assert.ok(!r.includes('-A ISTIO_INBOUND -p tcp --dport 15020 -j ISTIO_IN_REDIRECT'), "Istio's ports stay excluded even when listed");
  assert.ok(!r.includes('-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT'));
  idx(r, '-A ISTIO_INBOUND -p tcp --dport 22 -j RETURN');
  assert.ok(idx(r, '-A ISTIO_OUTPUT -p tcp --dport 5432 -j RETURN') < idx(r, '-A ISTIO_OUTPUT -m owner --uid-owner 2000 -j RETURN'));
  assert.ok(idx(r, '-A ISTIO_OUTPUT -d 10.1.2.3/32 -j RETURN') < idx(r, '-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT'));
  assert.ok(!text.includes('fd00::/8'), 'IPv6 CIDRs go to the IPv6 rules only');
  assert.ok(!r.includes('-A ISTIO_OUTPUT -j ISTIO_REDIRECT'));
  idx(r, '-A OUTPUT -d 10.96.0.10/32 -p udp --dport 53 -m comment --comment mesh-capture -j REDIRECT --to-ports 16053');
  idx(r, '-A ISTIO_OUTPUT -d 10.96.0.10/32 -p tcp --dport 53 -j REDIRECT --to-ports 16053');

  const noDns = renderCaptureRules({ captureDns: false });
  assert.doesNotMatch(noDns, /--dport 53|15053/);
  const noInbound = renderCaptureRules({ includeInboundPorts: [] });
  assert.doesNotMatch(noInbound, /PREROUTING|-j ISTIO_IN_REDIRECT/);
});

test('IPv6 rules use ::1 and ::6', () => {
  const r = renderCaptureRules({ includeOutboundCidrs: ['10.0.0.0/8', 'fd00::/8'] }, 6);
  assert.match(r, /-A ISTIO_OUTPUT -d ::1\/128 -j RETURN/);
  assert.match(r, /-A ISTIO_OUTPUT -s ::6\/128 -o lo -j RETURN/);
  assert.match(r, /-A ISTIO_OUTPUT -d fd00::\/8 -j ISTIO_REDIRECT/);
  assert.doesNotMatch(r, /10\.0\.0\.0/);
});

test('bad values are rejected with the field named', () => {
  assert.throws(() => renderCaptureRules({ inboundPort: 70000 }), /inboundPort/);
  assert.throws(() => renderCaptureRules({ proxyUid: -1 }), /proxyUid/);
  assert.throws(() => renderCaptureRules({ excludeOutboundCidrs: ['10.0.0.0/8 -j ACCEPT'] }), /excludeOutboundCidrs/);
});

test('removal text deletes exactly our built-in chain rules and the ISTIO chains', () => {
  const saved = [
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':ISTIO_INBOUND - [0:0]',
    ':ISTIO_OUTPUT - [0:0]',
    ':OTHER - [0:0]',
    '-A PREROUTING -p tcp -m comment --comment mesh-capture -j ISTIO_INBOUND',
    '-A OUTPUT -p udp -m udp --dport 53 -m comment --comment mesh-capture -j REDIRECT --to-ports 15053',
    '-A OUTPUT -d 10.0.0.1/32 -j OTHER',
    '-A ISTIO_OUTPUT -j RETURN',
    'COMMIT',
  ].join('\n');
  assert.deepEqual(lines(renderRemoval(saved)), [
    '*nat',
    '-D PREROUTING -p tcp -m comment --comment mesh-capture -j ISTIO_INBOUND',
    '-D OUTPUT -p udp -m udp --dport 53 -m comment --comment mesh-capture -j REDIRECT --to-ports 15053',
    '-F ISTIO_INBOUND',
    '-F ISTIO_OUTPUT',
    '-X ISTIO_INBOUND',
    '-X ISTIO_OUTPUT',
    'COMMIT',
  ]);
  assert.equal(renderRemoval('*nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -j OTHER\nCOMMIT\n'), '');
});

test('subnets, resolv.conf and rule splitting', () => {
  assert.deepEqual(parseCidr('10.213.7.9/24'), { network: (10 << 24 | 213 << 16 | 7 << 8) >>> 0, prefixLength: 24 });
  assert.equal(hostAddress('10.213.7.0/24', 1), '10.213.7.1');
  assert.throws(() => hostAddress('10.213.7.0/24', 255), /outside/);
  assert.ok(inSubnet('10.213.7.200', '10.213.7.0/24'));
  assert.ok(!inSubnet('10.213.8.1', '10.213.7.0/24'));
  assert.throws(() => parseCidr('10.0.0.0'), /CIDR/);
  assert.deepEqual(searchDomains('bookinfo'), ['bookinfo.svc.cluster.local', 'svc.cluster.local', 'cluster.local']);
  const text = renderResolvConf({ nameservers: ['127.0.0.1'], search: searchDomains('default'), ndots: 5 });
  assert.deepEqual(parseResolvConf(text), { nameservers: ['127.0.0.1'], search: ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'], ndots: 5 });
  assert.deepEqual(parseResolvConf('# c\nnameserver 10.0.0.2 # x\nnameserver ::1\ndomain example.org\n').nameservers, ['10.0.0.2', '::1']);
  assert.deepEqual(splitRule('POSTROUTING -s 10.1.0.0/24 -m comment --comment "mesh-capture:mesh-br1 x" -j MASQUERADE'), ['POSTROUTING', '-s', '10.1.0.0/24', '-m', 'comment', '--comment', 'mesh-capture:mesh-br1 x', '-j', 'MASQUERADE']);
});
