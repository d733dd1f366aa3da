// peerauthentication.PolicyAnalyzer (the mesh's own): port-level mTLS needs a
// workload selector, and of several selector-less PeerAuthentications in one
// namespace (mesh-wide ones in the root namespace) only the oldest counts, by
// creationTimestamp and then name, as Istio picks it.

import type { ConfigObject } from '../../../api/index.ts';
import type { Analyzer } from '../analyzer.ts';
import { SECURITY, namespaceOf } from '../context.ts';
import { record, specOf } from '../fields.ts';
import { asLabels } from '../labels.ts';
import { MessageTypes } from '../messages.ts';

export const peerAuthentications: Analyzer = {
  name: 'peerauthentication.PolicyAnalyzer',
  description: 'Checks that port-level mTLS has a workload selector and that at most one mesh-wide or namespace-wide peer authentication exists per namespace',
  messages: [MessageTypes.PortLevelMtlsWithoutSelector, MessageTypes.ConflictingPeerAuthentications],
  analyze(ctx, report) {
    const wide = new Map<string, ConfigObject[]>();
    for (const pa of ctx.list(SECURITY, 'PeerAuthentication')) {
      const spec = specOf(pa);
      const selector = asLabels(record(spec.selector)?.matchLabels);
      const hasSelector = selector !== undefined && Object.keys(selector).length > 0;
      if (hasSelector) continue;
      const portLevel = record(spec.portLevelMtls);
      if (portLevel && Object.keys(portLevel).length > 0) {
        report(MessageTypes.PortLevelMtlsWithoutSelector, pa, 'portLevelMtls has no effect without a workload selector: port-level mTLS settings apply only to the workloads a PeerAuthentication selects.', 'spec.portLevelMtls');
      }
      const ns = namespaceOf(pa);
      const bucket = wide.get(ns) ?? [];
      bucket.push(pa);
      wide.set(ns, bucket);
    }
    for (const [ns, policies] of wide) {
      if (policies.length < 2) continue;
      const ordered = policies.slice().sort(oldestFirst);
      const names = ordered.map((p) => `${ns}/${p.metadata.name}`).join(', ');
      const scope = ns === ctx.rootNamespace ? `mesh-wide PeerAuthentications in the root namespace ${ns}` : `namespace-wide PeerAuthentications in namespace ${ns}`;
      for (const ignored of ordered.slice(1)) {
        report(MessageTypes.ConflictingPeerAuthentications, ignored, `Multiple ${scope} (${names}); only the oldest, ${ns}/${ordered[0]!.metadata.name}, takes effect.`);
      }
    }
  },
};

// Objects without a creationTimestamp (plain files) sort before stamped ones,
// as a zero time would; ties go by name.
function oldestFirst(a: ConfigObject, b: ConfigObject): number {
  const ta = Date.parse(a.metadata.creationTimestamp ?? '') || 0;
  const tb = Date.parse(b.metadata.creationTimestamp ?? '') || 0;
  if (ta !== tb) return ta - tb;
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}
