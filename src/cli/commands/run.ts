// `mesh run --service NAME --port P -- CMD ARGS...`: one workload with its
// sidecar (agent + proxy) on this host, without traffic capture, or with it
// (--capture: its own network namespace, iptables, DNS proxy; docs/capture.md).

import { randomBytes } from 'node:crypto';
import { createLogger, env } from '../../common/index.ts';
import { parseCertTtlSeconds } from '../../runtime/cert-ttl.ts';
import { CAPTURE_FLAGS, captureDecision, captureSetting, runSidecarWithCapture } from '../capture-flags.ts';
import type { Command, FlagValues } from '../command.ts';
import { str, strings } from '../command.ts';
import { CliError, ExitCode } from '../exit-codes.ts';

function port(flags: FlagValues, name: string): number | undefined {
  const v = str(flags, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new CliError(ExitCode.USAGE, `--${name}: ${v} is not a port number`);
  return n;
}

/** `--cert-ttl 6s` / `90m` / `24h` / `30` (seconds): whole seconds, at least 1. */
function certTtl(flags: FlagValues): number | undefined {
  const v = str(flags, 'cert-ttl') ?? env('MESH_WORKLOAD_CERT_TTL');
  if (v === undefined || v === '') return undefined;
  const seconds = parseCertTtlSeconds(v);
  if (seconds === undefined) throw new CliError(ExitCode.USAGE, `--cert-ttl ${v}: expected a duration such as 6s, 90m or 24h`);
  return seconds;
}

function keyValues(items: readonly string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of items) {
    const i = l.indexOf('=');
    if (i <= 0) throw new CliError(ExitCode.USAGE, `--${flag} ${l}: expected KEY=VALUE`);
    out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}

export const runCommand: Command = {
  name: 'run',
  summary: 'Run a workload with its sidecar (agent + proxy) on this host',
  help: `Usage: mesh run --service NAME [--version V] [--port P] [--sa ACCOUNT] [-n NS] [--control-plane URL] [--capture] -- CMD ARGS...

  --service NAME          the app: label app=NAME, service NAME.NS.svc.cluster.local
  --version V             label version=V (default v1)
  --port P                the service port clients use (e.g. 9080); the app itself
                          listens on 127.0.0.1:$PORT, a port the runtime picks
  --app-port P            pick the app's port yourself
  --sa ACCOUNT            service account (default: NAME)
  -n, --namespace NS      default "default"
  --label K=V             extra workload labels (repeatable)
  --env K=V               extra app environment (repeatable)
  --locality R/Z/S        workload locality
  --name POD              workload name (default NAME-V-<random>)
  --control-plane URL     the control plane's API (default $MESH_SERVER)
  --cert-ttl DURATION     workload certificate lifetime asked of Citadel (6s, 90m, 24h;
                          default $MESH_WORKLOAD_CERT_TTL, else the CA's default, 24 h);
                          renewed at 80 % of it
  --wait-for-service HOST wait until Pilot knows HOST before giving the app its
                          environment (repeatable; mesh up passes every declared service)
  --capture               traffic capture (root): the app runs in network namespace
                          mesh-<POD> and calls services by name (http://reviews:9080/)
  --capture-mode M        on | off | auto (auto: capture when root and the tools exist)
  --capture-bridge SUFFIX mesh bridge mesh-br<SUFFIX> (default 0)
  --capture-subnet CIDR   bridge subnet (default 10.213.0.0/24)
  --capture-egress        NAT the bridge out of the host (DNS upstreams, internet)
  --capture-dns IP[:PORT] DNS server for names outside the mesh (repeatable; the
                          cluster DNS of Kubernetes); default: the host's resolv.conf

Mode without capture (the default). The app gets, for every service in the mesh,
<SVC>_SERVICE_HOST=127.0.0.1 and <SVC>_SERVICE_PORT=<a sidecar port for it>,
plus PORT, HOST, POD_NAME, SERVICE_VERSION. It starts once the sidecar has its
certificate and first complete config; the sidecar exits with the app's exit
code. SIGINT/SIGTERM go to the app; outbound traffic flows until it exits.

With capture the app gets PORT (= --port, on HOST=127.0.0.1), POD_IP and no
<SVC>_SERVICE_* variables: names resolve to per-service VIPs (240.240.0.0/16)
through the sidecar's DNS proxy, iptables sends its connections to the
sidecar (uid 1337), and the namespace is removed when it exits.`,
  options: {
    service: { type: 'string' },
    version: { type: 'string' },
    port: { type: 'string' },
    'app-port': { type: 'string' },
    sa: { type: 'string' },
    namespace: { type: 'string', short: 'n' },
    label: { type: 'string', multiple: true },
    env: { type: 'string', multiple: true },
    'wait-for-service': { type: 'string', multiple: true },
    locality: { type: 'string' },
    name: { type: 'string' },
    'control-plane': { type: 'string' },
    'cert-ttl': { type: 'string' },
    ...CAPTURE_FLAGS,
    help: { type: 'boolean', short: 'h' },
  },
  positionals: true,
  async run(flags, positionals) {
    const service = str(flags, 'service');
    if (!service) throw new CliError(ExitCode.USAGE, 'mesh run needs --service NAME');
    if (positionals.length === 0) throw new CliError(ExitCode.USAGE, 'mesh run needs the app command after --');
    const version = str(flags, 'version') ?? 'v1';
    const name = str(flags, 'name') ?? `${service}-${version}-${randomBytes(3).toString('hex')}`;
    const namespace = str(flags, 'namespace') ?? 'default';
    const servicePort = port(flags, 'port');
    const appPort = port(flags, 'app-port');
    const locality = str(flags, 'locality');
    const certTtlSeconds = certTtl(flags);
    const setting = captureSetting(flags);
    const log = createLogger('sidecar').child({ workload: `${namespace}/${name}` });
    const decision = captureDecision(setting, log);
    const options = {
      controlPlane: str(flags, 'control-plane') ?? env('MESH_SERVER')!,
      type: 'sidecar',
      service,
      version,
      namespace,
      serviceAccount: str(flags, 'sa') ?? service,
      ...(servicePort !== undefined ? { servicePort } : {}),
      ...(appPort !== undefined ? { appPort } : {}),
      labels: keyValues(strings(flags, 'label'), 'label'),
      workloadName: name,
      ...(locality ? { locality } : {}),
      ...(certTtlSeconds !== undefined ? { certTtlSeconds } : {}),
      ensureServiceEntry: true,
      waitForServices: strings(flags, 'wait-for-service'),
      command: positionals,
      env: keyValues(strings(flags, 'env'), 'env'),
      logPrefix: `[${name}] `,
      log,
    } as const;
    return runSidecarWithCapture(decision, flags, options);
  },
};
