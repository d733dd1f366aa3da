// service.PortNameAnalyzer: Kubernetes Service ports should say their protocol
// (`http`, `http-web`, `grpc`, ... or appProtocol), else Istio falls back to
// protocol sniffing.

import type { Analyzer } from '../analyzer.ts';
import { namespaceOf } from '../context.ts';
import { list, record, specOf, str } from '../fields.ts';
import { MessageTypes } from '../messages.ts';

// Istio's protocol names (pkg/config/protocol), lower case.
const PROTOCOLS = new Set(['tcp', 'udp', 'sctp', 'grpc', 'grpc-web', 'http', 'http_proxy', 'http2', 'https', 'tls', 'mongo', 'redis', 'mysql']);
// appProtocol values Kubernetes standardised and Istio maps.
const KUBERNETES_APP_PROTOCOLS = new Set(['kubernetes.io/h2c', 'kubernetes.io/ws', 'kubernetes.io/wss']);
// Namespaces Istio leaves out of this check.
const SYSTEM_NAMESPACES = new Set(['kube-system', 'kube-public', 'kube-node-lease', 'local-path-storage']);
const CONTROL_PLANE_LABELS = new Set(['pilot', 'istiod', 'ingressgateway', 'egressgateway', 'eastwestgateway']);

/** The protocol Istio reads from a port's name, appProtocol and protocol, or undefined when it finds none. */
export function portProtocol(name: string | undefined, protocol: string | undefined, appProtocol: string | undefined): string | undefined {
  if (protocol?.toUpperCase() === 'UDP') return 'udp';
  if (protocol?.toUpperCase() === 'SCTP') return 'sctp';
  if (appProtocol) {
    const p = appProtocol.toLowerCase();
    if (PROTOCOLS.has(p) || KUBERNETES_APP_PROTOCOLS.has(p)) return p;
  }
  if (!name) return undefined;
  const lower = name.toLowerCase();
  if (PROTOCOLS.has(lower)) return lower;
  const dash = lower.indexOf('-');
  const prefix = dash < 0 ? lower : lower.slice(0, dash);
  return PROTOCOLS.has(prefix) ? prefix : undefined;
}

export const servicePortNames: Analyzer = {
  name: 'service.PortNameAnalyzer',
  description: 'Checks the port names associated with each service',
  messages: [MessageTypes.PortNameIsNotUnderNamingConvention],
  analyze(ctx, report) {
    for (const svc of ctx.list('', 'Service')) {
      if (SYSTEM_NAMESPACES.has(namespaceOf(svc))) continue;
      const labels = svc.metadata.labels ?? {};
      if (CONTROL_PLANE_LABELS.has(labels.istio ?? '') || labels.app === 'istiod') continue;
      const spec = specOf(svc);
      if (str(spec.type) === 'ExternalName') continue;
      list(spec.ports).forEach((p, i) => {
        const port = record(p);
        if (!port) return;
        const name = str(port.name);
        if (portProtocol(name, str(port.protocol), str(port.appProtocol)) !== undefined) return;
        // Kubernetes defaults targetPort to the port.
        const target = port.targetPort ?? port.port;
        report(MessageTypes.PortNameIsNotUnderNamingConvention, svc, `Port name ${name ?? ''} (port: ${String(port.port)}, targetPort: ${String(target)}) doesn't follow the naming convention of Istio port.`, `spec.ports[${i}]`);
      });
    }
  },
};
