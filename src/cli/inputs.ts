// Reads the `-f FILE|DIR|-` arguments of a command into validated results,
// keeping file names and lines for error messages.

import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { KindRegistry, ValidationResult } from '../api/index.ts';
import { validateText } from '../api/index.ts';
import { CliError, ExitCode } from './exit-codes.ts';

const CONFIG_FILE = /\.(ya?ml|json)$/i;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

interface InputFile {
  readonly path: string;
  /** Found by walking a directory rather than named by the user. */
  readonly fromDirectory: boolean;
}

/** Expands each -f argument to the config files it names, in a stable order. */
export async function expandPaths(paths: readonly string[]): Promise<InputFile[]> {
  const out: InputFile[] = [];
  for (const path of paths) {
    if (path === '-') {
      out.push({ path: '-', fromDirectory: false });
      continue;
    }
    let info;
    try {
      info = await stat(path);
    } catch {
      throw new CliError(ExitCode.USAGE, `the path "${path}" does not exist`);
    }
    if (info.isDirectory()) {
      const entries = await readdir(path, { recursive: true, withFileTypes: true });
      const files = entries.filter((e) => e.isFile() && CONFIG_FILE.test(e.name)).map((e) => join(e.parentPath, e.name));
      out.push(...files.sort().map((f) => ({ path: f, fromDirectory: true })));
    } else out.push({ path, fromDirectory: false });
  }
  return out;
}

function isNotAnObject(result: ValidationResult): boolean {
  const raw = result.object as { apiVersion?: unknown; kind?: unknown };
  return (raw.apiVersion === undefined || raw.apiVersion === '') && (raw.kind === undefined || raw.kind === '');
}

export async function readConfigInputs(paths: readonly string[], registry: KindRegistry, defaultNamespace?: string): Promise<ValidationResult[]> {
  if (paths.length === 0) throw new CliError(ExitCode.USAGE, 'no input: pass -f FILE, -f DIR or -f - (standard input)');
  const results: ValidationResult[] = [];
  for (const { path, fromDirectory } of await expandPaths(paths)) {
    const text = path === '-' ? await readStdin() : await readFile(path, 'utf8');
    for (const result of validateText(text, registry, { file: path === '-' ? '<stdin>' : path, defaultNamespace })) {
      // A directory may hold other JSON/YAML data (a JWKS, a values file); as
      // kubectl does for files it was not asked about, pass those over.
      if (fromDirectory && isNotAnObject(result)) results.push({ ...result, diagnostics: [], ignored: 'not a config object (no apiVersion and kind); passed over' });
      else results.push(result);
    }
  }
  return results;
}
