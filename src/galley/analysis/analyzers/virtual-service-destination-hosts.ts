// virtualservice.DestinationHostAnalyzer: every route and mirror of a
// VirtualService must go to a host that exists as a Kubernetes Service or a
// ServiceEntry host visible from its namespace, on a port that service has.

import type { Analyzer } from '../analyzer.ts';
import { NETWORKING, namespaceOf } from '../context.ts';
import { routeDestinations } from '../destinations.ts';
import { MessageTypes, quote } from '../messages.ts';

export const virtualServiceDestinationHosts: Analyzer = {
  name: 'virtualservice.DestinationHostAnalyzer',
  description: 'Checks the destination hosts associated with each virtual service',
  messages: [MessageTypes.ReferencedResourceNotFound, MessageTypes.VirtualServiceDestinationPortSelectorRequired],
  analyze(ctx, report) {
    for (const vs of ctx.list(NETWORKING, 'VirtualService')) {
      const ns = namespaceOf(vs);
      for (const d of routeDestinations(vs)) {
        const hostPath = `${d.path}.host`;
        const service = ctx.findService(ns, d.host);
        if (!service) {
          report(MessageTypes.ReferencedResourceNotFound, vs, `Referenced ${d.role === 'mirror' ? 'mirror host' : 'host'} not found: ${quote(d.host)}`, hostPath);
          continue;
        }
        if (d.port === undefined) {
          // Only ServiceEntries are checked, as Istio does: a Kubernetes
          // Service with several ports gets a route per port anyway.
          if (service.kind === 'ServiceEntry' && service.ports.length > 1) {
            const ports = service.ports.map((p) => p.number).join(' ');
            report(MessageTypes.VirtualServiceDestinationPortSelectorRequired, vs, `This VirtualService routes to a service ${quote(d.host)} that exposes multiple ports [${ports}]. Specifying a port in the destination is required to disambiguate.`, hostPath);
          }
          continue;
        }
        if (service.ports.length > 0 && !service.ports.some((p) => p.number === d.port)) {
          report(MessageTypes.ReferencedResourceNotFound, vs, `Referenced host:port not found: ${quote(`${d.host}:${d.port}`)}`, `${d.path}.port.number`);
        }
      }
    }
  },
};
