// Filter chain matching as Envoy does it. The criteria are tried in Envoy's
// order - destination port, destination IP, server name, transport
// protocol, application protocols, direct source IP, source type, source
// IP, source port - and at each step only the most specific chains that
// match survive (an exact SNI beats `*.example.com`, which beats `*.com`,
// which beats a chain without server_names; a longer prefix beats a shorter
// one). A step where nothing matches and no chain leaves the criterion unset
// ends in no match: like Envoy, there is no backtracking to a less specific
// earlier choice. Then the listener's default_filter_chain applies.

import { isIP } from 'node:net';
import { configError } from './errors.ts';
import type { AcceptedConnection } from './filters/listener/listener-filter.ts';

type D = Record<string, any>;

interface CidrRange {
  readonly family: 4 | 6;
  readonly bits: bigint;
  readonly prefixLen: number;
}

/** A decoded filter_chain_match. Empty lists and 0 mean "any". */
export interface FilterChainMatch {
  readonly destinationPort: number;
  readonly prefixRanges: readonly CidrRange[];
  readonly serverNames: readonly string[];
  readonly transportProtocol: string;
  readonly applicationProtocols: readonly string[];
  readonly directSourcePrefixRanges: readonly CidrRange[];
  readonly sourceType: 'ANY' | 'SAME_IP_OR_LOOPBACK' | 'EXTERNAL';
  readonly sourcePrefixRanges: readonly CidrRange[];
  readonly sourcePorts: readonly number[];
}

function ipBits(ip: string): { family: 4 | 6; bits: bigint } | undefined {
  if (ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4) ip = ip.slice(7);
  const v = isIP(ip);
  if (v === 4) return { family: 4, bits: ip.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n) };
  if (v === 6) {
    const [head, tail = ''] = ip.split('::');
    const h = head ? head.split(':') : [];
    const t = ip.includes('::') ? (tail ? tail.split(':') : []) : [];
    const groups = ip.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
    return { family: 6, bits: groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g || '0', 16)), 0n) };
  }
  return undefined;
}

function cidr(r: D, path: string): CidrRange {
  const ip = ipBits(r.address_prefix ?? '');
  if (!ip) throw configError(`${path}.address_prefix`, `"${r.address_prefix}" is not an IP address`);
  const max = ip.family === 4 ? 32 : 128;
  const prefixLen = r.prefix_len ? r.prefix_len.value : 0;
  if (prefixLen > max) throw configError(`${path}.prefix_len`, `${prefixLen} is more than ${max}`);
  const shift = BigInt(max - prefixLen);
  return { family: ip.family, bits: (ip.bits >> shift) << shift, prefixLen };
}

/** Longest matching prefix + 1, 0 when no ranges are configured, -1 when none matches. */
function cidrScore(ranges: readonly CidrRange[], ip: string): number {
  if (ranges.length === 0) return 0;
  const a = ipBits(ip);
  let best = -1;
  if (!a) return best;
  for (const r of ranges) {
    if (r.family !== a.family) continue;
    const shift = BigInt((r.family === 4 ? 32 : 128) - r.prefixLen);
    if ((a.bits >> shift) << shift === r.bits && r.prefixLen + 1 > best) best = r.prefixLen + 1;
  }
  return best;
}

function serverNameScore(names: readonly string[], sni: string): number {
  if (names.length === 0) return 0;
  if (!sni) return -1;
  let best = -1;
  for (const n of names) {
    if (n === sni) return 100_000;
    // `*.example.com` and `.example.com` (Envoy accepts both) match any deeper name.
    const suffix = n.startsWith('*.') ? n.slice(1) : n.startsWith('.') ? n : undefined;
    if (suffix && sni.endsWith(suffix) && sni.length > suffix.length && suffix.length > best) best = suffix.length;
  }
  return best;
}

function isLocalSource(conn: AcceptedConnection): boolean {
  const r = conn.remoteAddress.startsWith('::ffff:') ? conn.remoteAddress.slice(7) : conn.remoteAddress;
  return r === '::1' || r.startsWith('127.') || r === conn.localAddress || r === conn.socket.localAddress;
}

type Criterion = (m: FilterChainMatch, c: AcceptedConnection) => number;

/** Envoy's order; each returns -1 (no match), 0 (criterion unset) or a specificity > 0. */
const CRITERIA: readonly Criterion[] = [
  (m, c) => (m.destinationPort === 0 ? 0 : m.destinationPort === c.localPort ? 1 : -1),
  (m, c) => cidrScore(m.prefixRanges, c.localAddress),
  (m, c) => serverNameScore(m.serverNames, c.serverName),
  (m, c) => (m.transportProtocol === '' ? 0 : m.transportProtocol === (c.transportProtocol || 'raw_buffer') ? 1 : -1),
  (m, c) => (m.applicationProtocols.length === 0 ? 0 : m.applicationProtocols.some((p) => c.applicationProtocols.includes(p)) ? 1 : -1),
  (m, c) => cidrScore(m.directSourcePrefixRanges, c.remoteAddress),
  (m, c) => (m.sourceType === 'ANY' ? 0 : (m.sourceType === 'SAME_IP_OR_LOOPBACK') === isLocalSource(c) ? 1 : -1),
  (m, c) => cidrScore(m.sourcePrefixRanges, c.remoteAddress),
  (m, c) => (m.sourcePorts.length === 0 ? 0 : m.sourcePorts.includes(c.remotePort) ? 1 : -1),
];

export function decodeFilterChainMatch(m: D | null | undefined, path: string): FilterChainMatch {
  const x: D = m ?? {};
  const ranges = (list: D[] | undefined, p: string): CidrRange[] => (list ?? []).map((r, i) => cidr(r, `${path}.${p}[${i}]`));
  return {
    destinationPort: x.destination_port ? x.destination_port.value : 0,
    prefixRanges: ranges(x.prefix_ranges, 'prefix_ranges'),
    serverNames: (x.server_names ?? []).map((n: string) => n.toLowerCase()),
    transportProtocol: x.transport_protocol ?? '',
    applicationProtocols: x.application_protocols ?? [],
    directSourcePrefixRanges: ranges(x.direct_source_prefix_ranges, 'direct_source_prefix_ranges'),
    sourceType: x.source_type === 'SAME_IP_OR_LOOPBACK' || x.source_type === 'EXTERNAL' ? x.source_type : 'ANY',
    sourcePrefixRanges: ranges(x.source_prefix_ranges, 'source_prefix_ranges'),
    sourcePorts: x.source_ports ?? [],
  };
}

/** Picks among `chains` (each with its decoded match) for a connection; undefined when none applies. */
export function selectFilterChain<T extends { readonly match: FilterChainMatch }>(chains: readonly T[], conn: AcceptedConnection): T | undefined {
  let candidates = chains;
  for (const criterion of CRITERIA) {
    if (candidates.length === 0) return undefined;
    let best = -1;
    const scores = candidates.map((ch) => {
      const s = criterion(ch.match, conn);
      if (s > best) best = s;
      return s;
    });
    if (best < 0) return undefined;
    if (scores.every((s) => s === best)) continue;
    candidates = candidates.filter((_, i) => scores[i] === best);
  }
  return candidates[0];
}

/** A canonical form for Envoy's "multiple filter chains with the same matching rules" check. */
export function matchKey(m: FilterChainMatch): string {
  const r = (l: readonly CidrRange[]): string => l.map((x) => `${x.bits}/${x.prefixLen}`).sort().join(',');
  return [m.destinationPort, r(m.prefixRanges), [...m.serverNames].sort().join(','), m.transportProtocol, [...m.applicationProtocols].sort().join(','), r(m.directSourcePrefixRanges), m.sourceType, r(m.sourcePrefixRanges), [...m.sourcePorts].sort().join(',')].join('|');
}

/** Whether any chain needs SNI/ALPN/transport detection (a tls_inspector) to be reachable. */
export function needsTlsInspection(matches: readonly FilterChainMatch[]): boolean {
  return matches.some((m) => m.serverNames.length > 0 || m.transportProtocol === 'tls');
}
