// `mesh down`: stops the `mesh up` of a run directory (its pid file) and
// leaves no process of it behind.

import { resolve } from 'node:path';
import { meshDown } from '../../runtime/mesh-up.ts';
import type { Command } from '../command.ts';
import { str } from '../command.ts';
import { ExitCode } from '../exit-codes.ts';

export const downCommand: Command = {
  name: 'down',
  summary: 'Stop a running `mesh up`',
  help: `Usage: mesh down [--run-dir .mesh/run]

Sends SIGTERM to the \`mesh up\` of the run directory and waits (20 s) for it
to stop its sidecars, apps and control plane; whatever is left is killed.`,
  options: {
    'run-dir': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  async run(flags, _positionals, io) {
    const runDir = resolve(str(flags, 'run-dir') ?? '.mesh/run');
    if (!(await meshDown(runDir))) {
      io.err(`mesh down: no mesh up running (no pid file in ${runDir})\n`);
      return ExitCode.NOT_FOUND;
    }
    io.out('mesh down: stopped\n');
    return ExitCode.OK;
  },
};
