// The networking API's own WorkloadSelector (`labels`), used by ServiceEntry and
// Sidecar. DestinationRule uses the common istio.type one (`matchLabels`).

import type { Diagnostics, FieldPath } from '../../diagnostics.ts';
import { strict, stringMap, z } from '../../schema.ts';
import { checkLabels } from '../../validators.ts';

export const networkingWorkloadSelector = strict({ labels: stringMap.optional() });
export type NetworkingWorkloadSelector = z.infer<typeof networkingWorkloadSelector>;

/** Labels valid, and no `*` in a value: selectors match exact label values only. */
export function checkSelectorLabels(diag: Diagnostics, path: FieldPath, labels: Record<string, string> | undefined): void {
  for (const [key, value] of Object.entries(labels ?? {})) {
    if (value.includes('*') || key.includes('*')) {
      diag.error(path.key(key), 'wildcard is not supported in selector: labels match exact values');
      return;
    }
  }
  checkLabels(diag, path, labels);
}
