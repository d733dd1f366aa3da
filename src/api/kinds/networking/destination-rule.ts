// DestinationRule: what happens to traffic for a host after routing (load
// balancing, connection pools, outlier detection, TLS) and its named subsets.

import type { KindDefinition, ValidationContext } from '../../kind-registry.ts';
import { strict, stringMap, workloadSelector, z } from '../../schema.ts';
import { checkLabels } from '../../validators.ts';
import { checkExportTo, checkSelectorLabels, checkWildcardDomain } from './checks.ts';
import { checkSubsetName } from './destination.ts';
import { checkTrafficPolicy, trafficPolicy } from './traffic-policy.ts';
import { NETWORKING_GROUP, NETWORKING_VERSIONS } from './versions.ts';

export const destinationRuleSpec = strict({
  host: z.string(),
  trafficPolicy: trafficPolicy.optional(),
  subsets: z.array(strict({
    name: z.string(),
    labels: stringMap.optional(),
    trafficPolicy: trafficPolicy.optional(),
  })).optional(),
  exportTo: z.array(z.string()).optional(),
  workloadSelector: workloadSelector.optional(),
});
export type DestinationRuleSpec = z.infer<typeof destinationRuleSpec>;

/** ValidateDestinationRule. */
export function validateDestinationRule(spec: DestinationRuleSpec, ctx: ValidationContext): void {
  const { diag, path } = ctx;
  const namespace = ctx.object.metadata.namespace ?? '';
  checkWildcardDomain(diag, path.key('host'), spec.host);
  checkTrafficPolicy(diag, path.key('trafficPolicy'), spec.trafficPolicy, namespace);
  const names = new Set<string>();
  (spec.subsets ?? []).forEach((subset, i) => {
    const p = path.key('subsets').index(i);
    if (names.has(subset.name)) diag.error(p.key('name'), `duplicate subset names: ${subset.name}`);
    names.add(subset.name);
    checkSubsetName(diag, p.key('name'), subset.name);
    checkLabels(diag, p.key('labels'), subset.labels);
    checkTrafficPolicy(diag, p.key('trafficPolicy'), subset.trafficPolicy, namespace);
  });
  checkExportTo(diag, path.key('exportTo'), spec.exportTo, { namespace, destinationRuleWithSelector: spec.workloadSelector !== undefined });
  if (spec.workloadSelector) {
    const p = path.key('workloadSelector');
    if (!checkSelectorLabels(diag, p.key('matchLabels'), spec.workloadSelector.matchLabels)) {
      diag.warn(p, 'workload selector specified without labels');
    }
  }
}

export const destinationRuleKind: KindDefinition<DestinationRuleSpec> = {
  group: NETWORKING_GROUP,
  kind: 'DestinationRule',
  versions: NETWORKING_VERSIONS,
  plural: 'destinationrules',
  shortNames: ['dr'],
  spec: destinationRuleSpec,
  validate: validateDestinationRule,
};
