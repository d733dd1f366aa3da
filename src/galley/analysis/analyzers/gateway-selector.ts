// gateway.IngressGatewayPortAnalyzer (the selector part): a Gateway's selector
// must match some gateway workload, in any namespace.

import type { Analyzer } from '../analyzer.ts';
import { NETWORKING } from '../context.ts';
import { specOf } from '../fields.ts';
import { asLabels, selectorString } from '../labels.ts';
import { MessageTypes, quote } from '../messages.ts';

export const gatewaySelector: Analyzer = {
  name: 'gateway.IngressGatewayPortAnalyzer',
  description: "Checks that a gateway's selector matches a gateway workload",
  messages: [MessageTypes.ReferencedResourceNotFound],
  analyze(ctx, report) {
    for (const gw of ctx.list(NETWORKING, 'Gateway')) {
      const selector = asLabels(specOf(gw).selector);
      // No selector means every workload: nothing to check.
      if (!selector || Object.keys(selector).length === 0) continue;
      if (ctx.selectWorkloads(selector, undefined).length === 0) {
        report(MessageTypes.ReferencedResourceNotFound, gw, `Referenced selector not found: ${quote(selectorString(selector))}`, 'spec.selector');
      }
    }
  },
};
