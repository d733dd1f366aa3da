// `mesh analyze`: cross-object checks (istioctl analyze) over files and/or the store.

import type { ConfigObject, ValidationResult } from '../../api/index.ts';
import { formatDiagnostic, hasErrors, istioKinds } from '../../api/index.ts';
import { analyze, analysisToJson, formatAnalysis, listAnalyzers } from '../../galley/analysis/index.ts';
import type { AnalysisMessage } from '../../galley/analysis/index.ts';
import { ApiClient } from '../client.ts';
import type { Command } from '../command.ts';
import { COMMON_FLAGS, str, strings } from '../command.ts';
import { ExitCode } from '../exit-codes.ts';
import { readConfigInputs } from '../inputs.ts';
import { parseOutputFormat } from '../output.ts';

export const analyzeCommand: Command = {
  name: 'analyze',
  summary: 'Find problems across config objects (istioctl analyze)',
  help: `Usage: mesh analyze [-f FILE|DIR|- ...] [--use-store] [-n NAMESPACE] [-o table|json]
                    [--root-namespace istio-system] [--list-analyzers] [--server URL]

Without -f, analyzes the config in the control plane's store. With -f,
analyzes those files (Kubernetes Services, Deployments and Pods in them count
as services and workloads); add --use-store to analyze them together with the
store, the files taking precedence.

Exit code: 1 when any message has level Error (or a file is invalid), else 0.`,
  options: {
    filename: COMMON_FLAGS.filename,
    namespace: COMMON_FLAGS.namespace,
    output: COMMON_FLAGS.output,
    server: COMMON_FLAGS.server,
    'use-store': { type: 'boolean' },
    'root-namespace': { type: 'string' },
    'list-analyzers': { type: 'boolean' },
    help: COMMON_FLAGS.help,
  },
  async run(flags, _args, io) {
    if (flags['list-analyzers'] === true) {
      for (const a of listAnalyzers()) io.out(`${a.name}: ${a.description}\n`);
      return ExitCode.OK;
    }
    const format = parseOutputFormat(str(flags, 'output'), 'table');
    const files = strings(flags, 'filename');
    let fileResults: ValidationResult[] = [];
    if (files.length > 0) fileResults = await readConfigInputs(files, istioKinds, str(flags, 'namespace'));
    const invalid = fileResults.filter(hasErrors);
    for (const r of invalid) for (const d of r.diagnostics) io.err(`${formatDiagnostic(r, d)}\n`);

    const objects = new Map<string, ConfigObject>();
    const keyOf = (o: ConfigObject): string => `${o.apiVersion.split('/')[0]}/${o.kind}/${o.metadata.namespace}/${o.metadata.name}`;
    if (files.length === 0 || flags['use-store'] === true) {
      const client = new ApiClient({ server: str(flags, 'server') });
      for (const kind of istioKinds.all()) for (const o of await client.list(kind)) objects.set(keyOf(o), o);
    }
    for (const r of fileResults) if (!hasErrors(r)) objects.set(keyOf(r.object), r.object);

    // Messages about objects read from files point at the file and line of the field.
    const fromFile = new Map<ConfigObject, ValidationResult>(fileResults.map((r) => [r.object, r]));
    const locate = (object: ConfigObject, path: string | undefined): { file?: string; line?: number } | undefined => {
      const r = fromFile.get(object);
      return r && { file: r.source?.file, line: (path ? r.lineOf?.(path) : undefined) ?? r.source?.line };
    };
    const messages: AnalysisMessage[] = analyze([...objects.values()], { rootNamespace: str(flags, 'root-namespace'), locate });
    if (format === 'json') io.out(`${JSON.stringify(analysisToJson(messages), null, 2)}\n`);
    else if (messages.length === 0) io.out('✔ No validation issues found when analyzing the given config.\n');
    else io.out(formatAnalysis(messages));
    const errors = messages.some((m) => m.level === 'Error') || invalid.length > 0;
    return errors ? ExitCode.INVALID : ExitCode.OK;
  },
};
