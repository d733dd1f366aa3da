// The light entry of sidecar processes: `mesh run` and `mesh gateway` load
// the agent and the proxy only, not the control plane that `mesh` as a whole
// carries. `mesh up` starts one per replica at once, so load time is start time.

import type { CliIo, Command } from './command.ts';
import { gatewayCommand } from './commands/gateway.ts';
import { runCommand } from './commands/run.ts';
import { ExitCode } from './exit-codes.ts';
import { executeCommand } from './run-command.ts';

export const SIDECAR_COMMANDS: readonly Command[] = [runCommand, gatewayCommand];

const processIo: CliIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const [name, ...rest] = argv;
  const command = SIDECAR_COMMANDS.find((c) => c.name === name);
  if (!command) {
    io.err(`error: the sidecar entry runs ${SIDECAR_COMMANDS.map((c) => c.name).join(' and ')}, not "${name ?? ''}"\n`);
    return ExitCode.USAGE;
  }
  return executeCommand(command, rest, io);
}
