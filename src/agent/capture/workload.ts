// One call for the runtime: a workload namespace on the mesh bridge with
// Istio's capture rules installed, and its teardown.

import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { applyCaptureRules, PROXY_GID, PROXY_UID } from './iptables.ts';
import type { CaptureRulesOptions } from './iptables.ts';
import {
  BRIDGE_PREFIX,
  createWorkloadNamespace,
  DEFAULT_SUBNET,
  deleteWorkloadNamespace,
  enableEgress,
  ensureBridge,
  execInNamespace,
  NAMESPACE_PREFIX,
  searchDomains,
  spawnInNamespace,
} from './netns.ts';
import type { BridgeInfo, RunAs } from './netns.ts';
import type { RunOptions, RunResult } from './exec.ts';

export interface CapturedWorkloadOptions {
  /** Short id: the namespace is `mesh-<id>`. */
  id: string;
  /** Bridge suffix: the bridge is `mesh-br<suffix>` (default "0"). */
  bridgeSuffix?: string;
  subnet?: string;
  address?: string;
  /** The workload's Kubernetes-style namespace (search domains), default "default". */
  kubeNamespace?: string;
  domain?: string;
  /** Capture rules (defaults: Istio's). `false` sets up the network only. */
  rules?: (CaptureRulesOptions & { ipv6?: boolean }) | false;
  /** NAT the subnet out of the host (host rules commented mesh-capture:<bridge>). */
  egress?: boolean;
}

export interface CapturedWorkload {
  namespace: string;
  address: string;
  gateway: string;
  bridge: BridgeInfo;
  /** The iptables-restore text installed (IPv4), or '' when rules were off. */
  rules: string;
  proxyUser: RunAs;
  warnings: string[];
  spawn(command: string, args?: readonly string[], options?: SpawnOptions & { user?: RunAs }): ChildProcess;
  exec(command: string, args?: readonly string[], options?: RunOptions & { user?: RunAs }): Promise<RunResult>;
  /** Removes the namespace (and with it its veth and rules) and /etc/netns/<ns>; the bridge stays for other workloads. */
  teardown(): Promise<void>;
}

export async function setupCapturedWorkload(opts: CapturedWorkloadOptions): Promise<CapturedWorkload> {
  const bridge = await ensureBridge({ bridge: `${BRIDGE_PREFIX}${opts.bridgeSuffix ?? '0'}`, subnet: opts.subnet ?? DEFAULT_SUBNET });
  const warnings: string[] = [];
  if (opts.egress) {
    const w = await enableEgress(bridge);
    if (w.warning) warnings.push(w.warning);
  }
  const ns = await createWorkloadNamespace({
    name: `${NAMESPACE_PREFIX}${opts.id}`,
    bridge,
    address: opts.address,
    resolv: { nameservers: ['127.0.0.1'], search: searchDomains(opts.kubeNamespace ?? 'default', opts.domain), ndots: 5 },
  });
  let rules = '';
  try {
    if (opts.rules !== false) rules = (await applyCaptureRules(ns.name, opts.rules ?? {}))[4];
  } catch (err) {
    await deleteWorkloadNamespace(ns.name).catch(() => undefined);
    throw err;
  }
  const r = opts.rules || {};
  return {
    namespace: ns.name,
    address: ns.address,
    gateway: ns.gateway,
    bridge,
    rules,
    proxyUser: { uid: r.proxyUid ?? PROXY_UID, gid: r.proxyGid ?? PROXY_GID },
    warnings,
    spawn: (command, args = [], options = {}) => spawnInNamespace(ns.name, command, args, options),
    exec: (command, args = [], options = {}) => execInNamespace(ns.name, command, args, options),
    teardown: () => deleteWorkloadNamespace(ns.name),
  };
}
