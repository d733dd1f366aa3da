// `mesh apply -f FILE|DIR|- [--dry-run]`: validate locally, then create or update through the control plane.

import { formatDiagnostic, hasErrors, istioKinds, kubernetesForm } from '../../api/index.ts';
import { ApiClient, ApiRequestError } from '../client.ts';
import type { Command } from '../command.ts';
import { COMMON_FLAGS, str, strings } from '../command.ts';
import { ExitCode } from '../exit-codes.ts';
import { readConfigInputs } from '../inputs.ts';
import { describeObject } from '../../api/index.ts';

export const applyCommand: Command = {
  name: 'apply',
  summary: 'Create or update config in the mesh',
  help: `Usage: mesh apply -f FILE|DIR|- [-f ...] [-n NAMESPACE] [--dry-run] [--server URL]

Validates every object first; if any is invalid nothing is applied and the
errors are printed. Objects without a namespace go to -n or "default".
With --dry-run the control plane validates and reports, changing nothing.

Exit codes: 0 applied, 1 invalid config, 3 control plane unreachable, 5 conflict.`,
  options: { filename: COMMON_FLAGS.filename, namespace: COMMON_FLAGS.namespace, server: COMMON_FLAGS.server, 'dry-run': { type: 'boolean' }, help: COMMON_FLAGS.help },
  async run(flags, _args, io) {
    const namespace = str(flags, 'namespace');
    const results = await readConfigInputs(strings(flags, 'filename'), istioKinds, namespace);
    for (const r of results) if (r.ignored) io.err(`note: ${r.source?.file ?? ''}${r.source?.line ? `:${r.source.line}` : ''}: ${r.ignored}\n`);
    const invalid = results.filter(hasErrors);
    if (invalid.length > 0) {
      for (const r of invalid) for (const d of r.diagnostics) io.err(`${formatDiagnostic(r, d)}\n`);
      io.err(`error: ${invalid.length} invalid object(s); nothing was applied\n`);
      return ExitCode.INVALID;
    }
    // Sent as written (a Secret's data beside metadata): the server validates it again.
    const objects = results.filter((r) => !r.ignored).map((r) => kubernetesForm(r.object, r.kind));
    if (objects.length === 0) {
      io.out('nothing to apply\n');
      return ExitCode.OK;
    }
    const dryRun = flags['dry-run'] === true;
    const client = new ApiClient({ server: str(flags, 'server') });
    try {
      const response = await client.apply(objects, { dryRun, namespace });
      for (const w of response.warnings) io.err(`${w}\n`);
      for (const a of response.applied) io.out(`${describeObject(a.object)} ${a.action}${dryRun ? ' (dry run)' : ''}\n`);
      return ExitCode.OK;
    } catch (err) {
      if (err instanceof ApiRequestError && err.body.results) {
        for (const r of err.body.results) for (const d of r.diagnostics) io.err(`${d.severity}: ${describeObject(r.object)}: ${d.path ? `${d.path}: ` : ''}${d.message}\n`);
      }
      throw err;
    }
  },
};
