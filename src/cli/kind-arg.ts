// Resolves the KIND argument of get/delete (`vs`, `virtualservices`, `VirtualService`).

import type { KindDefinition } from '../api/index.ts';
import { istioKinds } from '../api/index.ts';
import { CliError, ExitCode } from './exit-codes.ts';

export function resolveKind(name: string | undefined): KindDefinition {
  if (!name) throw new CliError(ExitCode.USAGE, 'a KIND is required, e.g. `virtualservices` or `vs`');
  const kind = istioKinds.resolve(name);
  if (!kind) {
    const known = istioKinds.all().map((k) => k.plural).sort().join(', ');
    throw new CliError(ExitCode.NOT_FOUND, `unknown kind "${name}"; known kinds: ${known}`);
  }
  return kind;
}
