// The `mesh` command: finds the sub-command, parses its flags, runs it, and
// turns failures into a message and a stable exit code.

import { ENV_KNOBS } from '../common/index.ts';
import type { CliIo, Command } from './command.ts';
import { analyzeCommand } from './commands/analyze.ts';
import { bootstrapCommand } from './commands/bootstrap.ts';
import { proxyConfigCommand } from './commands/proxy-config.ts';
import { proxyCommand } from './commands/proxy.ts';
import { proxyStatusCommand } from './commands/proxy-status.ts';
import { applyCommand } from './commands/apply.ts';
import { controlPlaneCommand } from './commands/control-plane.ts';
import { deleteCommand } from './commands/delete.ts';
import { getCommand } from './commands/get.ts';
import { createCommand } from './commands/create.ts';
import { validateCommand } from './commands/validate.ts';
import { runCommand } from './commands/run.ts';
import { upCommand } from './commands/up.ts';
import { downCommand } from './commands/down.ts';
import { gatewayCommand } from './commands/gateway.ts';
import { ExitCode } from './exit-codes.ts';
import { executeCommand } from './run-command.ts';

const COMMANDS: readonly Command[] = [validateCommand, applyCommand, createCommand, getCommand, deleteCommand, analyzeCommand, controlPlaneCommand, proxyCommand, proxyStatusCommand, proxyConfigCommand, bootstrapCommand, runCommand, gatewayCommand, upCommand, downCommand];

const processIo: CliIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

function topLevelHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  const knobs = Object.values(ENV_KNOBS).map((k) => `  ${k.name.padEnd(16)} ${k.description}${k.defaultValue ? ` (default ${k.defaultValue})` : ''}`);
  return `mesh: a service mesh with the Istio architecture.

Usage: mesh COMMAND [flags]   (mesh COMMAND --help for its flags)

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Environment:
${knobs.join('\n')}

Exit codes: 0 ok, 1 invalid config or analysis errors, 2 usage error,
3 control plane unreachable, 4 not found, 5 conflict, 6 other failure.
`;
}

export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(topLevelHelp());
    return name === undefined ? ExitCode.USAGE : ExitCode.OK;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    io.err(`error: unknown command "${name}"\n\n${topLevelHelp()}`);
    return ExitCode.USAGE;
  }
  return executeCommand(command, rest, io);
}
