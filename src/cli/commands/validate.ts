// `mesh validate -f FILE|DIR|-`: structural and semantic validation, offline.

import { formatDiagnostic, hasErrors, istioKinds } from '../../api/index.ts';
import type { Command } from '../command.ts';
import { COMMON_FLAGS, str, strings } from '../command.ts';
import { ExitCode } from '../exit-codes.ts';
import { readConfigInputs } from '../inputs.ts';
import { parseOutputFormat } from '../output.ts';

export const validateCommand: Command = {
  name: 'validate',
  summary: 'Validate config files without applying them',
  help: `Usage: mesh validate -f FILE|DIR|- [-f ...] [-n NAMESPACE] [-o table|json]

Checks every object against Istio's schema and semantic rules. Errors and
warnings name the object, file, line and field. Kubernetes kinds (Service,
Deployment, ...) are passed over with a note.

Exit code: 0 when no object has errors (warnings allowed), 1 otherwise.`,
  options: { filename: COMMON_FLAGS.filename, namespace: COMMON_FLAGS.namespace, output: COMMON_FLAGS.output, help: COMMON_FLAGS.help },
  async run(flags, _args, io) {
    const format = parseOutputFormat(str(flags, 'output'), 'table');
    const results = await readConfigInputs(strings(flags, 'filename'), istioKinds, str(flags, 'namespace'));
    const invalid = results.filter(hasErrors).length;
    if (format === 'json') {
      io.out(`${JSON.stringify(results.map((r) => ({ kind: r.object.kind, namespace: r.object.metadata.namespace, name: r.object.metadata.name, file: r.source?.file, line: r.source?.line, ignored: r.ignored, diagnostics: r.diagnostics })), null, 2)}\n`);
    } else {
      for (const r of results) {
        if (r.ignored) io.err(`note: ${r.source?.file ?? ''}${r.source?.line ? `:${r.source.line}` : ''}: ${r.ignored}\n`);
        for (const d of r.diagnostics) io.err(`${formatDiagnostic(r, d)}\n`);
      }
      const valid = results.filter((r) => !r.ignored && !hasErrors(r)).length;
      io.out(`${valid} valid, ${invalid} invalid, ${results.filter((r) => r.ignored).length} passed over\n`);
    }
    return invalid > 0 ? ExitCode.INVALID : ExitCode.OK;
  },
};
