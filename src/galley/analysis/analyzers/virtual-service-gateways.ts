// virtualservice.GatewayAnalyzer: every gateway a VirtualService binds to must
// exist, and must serve at least one of the VirtualService's hosts.

import type { ConfigObject } from '../../../api/index.ts';
import type { Analyzer } from '../analyzer.ts';
import { NETWORKING, namespaceOf } from '../context.ts';
import { list, record, specOf, strings } from '../fields.ts';
import { hostsOverlap } from '../hosts.ts';
import { MessageTypes, quote } from '../messages.ts';

export const virtualServiceGateways: Analyzer = {
  name: 'virtualservice.GatewayAnalyzer',
  description: 'Checks the gateways associated with each virtual service',
  messages: [MessageTypes.ReferencedResourceNotFound, MessageTypes.VirtualServiceHostNotFoundInGateway],
  analyze(ctx, report) {
    for (const vs of ctx.list(NETWORKING, 'VirtualService')) {
      const ns = namespaceOf(vs);
      const hosts = strings(specOf(vs).hosts);
      list(specOf(vs).gateways).forEach((g, i) => {
        if (typeof g !== 'string' || g === 'mesh') return;
        const [gwNs, gwName] = gatewayRef(ns, g);
        const gateway = ctx.list(NETWORKING, 'Gateway').find((o) => o.metadata.name === gwName && namespaceOf(o) === gwNs);
        if (!gateway) {
          report(MessageTypes.ReferencedResourceNotFound, vs, `Referenced gateway not found: ${quote(g)}`, `spec.gateways[${i}]`);
          return;
        }
        if (hosts.length > 0 && !servesAnyHost(gateway, ns, hosts)) {
          report(
            MessageTypes.VirtualServiceHostNotFoundInGateway,
            vs,
            `one or more host [${hosts.join(' ')}] defined in VirtualService ${ns}/${vs.metadata.name} not found in Gateway ${gwNs}/${gwName}.`,
            `spec.gateways[${i}]`,
          );
        }
      });
    }
  },
};

/** `ns/name` or a short name in the VirtualService's namespace. */
export function gatewayRef(vsNamespace: string, ref: string): [string, string] {
  const slash = ref.indexOf('/');
  return slash < 0 ? [vsNamespace, ref] : [ref.slice(0, slash), ref.slice(slash + 1)];
}

// Gateway server hosts may carry a namespace (`ns/host`, `./host`, `*/host`):
// only VirtualServices of that namespace may bind to such a host.
function servesAnyHost(gateway: ConfigObject, vsNamespace: string, vsHosts: string[]): boolean {
  const gwNs = namespaceOf(gateway);
  for (const server of list(specOf(gateway).servers)) {
    for (const entry of strings(record(server)?.hosts)) {
      const slash = entry.indexOf('/');
      let host = entry;
      if (slash >= 0) {
        const scope = entry.slice(0, slash);
        host = entry.slice(slash + 1);
        const scopeNs = scope === '.' ? gwNs : scope;
        if (scopeNs !== '*' && scopeNs !== vsNamespace) continue;
      }
      if (vsHosts.some((h) => hostsOverlap(host, h))) return true;
    }
  }
  return false;
}
