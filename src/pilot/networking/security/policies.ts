// Which security policies apply to a sidecar, with Istio's scoping: a
// policy in the root namespace without a selector covers the mesh; with a
// selector, matching workloads in every namespace; a policy elsewhere covers
// its namespace (no selector) or the matching workloads there. targetRef
// policies bind to gateways and waypoints, never to sidecars.
// PeerAuthentication resolves to one mode per workload port with Istio's
// precedence: port-level > workload > namespace > mesh, UNSET inherits,
// the oldest policy wins a tie, and the default is PERMISSIVE.

import type { ConfigObject } from '../../../api/index.ts';
import type { AuthorizationPolicySpec } from '../../../api/kinds/security/authorization-policy.ts';
import type { PeerAuthenticationSpec } from '../../../api/kinds/security/peer-authentication.ts';
import type { RequestAuthenticationSpec } from '../../../api/kinds/security/request-authentication.ts';
import type { ProxyNode } from '../../model/index.ts';
import type { PushContext } from '../../push-context.ts';
import { labelsMatch } from '../hosts.ts';

export const AUTHORIZATION_POLICY_TYPE = 'security.istio.io/v1/AuthorizationPolicy';
export const PEER_AUTHENTICATION_TYPE = 'security.istio.io/v1/PeerAuthentication';
export const REQUEST_AUTHENTICATION_TYPE = 'security.istio.io/v1/RequestAuthentication';

export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

interface Targeted {
  selector?: { matchLabels?: Record<string, string> };
  targetRef?: unknown;
  targetRefs?: unknown[];
}

function hasSelector(spec: Targeted): boolean {
  return Object.keys(spec.selector?.matchLabels ?? {}).length > 0;
}

/** Istio's policy scoping for a sidecar workload. */
export function appliesTo(obj: ConfigObject<Targeted>, proxy: ProxyNode, rootNamespace: string): boolean {
  const spec = obj.spec ?? {};
  if (spec.targetRef !== undefined || (spec.targetRefs?.length ?? 0) > 0) return false;
  const ns = obj.metadata.namespace ?? '';
  if (ns !== proxy.namespace && ns !== rootNamespace) return false;
  if (!hasSelector(spec)) return true;
  return labelsMatch(spec.selector!.matchLabels!, proxy.labels);
}

function byAge(a: ConfigObject, b: ConfigObject): number {
  const ta = Date.parse(a.metadata.creationTimestamp ?? '') || 0;
  const tb = Date.parse(b.metadata.creationTimestamp ?? '') || 0;
  if (ta !== tb) return ta - tb;
  const ka = `${a.metadata.namespace ?? ''}/${a.metadata.name}`;
  const kb = `${b.metadata.namespace ?? ''}/${b.metadata.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

function objectsOf<S>(push: PushContext, type: string): ConfigObject<S>[] {
  return push.snapshot.objects(type) as ConfigObject<S>[];
}

export function authorizationPoliciesFor(push: PushContext, proxy: ProxyNode): ConfigObject<AuthorizationPolicySpec>[] {
  return objectsOf<AuthorizationPolicySpec>(push, AUTHORIZATION_POLICY_TYPE).filter((o) => appliesTo(o as ConfigObject<Targeted>, proxy, push.mesh.rootNamespace)).sort(byAge);
}

export function requestAuthenticationsFor(push: PushContext, proxy: ProxyNode): ConfigObject<RequestAuthenticationSpec>[] {
  return objectsOf<RequestAuthenticationSpec>(push, REQUEST_AUTHENTICATION_TYPE).filter((o) => appliesTo(o as ConfigObject<Targeted>, proxy, push.mesh.rootNamespace)).sort(byAge);
}

export interface PeerAuthnPolicy {
  /** The workload-level mode (ports without their own), after inheritance. */
  readonly mode: MtlsMode;
  /** Port-level modes from the workload policy, after inheritance. */
  readonly ports: ReadonlyMap<number, MtlsMode>;
}

type Mode = PeerAuthenticationSpec['mtls'] extends infer M ? (M extends { mode?: infer X } ? X : never) : never;

function resolved(mode: Mode | undefined, parent: MtlsMode): MtlsMode {
  return mode === undefined || mode === 'UNSET' ? parent : mode;
}

/** The effective PeerAuthentication of a workload. */
export function peerAuthenticationFor(push: PushContext, proxy: ProxyNode): PeerAuthnPolicy {
  const root = push.mesh.rootNamespace;
  const all = objectsOf<PeerAuthenticationSpec>(push, PEER_AUTHENTICATION_TYPE).slice().sort(byAge);
  const mesh = all.find((o) => o.metadata.namespace === root && !hasSelector(o.spec));
  const namespace = proxy.namespace === root ? undefined : all.find((o) => o.metadata.namespace === proxy.namespace && !hasSelector(o.spec));
  const workload = all.find((o) => o.metadata.namespace === proxy.namespace && hasSelector(o.spec) && labelsMatch(o.spec.selector!.matchLabels!, proxy.labels));
  let mode: MtlsMode = resolved(mesh?.spec.mtls?.mode, 'PERMISSIVE');
  mode = resolved(namespace?.spec.mtls?.mode, mode);
  mode = resolved(workload?.spec.mtls?.mode, mode);
  const ports = new Map<number, MtlsMode>();
  for (const [port, m] of Object.entries(workload?.spec.portLevelMtls ?? {})) ports.set(Number(port), resolved(m.mode, mode));
  return { mode, ports };
}

export function mtlsModeFor(policy: PeerAuthnPolicy, port: number): MtlsMode {
  return policy.ports.get(port) ?? policy.mode;
}

/** What the inbound listener's security depends on: the names of the policies that apply (for generator caches keyed per push). */
export function inboundSecurityKey(push: PushContext, proxy: ProxyNode): string {
  const names = (list: ConfigObject[]): string => list.map((o) => `${o.metadata.namespace}/${o.metadata.name}`).join(',');
  const pa = peerAuthenticationFor(push, proxy);
  return `${names(authorizationPoliciesFor(push, proxy))}|${names(requestAuthenticationsFor(push, proxy))}|${pa.mode}${[...pa.ports].map(([p, m]) => `,${p}=${m}`).join('')}`;
}
