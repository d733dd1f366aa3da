// Workload network namespaces, the way a Kubernetes pod gets one: a named
// namespace (`ip netns add mesh-<id>`), a veth pair whose host end is
// enslaved to a mesh bridge, one address per namespace from a private
// subnet, loopback up, a default route via the bridge, and
// /etc/netns/<ns>/resolv.conf (which `ip netns exec` bind-mounts over
// /etc/resolv.conf) pointing at the sidecar's DNS proxy. Teardown is
// idempotent and works by name prefix, so a crashed run is cleaned up by the
// next one.

import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { run, runChecked, spawn, which } from './exec.ts';
import type { RunOptions, RunResult } from './exec.ts';

/** Namespaces this library creates are named `mesh-<id>`. */
export const NAMESPACE_PREFIX = 'mesh-';
/** Bridges are named `mesh-br<suffix>` (suffix up to 8 characters: IFNAMSIZ is 16). */
export const BRIDGE_PREFIX = 'mesh-br';
/** The default workload subnet: private, and chosen away from common Docker/Kubernetes ranges. */
export const DEFAULT_SUBNET = '10.213.0.0/24';
/** Comment on the host iptables rules added for egress (so teardown finds exactly them). */
export const HOST_RULE_COMMENT_PREFIX = 'mesh-capture:';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export interface Cidr {
  network: number; // host order, unsigned
  prefixLength: number;
}

export function parseCidr(cidr: string): Cidr {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cidr);
  if (!m) throw new Error(`subnet ${JSON.stringify(cidr)}: expected an IPv4 CIDR like 10.213.0.0/24`);
  const octets = m.slice(1, 5).map(Number);
  const prefixLength = Number(m[5]);
  if (octets.some((o) => o > 255) || prefixLength < 8 || prefixLength > 30) throw new Error(`subnet ${cidr}: octets must be 0-255 and the prefix 8-30`);
  const ip = ipToInt(octets.join('.'));
  const mask = prefixLength === 0 ? 0 : (~0 << (32 - prefixLength)) >>> 0;
  return { network: (ip & mask) >>> 0, prefixLength };
}

export function ipToInt(ip: string): number {
  const p = ip.split('.').map(Number);
  if (p.length !== 4 || p.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) throw new Error(`${JSON.stringify(ip)} is not an IPv4 address`);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** The n-th host address of a subnet (1 is the bridge/gateway). */
export function hostAddress(subnet: string, n: number): string {
  const c = parseCidr(subnet);
  const size = 2 ** (32 - c.prefixLength);
  if (n < 1 || n >= size - 1) throw new Error(`host ${n} is outside ${subnet}`);
  return intToIp(c.network + n);
}

export function inSubnet(ip: string, subnet: string): boolean {
  const c = parseCidr(subnet);
  const mask = (~0 << (32 - c.prefixLength)) >>> 0;
  return ((ipToInt(ip) & mask) >>> 0) === c.network;
}

function ipTool(): string {
  return which('ip') ?? 'ip';
}

function checkName(kind: string, name: string, max: number): void {
  if (!NAME_RE.test(name) || name.length > max) throw new Error(`${kind} name ${JSON.stringify(name)}: use letters, digits, '-', '_' or '.', at most ${max} characters`);
}

/** The host-side veth name for a namespace: short and stable (`mv` + 10 hex of a hash). */
export function hostVethName(namespace: string): string {
  return `mv${createHash('sha256').update(namespace).digest('hex').slice(0, 10)}`;
}

async function linkExists(name: string, netns?: string): Promise<boolean> {
  const args = netns ? ['-n', netns, 'link', 'show', 'dev', name] : ['link', 'show', 'dev', name];
  return (await run(ipTool(), args)).code === 0;
}

export async function listNamespaces(): Promise<string[]> {
  const out = await runChecked(ipTool(), ['netns', 'list']);
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0])
    .filter((n): n is string => Boolean(n));
}

export interface BridgeOptions {
  /** Full bridge name, `mesh-br<suffix>`. */
  bridge: string;
  /** IPv4 CIDR; the bridge takes the first host address (the namespaces' gateway). */
  subnet?: string;
}

export interface BridgeInfo {
  bridge: string;
  subnet: string;
  gateway: string;
  prefixLength: number;
}

/** Creates (or finds) the mesh bridge on the host, with the subnet's first address. */
export async function ensureBridge(opts: BridgeOptions): Promise<BridgeInfo> {
  const subnet = opts.subnet ?? DEFAULT_SUBNET;
  checkName('bridge', opts.bridge, 15);
  if (!opts.bridge.startsWith(BRIDGE_PREFIX)) throw new Error(`bridge name ${opts.bridge} must start with ${BRIDGE_PREFIX}`);
  const { prefixLength } = parseCidr(subnet);
  const gateway = hostAddress(subnet, 1);
  const ip = ipTool();
  if (!(await linkExists(opts.bridge))) {
    await runChecked(ip, ['link', 'add', opts.bridge, 'type', 'bridge']);
  }
  const addrs = await runChecked(ip, ['-4', '-o', 'addr', 'show', 'dev', opts.bridge]);
  if (!addrs.includes(` ${gateway}/${prefixLength} `)) {
    await runChecked(ip, ['addr', 'add', `${gateway}/${prefixLength}`, 'dev', opts.bridge]);
  }
  await runChecked(ip, ['link', 'set', opts.bridge, 'up']);
  return { bridge: opts.bridge, subnet, gateway, prefixLength };
}

export interface ResolvConf {
  nameservers: string[];
  search: string[];
  ndots?: number;
}

/** The search domains a pod in `namespace` gets (Kubernetes' order). */
export function searchDomains(namespace: string, domain = 'cluster.local'): string[] {
  return [`${namespace}.svc.${domain}`, `svc.${domain}`, domain];
}

export function renderResolvConf(conf: ResolvConf): string {
  const lines = ['# written by mesh (src/agent/capture): queries go to the sidecar DNS proxy'];
  for (const ns of conf.nameservers) lines.push(`nameserver ${ns}`);
  if (conf.search.length) lines.push(`search ${conf.search.join(' ')}`);
  lines.push(`options ndots:${conf.ndots ?? 5}`);
  return `${lines.join('\n')}\n`;
}

/** Reads nameservers and search domains from a resolv.conf text. */
export function parseResolvConf(text: string): ResolvConf {
  const conf: ResolvConf = { nameservers: [], search: [] };
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const [key, ...rest] = line.split(/\s+/);
    if (key === 'nameserver' && rest[0]) conf.nameservers.push(rest[0]);
    else if ((key === 'search' || key === 'domain') && rest.length) conf.search = rest;
    else if (key === 'options') {
      for (const o of rest) if (o.startsWith('ndots:')) conf.ndots = Number(o.slice(6));
    }
  }
  return conf;
}

export interface WorkloadNamespaceOptions {
  /** Namespace name; must start with `mesh-` (at most 40 characters). */
  name: string;
  bridge: BridgeInfo;
  /** The workload's address inside the bridge subnet; allocated when omitted. */
  address?: string;
  /** resolv.conf for the namespace; default: nameserver 127.0.0.1 (redirected to the DNS proxy), no search. */
  resolv?: ResolvConf;
  /** Also write /etc/netns/<ns>/hosts (mapping localhost and the workload's name to its address). */
  hostname?: string;
}

export interface WorkloadNamespace {
  name: string;
  address: string;
  gateway: string;
  bridge: string;
  hostVeth: string;
}

/** Addresses taken on a bridge: the gateway plus each mesh namespace's eth0 in the subnet. */
export async function usedAddresses(bridge: BridgeInfo): Promise<Set<string>> {
  const used = new Set<string>([bridge.gateway]);
  for (const ns of await listNamespaces()) {
    if (!ns.startsWith(NAMESPACE_PREFIX)) continue;
    const r = await run(ipTool(), ['-n', ns, '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
    for (const m of r.stdout.matchAll(/inet (\d+\.\d+\.\d+\.\d+)\//g)) if (inSubnet(m[1], bridge.subnet)) used.add(m[1]);
  }
  return used;
}

async function allocateAddress(bridge: BridgeInfo): Promise<string> {
  const used = await usedAddresses(bridge);
  const size = 2 ** (32 - bridge.prefixLength);
  for (let n = 2; n < size - 1; n++) {
    const a = hostAddress(bridge.subnet, n);
    if (!used.has(a)) return a;
  }
  throw new Error(`no free address left in ${bridge.subnet} on ${bridge.bridge}`);
}

/**
 * Creates a workload namespace joined to the bridge. On failure everything
 * created so far is removed before the error is thrown.
 */
export async function createWorkloadNamespace(opts: WorkloadNamespaceOptions): Promise<WorkloadNamespace> {
  checkName('namespace', opts.name, 40);
  if (!opts.name.startsWith(NAMESPACE_PREFIX)) throw new Error(`namespace name ${opts.name} must start with ${NAMESPACE_PREFIX}`);
  const ip = ipTool();
  const { bridge } = opts;
  const address = opts.address ?? (await allocateAddress(bridge));
  if (!inSubnet(address, bridge.subnet) || address === bridge.gateway) throw new Error(`address ${address} is not a host address of ${bridge.subnet} (the gateway is ${bridge.gateway})`);
  const hostVeth = hostVethName(opts.name);
  const peer = `${hostVeth}p`;
  try {
    await runChecked(ip, ['netns', 'add', opts.name]);
    await runChecked(ip, ['link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', peer, 'netns', opts.name]);
    await runChecked(ip, ['link', 'set', hostVeth, 'master', bridge.bridge]);
    await runChecked(ip, ['link', 'set', hostVeth, 'up']);
    const inNs = (args: string[]) => runChecked(ip, ['-n', opts.name, ...args]);
    await inNs(['link', 'set', 'lo', 'up']);
    await inNs(['link', 'set', peer, 'name', 'eth0']);
    await inNs(['addr', 'add', `${address}/${bridge.prefixLength}`, 'dev', 'eth0']);
    await inNs(['link', 'set', 'eth0', 'up']);
    await inNs(['route', 'add', 'default', 'via', bridge.gateway, 'dev', 'eth0']);
    const dir = `/etc/netns/${opts.name}`;
    await mkdir(dir, { recursive: true });
    await writeFile(`${dir}/resolv.conf`, renderResolvConf(opts.resolv ?? { nameservers: ['127.0.0.1'], search: [] }));
    if (opts.hostname) {
      await writeFile(`${dir}/hosts`, `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${address}\t${opts.hostname}\n`);
    }
  } catch (err) {
    await deleteWorkloadNamespace(opts.name).catch(() => undefined);
    throw err;
  }
  return { name: opts.name, address, gateway: bridge.gateway, bridge: bridge.bridge, hostVeth };
}

/** Removes a workload namespace, its veth pair and /etc/netns/<ns>. Idempotent. */
export async function deleteWorkloadNamespace(name: string): Promise<void> {
  checkName('namespace', name, 40);
  const ip = ipTool();
  if ((await listNamespaces()).includes(name)) {
    await runChecked(ip, ['netns', 'del', name]);
  }
  // Deleting the namespace destroys its veth end and with it the pair; this
  // covers a half-created pair whose peer never reached the namespace.
  const hv = hostVethName(name);
  if (await linkExists(hv)) await run(ip, ['link', 'del', hv]);
  await rm(`/etc/netns/${name}`, { recursive: true, force: true });
}

/** Deletes the bridge (after its namespaces). Idempotent. */
export async function deleteBridge(bridge: string): Promise<void> {
  checkName('bridge', bridge, 15);
  if (await linkExists(bridge)) await runChecked(ipTool(), ['link', 'del', bridge]);
}

export interface TeardownReport {
  namespaces: string[];
  bridges: string[];
  hostRules: number;
}

/**
 * Removes every namespace whose name starts with `namespacePrefix`, every
 * bridge starting with `bridgePrefix`, and every host iptables rule whose
 * comment starts with `mesh-capture:<bridgePrefix>`. Prefixes must be at least
 * as specific as `mesh-` / `mesh-br`.
 */
export async function teardownByPrefix(opts: { namespacePrefix: string; bridgePrefix?: string }): Promise<TeardownReport> {
  if (!opts.namespacePrefix.startsWith(NAMESPACE_PREFIX)) throw new Error(`namespace prefix must start with ${NAMESPACE_PREFIX}`);
  if (opts.bridgePrefix !== undefined && !opts.bridgePrefix.startsWith(BRIDGE_PREFIX)) throw new Error(`bridge prefix must start with ${BRIDGE_PREFIX}`);
  const report: TeardownReport = { namespaces: [], bridges: [], hostRules: 0 };
  for (const ns of await listNamespaces()) {
    if (!ns.startsWith(opts.namespacePrefix)) continue;
    await deleteWorkloadNamespace(ns);
    report.namespaces.push(ns);
  }
  if (opts.bridgePrefix !== undefined) {
    report.hostRules = await removeHostRules(`${HOST_RULE_COMMENT_PREFIX}${opts.bridgePrefix}`);
    const out = await runChecked(ipTool(), ['-o', 'link', 'show', 'type', 'bridge']);
    for (const m of out.matchAll(/^\d+:\s+([^:@\s]+)[:@]/gm)) {
      if (m[1].startsWith(opts.bridgePrefix)) {
        await deleteBridge(m[1]);
        report.bridges.push(m[1]);
      }
    }
  }
  return report;
}

// ---------------------------------------------------------------------------
// Egress (optional): lets workloads reach beyond the bridge (for instance the
// DNS proxy's upstream) through NAT on the host. Adds only rules commented
// `mesh-capture:<bridge>`; the kernel's ip_forward must already be 1.

function hostRuleSpecs(bridge: BridgeInfo): { table: string; chain: string; rule: string[] }[] {
  const comment = ['-m', 'comment', '--comment', `${HOST_RULE_COMMENT_PREFIX}${bridge.bridge}`];
  const net = `${intToIp(parseCidr(bridge.subnet).network)}/${bridge.prefixLength}`;
  return [
    { table: 'nat', chain: 'POSTROUTING', rule: ['-s', net, '!', '-o', bridge.bridge, ...comment, '-j', 'MASQUERADE'] },
    { table: 'filter', chain: 'FORWARD', rule: ['-i', bridge.bridge, ...comment, '-j', 'ACCEPT'] },
    { table: 'filter', chain: 'FORWARD', rule: ['-o', bridge.bridge, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', ...comment, '-j', 'ACCEPT'] },
  ];
}

/** Adds host NAT/forward rules for the bridge subnet. Returns a warning when ip_forward is off. */
export async function enableEgress(bridge: BridgeInfo): Promise<{ warning?: string }> {
  const ipt = which('iptables') ?? 'iptables';
  for (const r of hostRuleSpecs(bridge)) {
    const exists = await run(ipt, ['-w', '5', '-t', r.table, '-C', r.chain, ...r.rule]);
    if (exists.code !== 0) await runChecked(ipt, ['-w', '5', '-t', r.table, '-I', r.chain, '1', ...r.rule]);
  }
  const fwd = (await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8').catch(() => '0')).trim();
  return fwd === '1' ? {} : { warning: 'net.ipv4.ip_forward is 0 on the host: workloads cannot reach beyond the bridge until it is 1 (sysctl -w net.ipv4.ip_forward=1)' };
}

/** Removes the host rules whose comment starts with `commentPrefix`. Returns how many. */
export async function removeHostRules(commentPrefix: string): Promise<number> {
  const save = which('iptables-save');
  const ipt = which('iptables');
  if (!save || !ipt) return 0;
  let removed = 0;
  for (const table of ['nat', 'filter']) {
    const out = await run(save, ['-t', table]);
    if (out.code !== 0) continue;
    for (const line of out.stdout.split('\n')) {
      if (!line.startsWith('-A ') || !(line.includes(`--comment ${commentPrefix}`) || line.includes(`--comment "${commentPrefix}`))) continue;
      const args = splitRule(line.slice(3));
      const r = await run(ipt, ['-w', '5', '-t', table, '-D', ...args]);
      if (r.code === 0) removed++;
    }
  }
  return removed;
}

/** Splits an iptables-save rule line into arguments (handles double quotes). */
export function splitRule(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]);
  return out;
}

// ---------------------------------------------------------------------------
// Running things inside a namespace.

/** Who a command inside the namespace runs as (the sidecar: 1337/1337, Istio's istio-proxy). */
export interface RunAs {
  uid: number;
  gid: number;
}

/**
 * The argv that runs `command args...` inside the namespace, optionally as
 * another user. `ip netns exec` must itself run as root (it calls setns), so
 * the switch happens after it, with util-linux's setpriv.
 */
export function netnsArgv(namespace: string, command: string, args: readonly string[] = [], user?: RunAs): { command: string; args: string[] } {
  checkName('namespace', namespace, 40);
  const drop = user ? [which('setpriv') ?? 'setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--'] : [];
  return { command: ipTool(), args: ['netns', 'exec', namespace, ...drop, command, ...args] };
}

/** Spawns a long-running process inside the namespace (the sidecar, which can then start the app as its child). */
export function spawnInNamespace(namespace: string, command: string, args: readonly string[] = [], options: SpawnOptions & { user?: RunAs } = {}): ChildProcess {
  const { user, ...spawnOptions } = options;
  const argv = netnsArgv(namespace, command, args, user);
  return spawn(argv.command, argv.args, spawnOptions);
}

/** Runs a short command inside the namespace, bounded by a timeout. */
export function execInNamespace(namespace: string, command: string, args: readonly string[] = [], opts: RunOptions & { user?: RunAs } = {}): Promise<RunResult> {
  const argv = netnsArgv(namespace, command, args, opts.user);
  return run(argv.command, argv.args, opts);
}

export interface CaptureSupport {
  ok: boolean;
  /** Why capture cannot run here (not root, missing tools), for a clear skip or fallback message. */
  reason?: string;
  missing: string[];
}

/** Whether this host can run namespace capture: Linux, root, iproute2 and iptables. */
export function captureSupport(tools: readonly string[] = ['ip', 'iptables', 'iptables-restore', 'iptables-save']): CaptureSupport {
  if (process.platform !== 'linux') return { ok: false, reason: `traffic capture needs Linux (this is ${process.platform})`, missing: [] };
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return { ok: false, reason: 'traffic capture needs root (network namespaces and iptables)', missing: [] };
  const missing = tools.filter((t) => !which(t));
  if (missing.length) return { ok: false, reason: `missing tools: ${missing.join(', ')} (Debian: apt-get install -y iproute2 iptables)`, missing };
  return { ok: true, missing: [] };
}
