// `mesh gateway`: an ingress or egress gateway on this host, a proxy in
// router mode with labels istio=ingressgateway (or --label
// istio=egressgateway), registered like a workload. Gateways select it;
// their servers' ports become its listeners (0.0.0.0:PORT). With --capture
// it runs in its own network namespace on the mesh bridge, so captured
// workloads reach it (docs/runtime.md, Egress).

import { randomBytes } from 'node:crypto';
import { createLogger, env } from '../../common/index.ts';
import type { SidecarOptions } from '../../runtime/sidecar/index.ts';
import type { DeclaredPort } from '../../runtime/sidecar/control-plane-client.ts';
import { CAPTURE_FLAGS, captureDecision, captureSetting, runSidecarWithCapture } from '../capture-flags.ts';
import type { Command } from '../command.ts';
import { str, strings } from '../command.ts';
import { CliError, ExitCode } from '../exit-codes.ts';

/** `--service-port http2:80` or `https:443:HTTPS`: Istio's port name (its protocol prefix gives the protocol), number, optional protocol. */
export function servicePort(value: string): DeclaredPort {
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?):(\d+)(?::([A-Za-z0-9-]+))?$/.exec(value);
  const number = m ? Number(m[3]) : NaN;
  if (!m || !(number >= 1 && number <= 65535)) throw new CliError(ExitCode.USAGE, `--service-port ${value}: expected NAME:PORT[:PROTOCOL], e.g. http2:80 or https:443`);
  const name = m[1]!;
  const prefix = name.split('-')[0]!.toUpperCase();
  const protocol = m[4]?.toUpperCase() ?? (['HTTP', 'HTTP2', 'HTTPS', 'GRPC', 'TLS', 'TCP', 'MONGO', 'REDIS', 'MYSQL'].includes(prefix) ? prefix : 'TCP');
  return { name, number, protocol };
}

export const gatewayCommand: Command = {
  name: 'gateway',
  summary: 'Run an ingress or egress gateway (a proxy in router mode) on this host',
  help: `Usage: mesh gateway [--name istio-ingressgateway] [-n istio-system] [--control-plane URL] [--capture]

  --name NAME             gateway name: label app=NAME (default istio-ingressgateway)
  -n, --namespace NS      default istio-system
  --sa ACCOUNT            service account (default: NAME-service-account)
  --label K=V             labels (default istio=ingressgateway)
  --workload POD          workload (pod) name (default NAME-<random>)
  --service-port N:P[:PR] declare the gateway's Service NAME.NS.svc.cluster.local with
                          this port (repeatable), selecting the gateway's labels, as
                          Istio's installation does; e.g. for the egress gateway
                          --service-port http2:80 --service-port https:443
  --control-plane URL     the control plane's API (default $MESH_SERVER)
  --capture               run in its own network namespace mesh-<POD> on the mesh
                          bridge (root), reachable by captured workloads at its
                          bridge address; no capture rules in it
  --capture-mode M        on | off | auto
  --capture-bridge SUFFIX mesh bridge mesh-br<SUFFIX> (default 0)
  --capture-subnet CIDR   bridge subnet (default 10.213.0.0/24)
  --capture-egress        NAT the bridge out of the host
  --capture-dns IP[:PORT] DNS server for names outside the mesh (repeatable)

Listeners come from the Gateways that select it: a server on port 8080 (as
Istio's bookinfo-gateway.yaml has) listens on 0.0.0.0:8080; Istio's egress
gateway task's server on port 80 listens on 80 (with --capture, inside the
gateway's namespace, where ports below 1024 are open to it).`,
  options: {
    name: { type: 'string' },
    namespace: { type: 'string', short: 'n' },
    sa: { type: 'string' },
    label: { type: 'string', multiple: true },
    workload: { type: 'string' },
    'service-port': { type: 'string', multiple: true },
    'control-plane': { type: 'string' },
    ...CAPTURE_FLAGS,
    help: { type: 'boolean', short: 'h' },
  },
  async run(flags) {
    const name = str(flags, 'name') ?? 'istio-ingressgateway';
    const namespace = str(flags, 'namespace') ?? 'istio-system';
    const labels: Record<string, string> = {};
    const given = strings(flags, 'label');
    for (const l of given.length > 0 ? given : ['istio=ingressgateway']) {
      const i = l.indexOf('=');
      if (i <= 0) throw new CliError(ExitCode.USAGE, `--label ${l}: expected KEY=VALUE`);
      labels[l.slice(0, i)] = l.slice(i + 1);
    }
    const servicePorts = strings(flags, 'service-port').map(servicePort);
    const setting = captureSetting(flags);
    const workloadName = str(flags, 'workload') ?? `${name}-${randomBytes(3).toString('hex')}`;
    const log = createLogger('gateway').child({ workload: `${namespace}/${workloadName}` });
    const decision = captureDecision(setting, log);
    const options: SidecarOptions = {
      controlPlane: str(flags, 'control-plane') ?? env('MESH_SERVER')!,
      type: 'router',
      service: name,
      namespace,
      serviceAccount: str(flags, 'sa') ?? `${name}-service-account`,
      labels,
      workloadName,
      ...(servicePorts.length > 0 ? { servicePorts, ensureServiceEntry: true } : {}),
      log,
    };
    return runSidecarWithCapture(decision, flags, options);
  },
};
