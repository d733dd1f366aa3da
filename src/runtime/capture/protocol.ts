// Messages between the runtime outside a captured workload's namespace
// (captured-run.ts, root, on the host) and its sidecar inside it
// (sidecar-main.ts, uid/gid 1337), over Node's IPC channel, which survives
// `ip netns exec` and `setpriv` (both exec, keeping fds and environment).

import type { NameTable, Upstream } from '../../agent/capture/index.ts';
import type { MeshServiceInfo, RuntimeInfo } from '../sidecar/control-plane-client.ts';
import type { SidecarStatus } from '../sidecar/sidecar.ts';

export interface InnerSidecarOptions {
  /** `router`: a gateway in its own namespace (no capture rules, no app). */
  readonly type: 'sidecar' | 'router';
  readonly service: string;
  readonly version?: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly servicePort?: number;
  readonly labels?: Readonly<Record<string, string>>;
  readonly workloadName: string;
  readonly locality?: string;
  readonly configTimeoutMs?: number;
  /** Workload certificate lifetime asked of Citadel (`mesh run --cert-ttl`). */
  readonly certTtlSeconds?: number;
}

export type ToSidecar =
  | { type: 'init'; options: InnerSidecarOptions; address: string; info: RuntimeInfo; services: readonly MeshServiceInfo[]; names: NameTable; dnsUpstreams: readonly Upstream[]; dnsPort: number }
  | { type: 'token'; id: number; token?: string; error?: string }
  | { type: 'names'; names: NameTable }
  | { type: 'register'; port?: number }
  | { type: 'unregister' }
  | { type: 'stop' };

export type FromSidecar =
  | { type: 'ready'; status: SidecarStatus }
  | { type: 'token'; id: number }
  | { type: 'failed'; error: string };
