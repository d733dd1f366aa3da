// `mesh proxy -c FILE`: runs the sidecar proxy from an Envoy v3 bootstrap
// (YAML or JSON), like `envoy -c`, until Ctrl-C, SIGTERM or /quitquitquit.

import { resolve } from 'node:path';
import { createLogger } from '../../common/index.ts';
import { Proxy, loadBootstrapFile } from '../../proxy/index.ts';
import type { Command } from '../command.ts';
import { str } from '../command.ts';
import { CliError, ExitCode } from '../exit-codes.ts';

export const proxyCommand: Command = {
  name: 'proxy',
  summary: 'Run the sidecar proxy from an Envoy v3 bootstrap file',
  help: `Usage: mesh proxy -c FILE

  -c, --config-path FILE   Envoy v3 bootstrap (YAML or JSON): node, admin,
                           static_resources (listeners, clusters), dynamic_resources

Logs are JSON lines on stdout; access logs go where the bootstrap says.
Stops cleanly on Ctrl-C, SIGTERM or POST /quitquitquit on the admin port.`,
  options: {
    'config-path': { type: 'string', short: 'c' },
    help: { type: 'boolean', short: 'h' },
  },
  async run(flags) {
    const file = str(flags, 'config-path');
    if (!file) throw new CliError(ExitCode.USAGE, 'mesh proxy needs -c FILE (an Envoy v3 bootstrap)');
    let proxy: Proxy;
    try {
      proxy = await Proxy.start({ bootstrap: loadBootstrapFile(resolve(file)), logger: createLogger('proxy') });
    } catch (err) {
      throw new CliError(ExitCode.INVALID, (err as Error).message);
    }
    await new Promise<void>((done) => {
      const stop = (): void => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        done();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
      void proxy.quit.then(stop);
    });
    await proxy.stop();
    return ExitCode.OK;
  },
};
