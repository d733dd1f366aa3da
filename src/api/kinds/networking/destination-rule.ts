// DestinationRule: what happens to traffic for a host after routing (load
// balancing, connection pools, outlier detection, TLS) and its named subsets.

import type { KindDefinition, ValidationContext } from '../../kind-registry.ts';
import { strict, stringMap, workloadSelector, z } from '../../schema.ts';
import { checkLabels, hostProblem } from '../../validators.ts';
import { checkExportTo } from './checks.ts';
import { checkSubsetName } from './destination.ts';
import { checkTrafficPolicy, trafficPolicy } from './traffic-policy.ts';
import { checkSelectorLabels } from './workload-selector.ts';
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
  const problem = hostProblem(spec.host);
  if (problem) diag.error(path.key('host'), problem);
  checkTrafficPolicy(diag, path.key('trafficPolicy'), spec.trafficPolicy);
  const names = new Set<string>();
  (spec.subsets ?? []).forEach((subset, i) => {
    const p = path.key('subsets').index(i);
    if (names.has(subset.name)) diag.error(p.key('name'), `duplicate subset name "${subset.name}": subset names must be unique`);
    names.add(subset.name);
    checkSubsetName(diag, p.key('name'), subset.name);
    checkLabels(diag, p.key('labels'), subset.labels);
    checkTrafficPolicy(diag, p.key('trafficPolicy'), subset.trafficPolicy);
  });
  checkExportTo(diag, path.key('exportTo'), spec.exportTo);
  if (spec.workloadSelector) {
    checkSelectorLabels(diag, path.key('workloadSelector').key('matchLabels'), spec.workloadSelector.matchLabels);
    // A selector picks workloads of this namespace, so exporting the rule elsewhere means nothing.
    (spec.exportTo ?? []).forEach((e, i) => {
      const ns = ctx.object.metadata.namespace;
      if (e !== '.' && e !== ns) diag.error(path.key('exportTo').index(i), `a destination rule with a workloadSelector can only be exported to its own namespace ("." or "${ns}")`);
    });
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
