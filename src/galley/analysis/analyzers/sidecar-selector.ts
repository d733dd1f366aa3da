// sidecar.SelectorAnalyzer: a Sidecar with a workload selector must select a
// workload of its namespace (any namespace for the root namespace), no two
// Sidecars may select the same workload, and at most one Sidecar per
// namespace may have no selector.

import type { ConfigObject } from '../../../api/index.ts';
import type { Analyzer } from '../analyzer.ts';
import { NETWORKING, namespaceOf } from '../context.ts';
import { record, specOf } from '../fields.ts';
import { asLabels, selectorString } from '../labels.ts';
import { MessageTypes, quote } from '../messages.ts';

export const sidecarSelector: Analyzer = {
  name: 'sidecar.SelectorAnalyzer',
  description: "Validates that sidecars that define a workload selector match at least one pod, and that there aren't multiple sidecar resources that select overlapping pods",
  messages: [MessageTypes.ReferencedResourceNotFound, MessageTypes.ConflictingSidecarWorkloadSelectors, MessageTypes.MultipleSidecarsWithoutWorkloadSelectors],
  analyze(ctx, report) {
    const byWorkload = new Map<string, { ns: string; name: string; sidecars: ConfigObject[] }>();
    const unselected = new Map<string, ConfigObject[]>();
    for (const sc of ctx.list(NETWORKING, 'Sidecar')) {
      const ns = namespaceOf(sc);
      const selector = asLabels(record(specOf(sc).workloadSelector)?.labels);
      if (!selector || Object.keys(selector).length === 0) {
        const bucket = unselected.get(ns) ?? [];
        bucket.push(sc);
        unselected.set(ns, bucket);
        continue;
      }
      const selected = ctx.selectWorkloads(selector, ctx.scopeOf(ns));
      if (selected.length === 0) {
        report(MessageTypes.ReferencedResourceNotFound, sc, `Referenced selector not found: ${quote(selectorString(selector))}`, 'spec.workloadSelector.labels');
      }
      for (const w of selected) {
        const key = `${w.namespace}/${w.name}`;
        const entry = byWorkload.get(key) ?? { ns: w.namespace, name: w.name, sidecars: [] };
        if (!entry.sidecars.includes(sc)) entry.sidecars.push(sc);
        byWorkload.set(key, entry);
      }
    }
    for (const { ns, name, sidecars } of byWorkload.values()) {
      if (sidecars.length < 2) continue;
      const names = `[${sidecars.map((s) => `${namespaceOf(s)}/${s.metadata.name}`).sort().join(' ')}]`;
      for (const sc of sidecars) {
        report(MessageTypes.ConflictingSidecarWorkloadSelectors, sc, `The Sidecars ${names} in namespace ${quote(ns)} select the same workload pod ${quote(name)}, which can lead to undefined behavior.`, 'spec.workloadSelector.labels');
      }
    }
    for (const [ns, sidecars] of unselected) {
      if (sidecars.length < 2) continue;
      const names = `[${sidecars.map((s) => `${namespaceOf(s)}/${s.metadata.name}`).sort().join(' ')}]`;
      for (const sc of sidecars) {
        report(MessageTypes.MultipleSidecarsWithoutWorkloadSelectors, sc, `The Sidecars ${names} in namespace ${quote(ns)} have no workload selector, which can lead to undefined behavior.`);
      }
    }
  },
};
