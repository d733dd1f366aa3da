// `mesh delete KIND NAME` or `mesh delete -f FILE`: remove config.

import { istioKinds } from '../../api/index.ts';
import { ApiClient, ApiRequestError } from '../client.ts';
import type { Command } from '../command.ts';
import { COMMON_FLAGS, str, strings } from '../command.ts';
import { CliError, ExitCode } from '../exit-codes.ts';
import { readConfigInputs } from '../inputs.ts';
import { resolveKind } from '../kind-arg.ts';

export const deleteCommand: Command = {
  name: 'delete',
  summary: 'Delete config objects',
  help: `Usage: mesh delete KIND NAME [NAME...] [-n NAMESPACE] [--dry-run] [--server URL]
       mesh delete -f FILE|DIR|- [--ignore-not-found]

Exit codes: 0 deleted, 4 not found (unless --ignore-not-found), 3 control plane unreachable.`,
  positionals: true,
  options: { filename: COMMON_FLAGS.filename, namespace: COMMON_FLAGS.namespace, server: COMMON_FLAGS.server, 'dry-run': { type: 'boolean' }, 'ignore-not-found': { type: 'boolean' }, help: COMMON_FLAGS.help },
  async run(flags, args, io) {
    const client = new ApiClient({ server: str(flags, 'server') });
    const dryRun = flags['dry-run'] === true;
    const ignoreNotFound = flags['ignore-not-found'] === true;
    const targets: { kind: ReturnType<typeof resolveKind>; namespace: string; name: string }[] = [];
    const files = strings(flags, 'filename');
    if (files.length > 0) {
      if (args.length > 0) throw new CliError(ExitCode.USAGE, 'give either -f or KIND NAME, not both');
      for (const r of await readConfigInputs(files, istioKinds, str(flags, 'namespace'))) {
        if (r.ignored || !r.kind) continue;
        targets.push({ kind: r.kind, namespace: r.object.metadata.namespace ?? 'default', name: r.object.metadata.name });
      }
    } else {
      const kind = resolveKind(args[0]);
      if (args.length < 2) throw new CliError(ExitCode.USAGE, 'a NAME is required: mesh delete KIND NAME');
      for (const name of args.slice(1)) targets.push({ kind, namespace: str(flags, 'namespace') ?? 'default', name });
    }
    let missing = 0;
    for (const t of targets) {
      try {
        io.out(`${await client.delete(t.kind, t.namespace, t.name, dryRun)}\n`);
      } catch (err) {
        if (err instanceof ApiRequestError && err.status === 404) {
          if (!ignoreNotFound) {
            io.err(`error: ${t.kind.kind} ${t.namespace}/${t.name} not found\n`);
            missing++;
          }
          continue;
        }
        throw err;
      }
    }
    return missing > 0 ? ExitCode.NOT_FOUND : ExitCode.OK;
  },
};
