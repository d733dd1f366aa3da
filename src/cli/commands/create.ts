// `mesh create secret tls|generic NAME`: a Kubernetes Secret holding a gateway
// credential (Istio's credentialName), made from files as kubectl makes it.
// Like kubectl create, it refuses an existing Secret; to replace one, pipe
// `--dry-run -o yaml` into `mesh apply -f -`.

import { readFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import { describeObject, formatDiagnostic, hasErrors, istioKinds, kubernetesForm, secretKind, validateObject } from '../../api/index.ts';
import { ApiClient, ApiRequestError } from '../client.ts';
import type { Command, FlagValues } from '../command.ts';
import { COMMON_FLAGS, str, strings } from '../command.ts';
import { CliError, ExitCode } from '../exit-codes.ts';

/** Files larger than a Secret may be are refused before they are read whole. */
const MAX_FILE_BYTES = 1024 * 1024;

async function readInput(path: string, flag: string): Promise<Buffer> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    throw new CliError(ExitCode.USAGE, `${flag} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (data.length > MAX_FILE_BYTES) throw new CliError(ExitCode.USAGE, `${flag} ${path}: ${data.length} bytes; a Secret holds at most ${MAX_FILE_BYTES}`);
  return data;
}

/** The Secret's `type` and base64 `data` from the command line. */
async function secretContent(variant: string, flags: FlagValues): Promise<{ type: string; data: Record<string, string> }> {
  const data: Record<string, string> = {};
  if (variant === 'tls') {
    const cert = str(flags, 'cert');
    const key = str(flags, 'key');
    if (!cert || !key) throw new CliError(ExitCode.USAGE, 'mesh create secret tls needs --cert FILE and --key FILE');
    data['tls.crt'] = (await readInput(cert, '--cert')).toString('base64');
    data['tls.key'] = (await readInput(key, '--key')).toString('base64');
    const ca = str(flags, 'ca');
    if (ca) data['ca.crt'] = (await readInput(ca, '--ca')).toString('base64');
    return { type: 'kubernetes.io/tls', data };
  }
  if (variant === 'generic') {
    const files = strings(flags, 'from-file');
    if (files.length === 0) throw new CliError(ExitCode.USAGE, 'mesh create secret generic needs --from-file=KEY=FILE (cert, key, cacert or tls.crt, tls.key, ca.crt)');
    for (const spec of files) {
      const eq = spec.indexOf('=');
      const path = eq > 0 ? spec.slice(eq + 1) : spec;
      const key = eq > 0 ? spec.slice(0, eq) : (path.split('/').pop() ?? path);
      if (data[key] !== undefined) throw new CliError(ExitCode.USAGE, `--from-file: key "${key}" given twice`);
      data[key] = (await readInput(path, '--from-file')).toString('base64');
    }
    return { type: 'Opaque', data };
  }
  throw new CliError(ExitCode.USAGE, `unknown secret type "${variant}"; use tls or generic`);
}

export const createCommand: Command = {
  name: 'create',
  summary: 'Create a Secret holding a gateway TLS credential',
  help: `Usage: mesh create secret tls NAME --cert FILE --key FILE [--ca FILE] [-n NAMESPACE]
       mesh create secret generic NAME --from-file=KEY=FILE ... [-n NAMESPACE]

A Secret for a Gateway server's tls.credentialName, as Istio reads it:
  tls       type kubernetes.io/tls with tls.crt, tls.key (and ca.crt with --ca)
  generic   type Opaque with the keys given: cert, key, cacert (or tls.crt,
            tls.key, ca.crt); a CA-only NAME-cacert Secret for MUTUAL mode
The Secret must be in the gateway's namespace (istio-system for mesh gateway).
The certificate chain and key are checked (PEM, key matches certificate)
before anything is sent.

  -n, --namespace NS   the Secret's namespace (default "default", as kubectl)
  --dry-run            validate only; with -o yaml|json print the Secret instead
  -o, --output FORMAT  yaml or json (with --dry-run): to replace an existing
                       Secret, pipe it into \`mesh apply -f -\`
  --server URL         the control plane's API (default $MESH_SERVER)

Exit codes: 0 created, 1 invalid certificate or key, 2 bad usage,
3 control plane unreachable, 5 the Secret exists already.`,
  positionals: true,
  options: {
    namespace: COMMON_FLAGS.namespace,
    output: COMMON_FLAGS.output,
    server: COMMON_FLAGS.server,
    cert: { type: 'string' },
    key: { type: 'string' },
    ca: { type: 'string' },
    'from-file': { type: 'string', multiple: true },
    'dry-run': { type: 'boolean' },
    help: COMMON_FLAGS.help,
  },
  async run(flags, args, io) {
    const [what, variant, name, ...extra] = args;
    if (what !== 'secret') throw new CliError(ExitCode.USAGE, `mesh create makes Secrets only: mesh create secret tls|generic NAME (got "${what ?? ''}")`);
    if (!variant || !name || extra.length > 0) throw new CliError(ExitCode.USAGE, 'usage: mesh create secret tls|generic NAME [flags]; see mesh create --help');
    const output = str(flags, 'output');
    const dryRun = flags['dry-run'] === true;
    if (output !== undefined && (!dryRun || (output !== 'yaml' && output !== 'json'))) throw new CliError(ExitCode.USAGE, '-o yaml|json goes with --dry-run (to pipe the Secret into mesh apply -f -)');
    const namespace = str(flags, 'namespace') ?? 'default';
    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, ...(await secretContent(variant, flags)) };
    const result = validateObject(secret, istioKinds);
    if (hasErrors(result)) {
      for (const d of result.diagnostics) io.err(`${formatDiagnostic(result, d)}\n`);
      return ExitCode.INVALID;
    }
    for (const d of result.diagnostics) io.err(`${formatDiagnostic(result, d)}\n`);
    if (dryRun && output !== undefined) {
      const text = kubernetesForm(result.object, secretKind);
      io.out(output === 'json' ? `${JSON.stringify(text, null, 2)}\n` : stringify(text));
      return ExitCode.OK;
    }
    const client = new ApiClient({ server: str(flags, 'server') });
    try {
      await client.get(secretKind, namespace, name);
      throw new CliError(ExitCode.CONFLICT, `${describeObject(result.object)} already exists; to replace it: mesh create secret ${variant} ${name} ... --dry-run -o yaml | mesh apply -f -`);
    } catch (err) {
      if (!(err instanceof ApiRequestError && err.status === 404)) throw err;
    }
    const response = await client.apply([kubernetesForm(result.object, secretKind)], { dryRun });
    for (const a of response.applied) io.out(`${describeObject(a.object)} ${a.action === 'unchanged' ? 'unchanged' : 'created'}${dryRun ? ' (dry run)' : ''}\n`);
    return ExitCode.OK;
  },
};
