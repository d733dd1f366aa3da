// Destination (host, subset, port) and the pieces every route shares: weighted
// destinations and header manipulation.

import type { Diagnostics, FieldPath } from '../../diagnostics.ts';
import { int32, portSelector, strict, stringMap, z } from '../../schema.ts';
import { checkPort, isDns1123Label } from '../../validators.ts';
import { checkHeaderOperationName, DNS1123_LABEL_RULE, wildcardDomainProblem } from './checks.ts';

export const destination = strict({
  host: z.string(),
  subset: z.string().optional(),
  port: portSelector.optional(),
});
export type Destination = z.infer<typeof destination>;

export const headerOperations = strict({
  set: stringMap.optional(),
  add: stringMap.optional(),
  remove: z.array(z.string()).optional(),
});
export type HeaderOperations = z.infer<typeof headerOperations>;

export const headers = strict({
  request: headerOperations.optional(),
  response: headerOperations.optional(),
});
export type Headers = z.infer<typeof headers>;

/** L4 weighted destination (TCP and TLS routes). */
export const routeDestination = strict({
  destination: destination.optional(),
  weight: int32.optional(),
});

/** validateSubsetName. */
export function checkSubsetName(diag: Diagnostics, path: FieldPath, name: string): void {
  if (name === '') diag.error(path, 'subset name cannot be empty');
  else if (!isDns1123Label(name)) diag.error(path, `subset name is invalid: "${name}": ${DNS1123_LABEL_RULE}`);
}

/** validateDestination: one service (not the full wildcard), a valid subset and port. */
export function checkDestination(diag: Diagnostics, path: FieldPath, d: Destination): void {
  if (d.host === '*') diag.error(path.key('host'), 'invalid destination host *: a destination must name a service, not the full wildcard');
  else {
    const problem = wildcardDomainProblem(d.host);
    if (problem) diag.error(path.key('host'), problem);
  }
  if (d.subset !== undefined && d.subset !== '') checkSubsetName(diag, path.key('subset'), d.subset);
  if (d.port !== undefined) checkPort(diag, path.key('port').key('number'), d.port.number);
}

/** Header names to set/add/remove. Only the request side may set or add the authority. */
export function checkHeaders(diag: Diagnostics, path: FieldPath, h: Headers | undefined): void {
  if (!h) return;
  for (const side of ['request', 'response'] as const) {
    const ops = h[side];
    if (!ops) continue;
    const p = path.key(side);
    const allowAuthority = side === 'request';
    for (const op of ['set', 'add'] as const) {
      for (const name of Object.keys(ops[op] ?? {})) checkHeaderOperationName(diag, p.key(op).key(name), name, { allowAuthority });
    }
    (ops.remove ?? []).forEach((name, i) => checkHeaderOperationName(diag, p.key('remove').index(i), name));
  }
}

/**
 * validateHTTPRouteDestinations / validateRouteDestinations: every destination
 * valid; weights are relative (a destination gets weight/sum), never negative,
 * and with several destinations not all zero; a sum other than 100 is a warning.
 */
export function checkWeightedDestinations(
  diag: Diagnostics,
  path: FieldPath,
  routes: readonly { destination?: Destination; weight?: number; headers?: Headers }[],
): void {
  let total = 0;
  routes.forEach((r, i) => {
    const p = path.index(i);
    if (!r.destination) diag.error(p.key('destination'), 'destination is required');
    else checkDestination(diag, p.key('destination'), r.destination);
    checkHeaders(diag, p.key('headers'), r.headers);
    const weight = r.weight ?? 0;
    if (weight < 0) diag.error(p.key('weight'), `weight ${weight} must not be negative`);
    total += weight;
  });
  if (routes.length > 1 && total === 0) {
    diag.error(path, 'total destination weight = 0: with several destinations at least one needs a weight above 0');
  } else if (routes.length > 1 && total !== 100) {
    // Istio once required 100 and its docs still say weights "should" sum to it;
    // today they are relative, so this is a warning, not an error.
    diag.warn(path, `destination weights sum to ${total}, not 100; each destination gets weight/${total} of the traffic`);
  }
}
