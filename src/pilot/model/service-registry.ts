// The platform-adapter interface: every source of services and workloads
// (local config + live registration, etcd, Kubernetes) implements it, and an
// aggregate merges them. One conformance suite (test/pilot/registry-conformance)
// runs against every adapter.

import type { Service, ServiceEndpoint, WorkloadInstance } from './service.ts';

/** What changed in a registry; Pilot decides from it whether a full push or the endpoint fast path is needed. */
export interface RegistryEvent {
  /** `services`: the set of services or their ports/addresses changed (full push). `endpoints`: only endpoints of these hosts changed (EDS fast path). */
  readonly kind: 'services' | 'endpoints';
  /** Hostnames affected. */
  readonly hostnames: readonly string[];
}

/**
 * Contract:
 * - `services()`, `endpoints()` and `workloads()` are synchronous reads of the
 *   adapter's current state, cheap enough to call on every push; the arrays
 *   are immutable (a change produces new arrays).
 * - `onChange` listeners are called after the state changed, never during
 *   `run()` before it resolves; they must not throw.
 * - `run()` resolves once the initial state is loaded (so the first push is
 *   complete); `stop()` releases timers, watches and connections.
 */
export interface ServiceRegistry {
  readonly name: string;
  services(): readonly Service[];
  /** Endpoints of one service hostname (all ports), healthy or not; Pilot filters by health. */
  endpoints(hostname: string): readonly ServiceEndpoint[];
  workloads(): readonly WorkloadInstance[];
  onChange(listener: (event: RegistryEvent) => void): () => void;
  run(): Promise<void>;
  stop(): Promise<void>;
}
