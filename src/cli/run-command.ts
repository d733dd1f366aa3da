// Runs one sub-command: parses its flags, prints its help, runs it, and turns
// failures into a message and a stable exit code. Shared by the full `mesh`
// entry (main.ts) and the light one (light-main.ts).

import { parseArgs } from 'node:util';
import { isMeshError } from '../common/index.ts';
import type { CliIo, Command } from './command.ts';
import { CliError, ExitCode } from './exit-codes.ts';

export async function executeCommand(command: Command, rest: readonly string[], io: CliIo): Promise<number> {
  let flags;
  let positionals: string[];
  try {
    const parsed = parseArgs({ args: [...rest], options: command.options, allowPositionals: command.positionals ?? false, strict: true });
    flags = parsed.values;
    positionals = parsed.positionals;
  } catch (err) {
    io.err(`error: ${(err as Error).message}\n\n${command.help}\n`);
    return ExitCode.USAGE;
  }
  if (flags.help === true) {
    io.out(`${command.help}\n`);
    return ExitCode.OK;
  }
  try {
    return await command.run(flags, positionals, io);
  } catch (err) {
    if (err instanceof CliError) {
      io.err(`error: ${err.message}\n`);
      return err.exitCode;
    }
    if (isMeshError(err)) {
      // An expected failure (bad MeshConfig, damaged store...): its message says what to do.
      io.err(`error: ${err.message} [${err.code}]\n`);
      return err.code === 'MESH_ERR_API_INVALID' || err.code === 'MESH_ERR_API_PARSE' ? ExitCode.INVALID : ExitCode.FAILURE;
    }
    io.err(`error: ${(err as Error).stack ?? String(err)}\n`);
    return ExitCode.FAILURE;
  }
}
