// `mesh up -f mesh.yaml`: a declared topology on this host (control plane,
// one sidecar per replica, ingress gateway), until Ctrl-C or `mesh down`.

import { resolve } from 'node:path';
import { loadTopology } from '../../runtime/topology.ts';
import { MeshUp } from '../../runtime/mesh-up.ts';
import { parseCaptureSetting } from '../../runtime/capture/mode.ts';
import type { CaptureSetting } from '../../runtime/capture/mode.ts';
import type { Command } from '../command.ts';
import { str, strings } from '../command.ts';
import { CliError, ExitCode } from '../exit-codes.ts';

export const upCommand: Command = {
  name: 'up',
  summary: 'Start a declared topology (mesh.yaml) with sidecars, control plane and gateway',
  help: `Usage: mesh up -f mesh.yaml [--run-dir .mesh/run] [--quiet] [--capture | --capture-mode on|off|auto]

  -f, --filename FILE     the topology (see samples/bookinfo/mesh.yaml)
  --run-dir DIR           logs (DIR/logs/<process>.log), pid file, control-plane data (default .mesh/run)
  --quiet                 no prefixed console view of the process logs
  --capture               traffic capture (root): every replica in its own network
                          namespace, apps call services by name (overrides mesh.yaml)
  --capture-mode M        on | off | auto (mesh.yaml: capture: true | false | auto)

Ctrl-C (or \`mesh down\`) stops the sidecars (each stops its app), then the
control plane. Every service gets a ServiceEntry NAME.NS.svc.cluster.local.`,
  options: {
    filename: { type: 'string', short: 'f', multiple: true },
    'run-dir': { type: 'string' },
    quiet: { type: 'boolean' },
    capture: { type: 'boolean' },
    'capture-mode': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  async run(flags, _positionals, io) {
    const file = strings(flags, 'filename')[0];
    if (!file) throw new CliError(ExitCode.USAGE, 'mesh up needs -f mesh.yaml');
    let topology;
    try {
      topology = loadTopology(file);
    } catch (err) {
      throw new CliError(ExitCode.INVALID, (err as Error).message);
    }
    const runDir = resolve(str(flags, 'run-dir') ?? '.mesh/run');
    const quiet = flags.quiet === true;
    let capture: CaptureSetting | undefined;
    try {
      capture = flags.capture === true ? 'on' : str(flags, 'capture-mode') !== undefined ? parseCaptureSetting(str(flags, 'capture-mode'), '--capture-mode') : undefined;
    } catch (err) {
      throw new CliError(ExitCode.USAGE, (err as Error).message);
    }
    const up = new MeshUp({ topology, runDir, ...(capture ? { capture } : {}), ...(quiet ? {} : { console: (line: string) => io.out(`${line}\n`) }) });
    let stopped = false;
    const stop = new Promise<string>((done) => {
      const handler = (sig: string): void => {
        if (stopped) return;
        stopped = true;
        done(`${sig} received`);
      };
      process.on('SIGINT', handler);
      process.on('SIGTERM', handler);
    });
    try {
      const started = up.start();
      const first = await Promise.race([started.then(() => ''), stop]);
      if (first) {
        io.err(`mesh up: ${first}; stopping\n`);
        await up.stop();
        return ExitCode.OK;
      }
    } catch (err) {
      io.err(`mesh up: ${(err as Error).message}; stopping\n`);
      await up.stop();
      return ExitCode.FAILURE;
    }
    const seconds = ((Date.now() - up.startedAt) / 1000).toFixed(1);
    // `--server` is only needed when the control plane could not take the usual API port.
    const server = up.controlPlane === 'http://127.0.0.1:15080' ? '' : ` --server ${up.controlPlane}`;
    const hasGatewayConfig = topology.apply.some((f) => /gateway/i.test(f));
    const gw = !topology.gateway
      ? ''
      : hasGatewayConfig
        ? `\n  product page, through the ingress gateway:\n    http://127.0.0.1:8080/productpage`
        : `\n  through the ingress gateway, once a Gateway on port 8080 is applied:\n    npx mesh apply${server} -f ../shared/istio-samples/bookinfo/networking/bookinfo-gateway.yaml\n    http://127.0.0.1:8080/productpage`;
    io.out(`\nmesh up: ${topology.services.length} services ready in ${seconds} s (control plane ${up.controlPlane}, logs in ${runDir}/logs)${gw}
  Istio's sample rules apply as they are, for example:
    npx mesh apply${server} -f ../shared/istio-samples/bookinfo/networking/destination-rule-all.yaml
    npx mesh apply${server} -f ../shared/istio-samples/bookinfo/networking/virtual-service-all-v1.yaml
  Ctrl-C or \`mesh down\` stops everything.\n`);
    const reason = await Promise.race([stop, up.firstExit()]);
    io.err(`mesh up: ${reason}; stopping\n`);
    await up.stop();
    return ExitCode.OK;
  },
};
