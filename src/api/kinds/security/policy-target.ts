// What a security or telemetry policy applies to: a workload selector or a
// targetRef/targetRefs (Gateway API style). Shared by AuthorizationPolicy,
// RequestAuthentication and Telemetry, which Istio validates the same way.

import type { FieldPath } from '../../diagnostics.ts';
import type { Diagnostics } from '../../diagnostics.ts';
import { strict, stringMap, z } from '../../schema.ts';
import { checkLabels } from '../../validators.ts';

/** istio.type.v1beta1.PolicyTargetReference */
export const policyTargetReference = strict({
  group: z.string().optional(),
  kind: z.string(),
  name: z.string(),
  namespace: z.string().optional(),
});
export type PolicyTargetReference = z.infer<typeof policyTargetReference>;

/** istio.type.v1beta1.WorkloadSelector */
export const policySelector = strict({ matchLabels: stringMap.optional() });
export type PolicySelector = z.infer<typeof policySelector>;

/** The fields every targetable policy has. */
export const targetFields = {
  selector: policySelector.optional(),
  targetRef: policyTargetReference.optional(),
  targetRefs: z.array(policyTargetReference).optional(),
};

export interface Targeted {
  selector?: PolicySelector;
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
}

// Istio compares group and kind only; the core group is written as "".
const ALLOWED_TARGETS: readonly { group: string; kind: string }[] = [
  { group: '', kind: 'Service' },
  { group: 'networking.istio.io', kind: 'ServiceEntry' },
  { group: 'gateway.networking.k8s.io', kind: 'Gateway' },
];
const ALLOWED_TEXT = ALLOWED_TARGETS.map((t) => `${t.group === '' ? 'core' : t.group}/${t.kind}`).join(', ');

/** Istio's validateWorkloadSelector: no empty keys, no wildcards, warn on an empty selector. */
export function checkWorkloadSelector(diag: Diagnostics, path: FieldPath, selector: PolicySelector | undefined): void {
  if (selector === undefined) return;
  const labels = selector.matchLabels ?? {};
  const entries = Object.entries(labels);
  if (entries.length === 0) {
    diag.warn(path, 'workload selector specified without labels');
    return;
  }
  for (const [key, value] of entries) {
    const at = path.key('matchLabels').key(key);
    if (key === '') diag.error(at, `empty key is not supported in selector: "${key}=${value}"`);
    else if (key.includes('*') || value.includes('*')) diag.error(at, `wildcard is not supported in selector: "${key}=${value}"`);
  }
  const plain = Object.fromEntries(entries.filter(([k, v]) => k !== '' && !k.includes('*') && !v.includes('*')));
  checkLabels(diag, path.key('matchLabels'), plain);
}

/** Istio's validatePolicyTargetReference. */
export function checkTargetRef(diag: Diagnostics, path: FieldPath, ref: PolicyTargetReference): void {
  if (ref.name === '') diag.error(path.key('name'), 'targetRef name must be set');
  if (ref.namespace !== undefined && ref.namespace !== '') {
    diag.error(path.key('namespace'), 'targetRef namespace must not be set; cross namespace referencing is not supported');
  }
  const group = ref.group ?? '';
  const canonical = group === 'core' ? '' : group;
  if (!ALLOWED_TARGETS.some((t) => t.group === canonical && t.kind === ref.kind)) {
    diag.error(path, `targetRef must be to one of ${ALLOWED_TEXT} but was ${group}/${ref.kind}`);
  }
}

/** Selector, targetRef and targetRefs are mutually exclusive; each is checked. */
export function checkPolicyTargets(diag: Diagnostics, path: FieldPath, spec: Targeted): void {
  let set = 0;
  if (spec.selector !== undefined) set++;
  if (spec.targetRef !== undefined) set++;
  if (spec.targetRefs !== undefined && spec.targetRefs.length > 0) set++;
  if (set > 1) diag.error(path, 'only one of targetRefs or workloadSelector can be set');
  checkWorkloadSelector(diag, path.key('selector'), spec.selector);
  if (spec.targetRef) checkTargetRef(diag, path.key('targetRef'), spec.targetRef);
  spec.targetRefs?.forEach((ref, i) => checkTargetRef(diag, path.key('targetRefs').index(i), ref));
}
