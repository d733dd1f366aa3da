// `mesh gateway`: an ingress gateway on this host, a proxy in router mode
// with labels istio=ingressgateway, registered like a workload. Gateways
// select it; their servers' ports become its listeners (0.0.0.0:PORT).

import { randomBytes } from 'node:crypto';
import { createLogger, env } from '../../common/index.ts';
import { runSidecar } from '../../runtime/sidecar/index.ts';
import type { Command } from '../command.ts';
import { str } from '../command.ts';

export const gatewayCommand: Command = {
  name: 'gateway',
  summary: 'Run an ingress gateway (a proxy in router mode) on this host',
  help: `Usage: mesh gateway [--name istio-ingressgateway] [-n istio-system] [--control-plane URL]

  --name NAME             gateway name: label app=NAME (default istio-ingressgateway)
  -n, --namespace NS      default istio-system
  --sa ACCOUNT            service account (default: istio-ingressgateway-service-account)
  --label K=V             labels (default istio=ingressgateway)
  --control-plane URL     the control plane's API (default $MESH_SERVER)

Listeners come from the Gateways that select it: a server on port 8080 (as
Istio's bookinfo-gateway.yaml has) listens on 0.0.0.0:8080.`,
  options: {
    name: { type: 'string' },
    namespace: { type: 'string', short: 'n' },
    sa: { type: 'string' },
    label: { type: 'string', multiple: true },
    'control-plane': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  async run(flags) {
    const name = str(flags, 'name') ?? 'istio-ingressgateway';
    const namespace = str(flags, 'namespace') ?? 'istio-system';
    const labels: Record<string, string> = {};
    const given = flags.label;
    for (const l of Array.isArray(given) ? (given as string[]) : typeof given === 'string' ? [given] : ['istio=ingressgateway']) {
      const i = l.indexOf('=');
      if (i > 0) labels[l.slice(0, i)] = l.slice(i + 1);
    }
    const workloadName = `${name}-${randomBytes(3).toString('hex')}`;
    return runSidecar({
      controlPlane: str(flags, 'control-plane') ?? env('MESH_SERVER')!,
      type: 'router',
      service: name,
      namespace,
      serviceAccount: str(flags, 'sa') ?? `${name}-service-account`,
      labels,
      workloadName,
      log: createLogger('gateway').child({ workload: `${namespace}/${workloadName}` }),
    });
  },
};
