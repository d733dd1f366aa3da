// authn.SelectorAnalyzer (the mesh's own, after Istio's AuthorizationPolicy
// check): a PeerAuthentication or RequestAuthentication with a selector must
// select a workload of its namespace (any namespace for the root namespace).

import type { Analyzer } from '../analyzer.ts';
import { SECURITY, namespaceOf } from '../context.ts';
import { record, specOf } from '../fields.ts';
import { asLabels, selectorString } from '../labels.ts';
import { MessageTypes } from '../messages.ts';

export const authenticationSelectors: Analyzer = {
  name: 'authn.SelectorAnalyzer',
  description: 'Checks that peer and request authentication policies with a selector select a workload',
  messages: [MessageTypes.NoMatchingWorkloadsFound],
  analyze(ctx, report) {
    for (const kind of ['PeerAuthentication', 'RequestAuthentication']) {
      for (const policy of ctx.list(SECURITY, kind)) {
        const selector = asLabels(record(specOf(policy).selector)?.matchLabels);
        if (!selector || Object.keys(selector).length === 0) continue;
        if (ctx.selectWorkloads(selector, ctx.scopeOf(namespaceOf(policy))).length === 0) {
          report(MessageTypes.NoMatchingWorkloadsFound, policy, `No matching workloads for this resource with the following labels: ${selectorString(selector)}`, 'spec.selector.matchLabels');
        }
      }
    }
  },
};
