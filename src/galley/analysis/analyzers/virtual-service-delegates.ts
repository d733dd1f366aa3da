// virtualservice.DelegateAnalyzer (the mesh's own): an http rule that delegates
// to another VirtualService must name one that exists.

import type { Analyzer } from '../analyzer.ts';
import { NETWORKING, namespaceOf } from '../context.ts';
import { list, record, specOf, str } from '../fields.ts';
import { MessageTypes, quote } from '../messages.ts';

export const virtualServiceDelegates: Analyzer = {
  name: 'virtualservice.DelegateAnalyzer',
  description: 'Checks that delegated http routes name an existing virtual service',
  messages: [MessageTypes.ReferencedResourceNotFound],
  analyze(ctx, report) {
    for (const vs of ctx.list(NETWORKING, 'VirtualService')) {
      list(specOf(vs).http).forEach((rule, i) => {
        const delegate = record(record(rule)?.delegate);
        const name = str(delegate?.name);
        if (!delegate || !name) return;
        const ns = str(delegate.namespace) || namespaceOf(vs);
        if (!ctx.exists(NETWORKING, 'VirtualService', ns, name)) {
          report(MessageTypes.ReferencedResourceNotFound, vs, `Referenced delegate virtualservice not found: ${quote(`${ns}/${name}`)}`, `spec.http[${i}].delegate`);
        }
      });
    }
  },
};
