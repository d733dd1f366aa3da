// Envoy's filter chain match order, table-driven: each criterion narrows to
// the most specific chains that match, with no backtracking; plus the
// tls_inspector's ClientHello parser on a real ClientHello from node:tls.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { connect } from 'node:tls';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { decodeFilterChainMatch, selectFilterChain } from '../../src/proxy/filter-chain-match.ts';
import type { AcceptedConnection } from '../../src/proxy/filters/listener/listener-filter.ts';
import { parseClientHello } from '../../src/proxy/filters/listener/tls-inspector/tls-inspector.ts';

type D = Record<string, unknown>;
const cidr = (address_prefix: string, prefix_len: number): D => ({ address_prefix, prefix_len: { value: prefix_len } });

function conn(c: Partial<AcceptedConnection>): AcceptedConnection {
  return { socket: { localAddress: '127.0.0.1' } as Socket, remoteAddress: '10.0.0.9', remotePort: 40000, localAddress: '10.0.0.1', localPort: 8080, localAddressRestored: false, transportProtocol: '', serverName: '', applicationProtocols: [], ...c };
}

function pick(matches: Array<[string, D | undefined]>, c: AcceptedConnection): string | undefined {
  const chains = matches.map(([name, m]) => ({ name, match: decodeFilterChainMatch(m, name) }));
  return selectFilterChain(chains, c)?.name;
}

const cases: Array<{ name: string; chains: Array<[string, D | undefined]>; conn: Partial<AcceptedConnection>; want: string | undefined }> = [
  { name: 'a chain without a match takes everything', chains: [['any', undefined]], conn: {}, want: 'any' },
  { name: 'destination port beats no port', chains: [['any', undefined], ['p8080', { destination_port: { value: 8080 } }]], conn: {}, want: 'p8080' },
  { name: 'no backtracking: the port chain is chosen, then transport fails', chains: [['raw', { transport_protocol: 'raw_buffer' }], ['p8080-tls', { destination_port: { value: 8080 }, transport_protocol: 'tls' }]], conn: {}, want: undefined },
  { name: 'longest destination prefix wins', chains: [['wide', { prefix_ranges: [cidr('10.0.0.0', 8)] }], ['narrow', { prefix_ranges: [cidr('10.0.0.0', 24)] }]], conn: {}, want: 'narrow' },
  { name: 'exact SNI beats the longest wildcard', chains: [['star', { server_names: ['*.example.com'] }], ['exact', { server_names: ['a.example.com'] }], ['none', undefined]], conn: { serverName: 'a.example.com' }, want: 'exact' },
  { name: 'longer wildcard beats shorter', chains: [['com', { server_names: ['*.com'] }], ['example', { server_names: ['*.example.com'] }]], conn: { serverName: 'b.example.com' }, want: 'example' },
  { name: 'no SNI skips server_names chains', chains: [['named', { server_names: ['a.example.com'] }], ['none', undefined]], conn: {}, want: 'none' },
  { name: 'transport raw_buffer is the default', chains: [['tls', { transport_protocol: 'tls' }], ['raw', { transport_protocol: 'raw_buffer' }]], conn: {}, want: 'raw' },
  { name: 'ALPN istio picks the mTLS chain', chains: [['mtls', { transport_protocol: 'tls', application_protocols: ['istio-peer-exchange', 'istio'] }], ['tls', { transport_protocol: 'tls' }]], conn: { transportProtocol: 'tls', applicationProtocols: ['istio', 'h2'] }, want: 'mtls' },
  { name: 'ALPN falls back to the chain without application_protocols', chains: [['mtls', { application_protocols: ['istio'] }], ['tls', undefined]], conn: { applicationProtocols: ['h2'] }, want: 'tls' },
  { name: 'source prefix: most specific wins', chains: [['ten', { source_prefix_ranges: [cidr('10.0.0.0', 8)] }], ['host', { source_prefix_ranges: [cidr('10.0.0.9', 32)] }]], conn: {}, want: 'host' },
  { name: 'source type SAME_IP_OR_LOOPBACK', chains: [['local', { source_type: 'SAME_IP_OR_LOOPBACK' }], ['any', undefined]], conn: { remoteAddress: '127.0.0.1' }, want: 'local' },
  { name: 'source port', chains: [['p', { source_ports: [40000] }], ['any', undefined]], conn: {}, want: 'p' },
  { name: 'IPv6 prefixes', chains: [['v6', { prefix_ranges: [cidr('fd00::', 8)] }], ['v4', { prefix_ranges: [cidr('0.0.0.0', 0)] }]], conn: { localAddress: 'fd00::5' }, want: 'v6' },
];

for (const c of cases) {
  test(`filter chain match: ${c.name}`, () => {
    assert.equal(pick(c.chains, conn(c.conn)), c.want);
  });
}

test('parseClientHello reads SNI and ALPN from a real ClientHello, split at any byte', async () => {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const got = once(server, 'connection');
  const client = connect({ host: '127.0.0.1', port: (server.address() as { port: number }).port, servername: 'Reviews.Default.svc', ALPNProtocols: ['istio', 'h2'] });
  client.on('error', () => undefined);
  const [s] = (await got) as [Socket];
  const [hello] = (await once(s, 'data')) as [Buffer];
  assert.deepEqual(parseClientHello(hello), { serverName: 'reviews.default.svc', alpn: ['istio', 'h2'] });
  for (const cut of [1, 3, 5, 40, hello.length - 1]) assert.equal(parseClientHello(hello.subarray(0, cut)), 'need_more', `cut at ${cut}`);
  assert.equal(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n')), 'not_tls');
  client.destroy();
  s.destroy();
  server.close();
});
