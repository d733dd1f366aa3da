// virtualservice.DestinationRuleAnalyzer: a route or mirror to a subset needs
// a DestinationRule for that host that defines the subset.

import type { Analyzer } from '../analyzer.ts';
import { NETWORKING, namespaceOf } from '../context.ts';
import { routeDestinations } from '../destinations.ts';
import { list, record, specOf, str } from '../fields.ts';
import { MessageTypes, quote } from '../messages.ts';

export const virtualServiceDestinationRules: Analyzer = {
  name: 'virtualservice.DestinationRuleAnalyzer',
  description: 'Checks the destination rules associated with each virtual service',
  messages: [MessageTypes.ReferencedResourceNotFound],
  analyze(ctx, report) {
    // host (canonical) + "\n" + subset, for every subset any DestinationRule defines.
    const defined = new Set<string>();
    for (const dr of ctx.list(NETWORKING, 'DestinationRule')) {
      const host = str(specOf(dr).host);
      if (!host) continue;
      const canonical = ctx.canonicalHost(namespaceOf(dr), host);
      for (const s of list(specOf(dr).subsets)) {
        const name = str(record(s)?.name);
        if (name) defined.add(`${canonical}\n${name}`);
      }
    }
    for (const vs of ctx.list(NETWORKING, 'VirtualService')) {
      const ns = namespaceOf(vs);
      for (const d of routeDestinations(vs)) {
        if (d.subset === undefined) continue;
        if (defined.has(`${ctx.canonicalHost(ns, d.host)}\n${d.subset}`)) continue;
        const what = d.role === 'mirror' ? 'mirror+subset' : 'host+subset';
        report(MessageTypes.ReferencedResourceNotFound, vs, `Referenced ${what} in destinationrule not found: ${quote(`${d.host}+${d.subset}`)}`, `${d.path}.subset`);
      }
    }
  },
};
