// `mesh get KIND [NAME]`: read config from the control plane.

import type { ConfigObject } from '../../api/index.ts';
import { secretKind } from '../../api/index.ts';
import { ApiClient } from '../client.ts';
import type { Command } from '../command.ts';
import { COMMON_FLAGS, str } from '../command.ts';
import { ExitCode } from '../exit-codes.ts';
import { resolveKind } from '../kind-arg.ts';
import { formatObjects, parseOutputFormat } from '../output.ts';
import { formatSecretTable, redactedSecret } from '../secret-output.ts';

export const getCommand: Command = {
  name: 'get',
  summary: 'Show config objects',
  help: `Usage: mesh get KIND [NAME] [-n NAMESPACE | -A] [-o table|yaml|json] [--server URL]

KIND is a kind, its plural or short name: virtualservices, vs, dr, gw, se,
peerauthentications, authorizationpolicies, ... Objects are shown in the
apiVersion they were written with. Secrets show their type, keys and
certificate subject and expiry; -o yaml|json replaces every data value with
its size (key material is never printed).

Exit codes: 0 found, 4 not found, 3 control plane unreachable.`,
  positionals: true,
  options: { namespace: COMMON_FLAGS.namespace, output: COMMON_FLAGS.output, server: COMMON_FLAGS.server, 'all-namespaces': { type: 'boolean', short: 'A' }, help: COMMON_FLAGS.help },
  async run(flags, args, io) {
    const kind = resolveKind(args[0]);
    const format = parseOutputFormat(str(flags, 'output'));
    const client = new ApiClient({ server: str(flags, 'server') });
    const namespace = flags['all-namespaces'] === true ? undefined : (str(flags, 'namespace') ?? 'default');
    // Secrets never leave the CLI with their key material (secret-output.ts).
    const isSecret = kind === secretKind;
    const show = (objects: ConfigObject[], single: boolean): string =>
      isSecret ? (format === 'table' ? formatSecretTable(objects) : formatObjects(objects.map(redactedSecret), format, single)) : formatObjects(objects, format, single);
    if (args[1] !== undefined) {
      const obj = await client.get(kind, namespace ?? 'default', args[1]);
      io.out(show([obj], true));
      return ExitCode.OK;
    }
    const items = await client.list(kind, namespace);
    if (items.length === 0 && format === 'table') {
      io.err(`No ${kind.plural} found${namespace ? ` in namespace ${namespace}` : ''}.\n`);
      return ExitCode.OK;
    }
    io.out(show(items, false));
    return ExitCode.OK;
  },
};
