// The networking API's own WorkloadSelector (`labels`), used by ServiceEntry and
// Sidecar. DestinationRule uses the common istio.type one (`matchLabels`).
// Its checks are checkSelectorLabels in checks.ts.

import { strict, stringMap, z } from '../../schema.ts';

export const networkingWorkloadSelector = strict({ labels: stringMap.optional() });
export type NetworkingWorkloadSelector = z.infer<typeof networkingWorkloadSelector>;
