// `mesh control-plane`: runs the control plane in the foreground until Ctrl-C / SIGTERM.

import { resolve } from 'node:path';
import { env } from '../../common/index.ts';
import { ControlPlane } from '../../runtime/index.ts';
import type { Command } from '../command.ts';
import { str } from '../command.ts';
import { CliError, ExitCode } from '../exit-codes.ts';

function port(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new CliError(ExitCode.USAGE, `--${flag} must be a port number 0..65535 (0 picks a free port), got "${value}"`);
  return n;
}

/** `--api-fd 3`: a listening socket the parent passed at that descriptor. */
function apiFd(value: string | undefined): { apiListenFd?: number } {
  if (value === undefined) return {};
  const n = Number(value);
  if (!Number.isInteger(n) || n < 3) throw new CliError(ExitCode.USAGE, `--api-fd must be an inherited file descriptor number (3 or more), got "${value}"`);
  return { apiListenFd: n };
}

export const controlPlaneCommand: Command = {
  name: 'control-plane',
  summary: 'Run the control plane (Galley, Pilot, Mixer, Citadel)',
  help: `Usage: mesh control-plane [--data-dir DIR | --config-dir DIR] [--mesh-config FILE] [--listen-address ADDR]
                          [--api-port 15080] [--monitoring-port 15014] [--galley-port 9901] [--xds-port 15010]
                          [--mixer-port 9091] [--ca-port 15012] [--ca-certs-dir DIR]

  --data-dir DIR        durable config store (default $MESH_DATA_DIR or .mesh/data)
  --config-dir DIR      serve a watched directory of YAML files instead (read-only)
  --listen-address      address to listen on (default 127.0.0.1)
  --api-port            config API used by \`mesh apply/get/delete\` (default 15080)
  --api-fd N            serve the config API on inherited listening socket N instead (mesh up binds it)
  --monitoring-port     /metrics, /ready, /healthz (default 15014)
  --galley-port         config distribution over xDS/gRPC (default 9901)
  --xds-port            Pilot's ADS for proxies and proxyless gRPC, plaintext (default 15010)
  --mixer-port          Mixer: ext_authz Check, RLS quota, ALS reports (default 9091)
  --ca-port             Citadel's CSR signing service, gRPC over TLS (default 15012)
  --ca-certs-dir DIR    plugged-in CA (Istio's cacerts: ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem)
  --mesh-config FILE    MeshConfig YAML (trustDomain, rootNamespace, outboundTrafficPolicy, ...)

Logs are JSON lines on stdout. Stops cleanly on Ctrl-C or SIGTERM.`,
  options: {
    'data-dir': { type: 'string' },
    'config-dir': { type: 'string' },
    'listen-address': { type: 'string' },
    'api-port': { type: 'string' },
    'api-fd': { type: 'string' },
    'monitoring-port': { type: 'string' },
    'galley-port': { type: 'string' },
    'xds-port': { type: 'string' },
    'mixer-port': { type: 'string' },
    'ca-port': { type: 'string' },
    'ca-certs-dir': { type: 'string' },
    'mesh-config': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  async run(flags) {
    const configDir = str(flags, 'config-dir');
    const plane = await ControlPlane.start({
      dataDir: resolve(str(flags, 'data-dir') ?? env('MESH_DATA_DIR') ?? '.mesh/data'),
      configDir: configDir === undefined ? undefined : resolve(configDir),
      listenAddress: str(flags, 'listen-address') ?? '127.0.0.1',
      apiPort: port(str(flags, 'api-port'), 'api-port', 15080),
      ...apiFd(str(flags, 'api-fd')),
      monitoringPort: port(str(flags, 'monitoring-port'), 'monitoring-port', 15014),
      galleyPort: port(str(flags, 'galley-port'), 'galley-port', 9901),
      xdsPort: port(str(flags, 'xds-port'), 'xds-port', 15010),
      mixerPort: port(str(flags, 'mixer-port'), 'mixer-port', 9091),
      caPort: port(str(flags, 'ca-port'), 'ca-port', 15012),
      caCertsDir: str(flags, 'ca-certs-dir'),
      meshConfigFile: str(flags, 'mesh-config'),
    });
    await new Promise<void>((done) => {
      const stop = (): void => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        done();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    await plane.stop();
    return ExitCode.OK;
  },
};
