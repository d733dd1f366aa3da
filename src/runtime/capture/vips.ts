// Per-service virtual IPs for capture mode, from 240.240.0.0/16 (Istio's DNS
// auto-allocation range): class E, never routed anywhere, and outside any
// mesh bridge subnet, so a VIP can only mean "the sidecar, please". The app
// resolves a name to its VIP through the DNS proxy; iptables sends the
// connection to 15001; the proxy routes it by its original destination (and
// Host header). Deterministic (a hash of the hostname, probing on
// collision), so processes that allocate independently agree.

import { createHash } from 'node:crypto';

export const VIP_BASE = '240.240.0.0';
export const VIP_RANGE = '240.240.0.0/16';

function ipOf(n: number): string {
  return `240.240.${(n >>> 8) & 255}.${n & 255}`;
}

export function isVip(address: string): boolean {
  return address.startsWith('240.240.');
}

/**
 * VIPs for `hostnames`, keeping the ones in `existing` (hostname -> VIP) and
 * never reusing a taken one. Hosts 1..65534 of the /16.
 */
export function assignVips(hostnames: readonly string[], existing: ReadonlyMap<string, string> = new Map()): Map<string, string> {
  const out = new Map(existing);
  const taken = new Set(existing.values());
  for (const h of [...hostnames].sort()) {
    if (out.has(h)) continue;
    let n = (createHash('sha256').update(h).digest().readUInt16BE(0) % 65534) + 1;
    for (let i = 0; i < 65534 && taken.has(ipOf(n)); i++) n = (n % 65534) + 1;
    if (taken.has(ipOf(n))) throw new Error(`no free VIP left in ${VIP_RANGE}`);
    out.set(h, ipOf(n));
    taken.add(ipOf(n));
  }
  return out;
}

/**
 * The DNS proxy's table: every service's hostname -> its addresses, else its
 * VIP (the proxy adds the short forms). Only names under the cluster domain
 * get an assigned VIP: an external host declared without addresses
 * (`httpbin.org`, resolution DNS) stays out of the table and resolves
 * upstream to its real address, as in Istio without DNS auto-allocation. Its
 * listener matches by port (Host header, SNI), and the proxy's own lookup of
 * it (STRICT_DNS) must get the real address, not a VIP that leads nowhere.
 */
export function nameTable(services: readonly { hostname: string; addresses?: readonly string[] }[], vips: ReadonlyMap<string, string>, domain = 'cluster.local'): Record<string, string[]> {
  const table: Record<string, string[]> = {};
  for (const s of services) {
    const addrs = (s.addresses ?? []).filter((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a) && a !== '0.0.0.0');
    const vip = s.hostname.endsWith(`.${domain}`) ? vips.get(s.hostname) : undefined;
    const list = addrs.length > 0 ? addrs : vip ? [vip] : [];
    if (list.length > 0) table[s.hostname] = list;
  }
  return table;
}
