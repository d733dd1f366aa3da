// Istio's sidecar capture rules (what istio-iptables / istio-cni install in a
// pod's network namespace), rendered as iptables-restore text and applied
// inside a workload namespace. The chains and their order follow
// istio/tools/istio-iptables:
//
//   nat PREROUTING  -p tcp -> ISTIO_INBOUND -> (excluded ports RETURN) -> ISTIO_IN_REDIRECT -> REDIRECT :15006
//   nat OUTPUT      -p tcp -> ISTIO_OUTPUT  -> (proxy uid/gid, loopback, excluded) RETURN
//                                            -> ISTIO_REDIRECT -> REDIRECT :15001
//   nat OUTPUT      -p udp --dport 53 (not from the proxy, or from it to loopback) -> REDIRECT :15053 (the DNS proxy)
//
// Rules this library adds to the built-in chains carry the comment
// `mesh-capture`, so removal finds exactly them; the ISTIO_* chains are ours.

import { which } from './exec.ts';
import { execInNamespace } from './netns.ts';

/** Istio's proxy uid and gid (istio-proxy). */
export const PROXY_UID = 1337;
export const PROXY_GID = 1337;
export const INBOUND_CAPTURE_PORT = 15006;
export const OUTBOUND_CAPTURE_PORT = 15001;
export const DNS_CAPTURE_PORT = 15053;
/**
 * Inbound ports never redirected: admin 15000, outbound 15001, inbound 15006,
 * HBONE 15008, agent 15020, health 15021, Prometheus 15090.
 */
export const ISTIO_EXCLUDED_INBOUND_PORTS: readonly number[] = [15000, 15001, 15006, 15008, 15020, 15021, 15090];
export const RULE_COMMENT = 'mesh-capture';
/** Istio's inbound passthrough source address (the proxy binds it when it connects to the app). */
export const INBOUND_PASSTHROUGH_SOURCE = { 4: '127.0.0.6/32', 6: '::6/128' } as const;

export const ISTIO_CHAINS = ['ISTIO_INBOUND', 'ISTIO_IN_REDIRECT', 'ISTIO_OUTPUT', 'ISTIO_REDIRECT'] as const;

export interface CaptureRulesOptions {
  /** The sidecar's uid / gid; its own traffic is never captured (default 1337 / 1337). */
  proxyUid?: number;
  proxyGid?: number;
  inboundPort?: number;
  outboundPort?: number;
  dnsPort?: number;
  /** Inbound TCP ports to capture: '*' (default) or a list; an empty list disables inbound capture. */
  includeInboundPorts?: '*' | readonly number[];
  /** More inbound ports to leave alone (added to Istio's own). */
  excludeInboundPorts?: readonly number[];
  /** Outbound TCP ports to leave alone. */
  excludeOutboundPorts?: readonly number[];
  /** Outbound destinations to capture: '*' (default) or CIDRs; an empty list disables outbound capture. */
  includeOutboundCidrs?: '*' | readonly string[];
  excludeOutboundCidrs?: readonly string[];
  /** Redirect DNS (udp and tcp port 53) to the DNS proxy (default true). */
  captureDns?: boolean;
  /** DNS servers whose traffic is captured; 'all' (default) captures port 53 to any address. */
  dnsServers?: 'all' | readonly string[];
}

type Family = 4 | 6;

function port(n: number, what: string): string {
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${what}: ${n} is not a port`);
  return String(n);
}

function id(n: number, what: string): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`${what}: ${n} is not a uid/gid`);
  return String(n);
}

function cidr(c: string, family: Family, what: string): string | undefined {
  const v6 = c.includes(':');
  if ((family === 6) !== v6) return undefined; // belongs to the other family
  if (!/^[0-9A-Fa-f.:]+(\/\d{1,3})?$/.test(c)) throw new Error(`${what}: ${JSON.stringify(c)} is not an address or CIDR`);
  return c.includes('/') ? c : `${c}/${v6 ? 128 : 32}`;
}

/** The iptables-restore text for Istio's capture rules (IPv4 by default; family 6 for ip6tables-restore). */
export function renderCaptureRules(opts: CaptureRulesOptions = {}, family: Family = 4): string {
  const uid = id(opts.proxyUid ?? PROXY_UID, 'proxyUid');
  const gid = id(opts.proxyGid ?? PROXY_GID, 'proxyGid');
  const inPort = port(opts.inboundPort ?? INBOUND_CAPTURE_PORT, 'inboundPort');
  const outPort = port(opts.outboundPort ?? OUTBOUND_CAPTURE_PORT, 'outboundPort');
  const dnsPort = port(opts.dnsPort ?? DNS_CAPTURE_PORT, 'dnsPort');
  const includeIn = opts.includeInboundPorts ?? '*';
  const includeOut = opts.includeOutboundCidrs ?? '*';
  const captureDns = opts.captureDns ?? true;
  const dnsServers = opts.dnsServers ?? 'all';
  const loopback = family === 4 ? '127.0.0.1/32' : '::1/128';
  const c = ['-m', 'comment', '--comment', RULE_COMMENT].join(' ');
  const excludedIn = [...new Set([...ISTIO_EXCLUDED_INBOUND_PORTS, ...(opts.excludeInboundPorts ?? [])])];

  const lines: string[] = ['*nat'];
  for (const chain of ISTIO_CHAINS) lines.push(`:${chain} - [0:0]`);

  // Entry points from the built-in chains.
  const inboundOn = includeIn === '*' || includeIn.length > 0;
  if (inboundOn) lines.push(`-A PREROUTING -p tcp ${c} -j ISTIO_INBOUND`);
  lines.push(`-A OUTPUT -p tcp ${c} -j ISTIO_OUTPUT`);

  // DNS over UDP is handled in OUTPUT itself: the proxy's own (upstream) queries pass.
  const servers = dnsServers === 'all' ? undefined : dnsServers.map((s) => cidr(s, family, 'dnsServers')).filter((s): s is string => Boolean(s));
  if (captureDns) {
    // The namespace's resolv.conf names loopback (there is no cluster DNS): the
    // proxy's own lookups (STRICT_DNS clusters of DNS ServiceEntries) go to the
    // DNS proxy too, which forwards names outside the mesh upstream, as Envoy
    // asks kube-dns in Istio.
    lines.push(`-A OUTPUT -d ${loopback} -p udp --dport 53 -m owner --uid-owner ${uid} ${c} -j REDIRECT --to-ports ${dnsPort}`);
    lines.push(`-A OUTPUT -p udp --dport 53 -m owner --uid-owner ${uid} ${c} -j RETURN`);
    lines.push(`-A OUTPUT -p udp --dport 53 -m owner --gid-owner ${gid} ${c} -j RETURN`);
    if (servers === undefined) lines.push(`-A OUTPUT -p udp --dport 53 ${c} -j REDIRECT --to-ports ${dnsPort}`);
    else for (const s of servers) lines.push(`-A OUTPUT -d ${s} -p udp --dport 53 ${c} -j REDIRECT --to-ports ${dnsPort}`);
  }

  // Inbound.
  if (inboundOn) {
    for (const p of excludedIn) lines.push(`-A ISTIO_INBOUND -p tcp --dport ${port(p, 'excludeInboundPorts')} -j RETURN`);
    if (includeIn === '*') lines.push('-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT');
    else for (const p of includeIn) if (!excludedIn.includes(p)) lines.push(`-A ISTIO_INBOUND -p tcp --dport ${port(p, 'includeInboundPorts')} -j ISTIO_IN_REDIRECT`);
  }
  lines.push(`-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports ${inPort}`);

  // Outbound.
  for (const p of opts.excludeOutboundPorts ?? []) lines.push(`-A ISTIO_OUTPUT -p tcp --dport ${port(p, 'excludeOutboundPorts')} -j RETURN`);
  lines.push(`-A ISTIO_OUTPUT -s ${INBOUND_PASSTHROUGH_SOURCE[family]} -o lo -j RETURN`);
  const noDns = captureDns ? ' ! --dport 53' : '';
  for (const [kind, value] of [['uid', uid], ['gid', gid]] as const) {
    // The proxy calling its own pod IP (app -> proxy -> VIP -> this pod) goes
    // back through the inbound path; the app calling itself over lo does not.
    if (inboundOn) lines.push(`-A ISTIO_OUTPUT ! -d ${loopback} -o lo -p tcp${noDns} -m owner --${kind}-owner ${value} -j ISTIO_IN_REDIRECT`);
    lines.push(`-A ISTIO_OUTPUT -o lo -p tcp${noDns} -m owner ! --${kind}-owner ${value} -j RETURN`);
    // Never capture the proxy's own outbound traffic (no loops).
    lines.push(`-A ISTIO_OUTPUT -m owner --${kind}-owner ${value} -j RETURN`);
  }
  if (captureDns) {
    if (servers === undefined) lines.push(`-A ISTIO_OUTPUT -p tcp --dport 53 -j REDIRECT --to-ports ${dnsPort}`);
    else for (const s of servers) lines.push(`-A ISTIO_OUTPUT -d ${s} -p tcp --dport 53 -j REDIRECT --to-ports ${dnsPort}`);
  }
  lines.push(`-A ISTIO_OUTPUT -d ${loopback} -j RETURN`);
  for (const x of opts.excludeOutboundCidrs ?? []) {
    const v = cidr(x, family, 'excludeOutboundCidrs');
    if (v) lines.push(`-A ISTIO_OUTPUT -d ${v} -j RETURN`);
  }
  if (includeOut === '*') lines.push('-A ISTIO_OUTPUT -j ISTIO_REDIRECT');
  else
    for (const x of includeOut) {
      const v = cidr(x, family, 'includeOutboundCidrs');
      if (v) lines.push(`-A ISTIO_OUTPUT -d ${v} -j ISTIO_REDIRECT`);
    }
  lines.push(`-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports ${outPort}`);
  lines.push('COMMIT');
  return `${lines.join('\n')}\n`;
}

/**
 * The iptables-restore --noflush text that removes what renderCaptureRules
 * added, given the table's current iptables-save output: the commented rules
 * in the built-in chains and the ISTIO_* chains. Empty when nothing is there.
 */
export function renderRemoval(saved: string): string {
  const lines: string[] = [];
  const chains = new Set<string>();
  let table = '';
  for (const line of saved.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    if (table !== 'nat') continue;
    const decl = /^:(ISTIO_[A-Z_]+) /.exec(line);
    if (decl) chains.add(decl[1]);
    const m = /^-A (PREROUTING|OUTPUT|INPUT|POSTROUTING) (.*)$/.exec(line);
    if (m && (/--comment "?mesh-capture"?(\s|$)/.test(m[2]) || / -j ISTIO_[A-Z_]+(\s|$)/.test(` ${m[2]}`))) lines.push(`-D ${m[1]} ${m[2]}`);
  }
  if (!lines.length && !chains.size) return '';
  const out = ['*nat', ...lines];
  for (const ch of chains) out.push(`-F ${ch}`);
  for (const ch of chains) out.push(`-X ${ch}`);
  out.push('COMMIT');
  return `${out.join('\n')}\n`;
}

function tools(family: Family): { save: string; restore: string } {
  const prefix = family === 4 ? 'iptables' : 'ip6tables';
  return { save: which(`${prefix}-save`) ?? `${prefix}-save`, restore: which(`${prefix}-restore`) ?? `${prefix}-restore` };
}

async function nsChecked(namespace: string, command: string, args: string[], input?: string): Promise<string> {
  const r = await execInNamespace(namespace, command, args, { input, timeoutMs: 15_000 });
  if (r.code !== 0) throw new Error(`${command} in ${namespace} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/** Removes the capture rules from the namespace (idempotent). */
export async function removeCaptureRules(namespace: string, opts: { ipv6?: boolean } = {}): Promise<void> {
  for (const family of opts.ipv6 ? ([4, 6] as const) : ([4] as const)) {
    const t = tools(family);
    const saved = await nsChecked(namespace, t.save, ['-t', 'nat']);
    const text = renderRemoval(saved);
    if (text) await nsChecked(namespace, t.restore, ['--noflush'], text);
  }
}

/**
 * Installs the capture rules in the namespace with iptables-restore (after
 * removing any previous set, so re-applying replaces rather than stacks).
 * Returns the rules applied, by family.
 */
export async function applyCaptureRules(namespace: string, opts: CaptureRulesOptions & { ipv6?: boolean } = {}): Promise<{ 4: string; 6?: string }> {
  await removeCaptureRules(namespace, opts);
  const v4 = renderCaptureRules(opts, 4);
  await nsChecked(namespace, tools(4).restore, ['--noflush'], v4);
  if (!opts.ipv6) return { 4: v4 };
  const v6 = renderCaptureRules(opts, 6);
  await nsChecked(namespace, tools(6).restore, ['--noflush'], v6);
  return { 4: v4, 6: v6 };
}

/** `iptables-save` of the namespace's nat table (for `mesh` diagnostics and tests). */
export function saveRules(namespace: string, family: Family = 4): Promise<string> {
  return nsChecked(namespace, tools(family).save, ['-t', 'nat']);
}
