// Shared helpers of the networking.istio.io tests: validate one spec of a kind
// and split the diagnostics into [path, message] pairs by severity.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { istioKinds, validateObject } from '../../src/api/index.ts';

export type Pair = [path: string, message: string];

export interface RuleCase {
  readonly name: string;
  readonly spec: unknown;
  readonly errors: Pair[];
  readonly warnings?: Pair[];
  readonly namespace?: string;
}

export function diagnosticsOf(kind: string, spec: unknown, opts: { version?: string; namespace?: string } = {}): { errors: Pair[]; warnings: Pair[] } {
  const result = validateObject(
    { apiVersion: `networking.istio.io/${opts.version ?? 'v1'}`, kind, metadata: { name: 'x', namespace: opts.namespace ?? 'default' }, spec },
    istioKinds,
  );
  const pick = (sev: string): Pair[] => result.diagnostics.filter((d) => d.severity === sev).map((d) => [d.path, d.message]);
  return { errors: pick('error'), warnings: pick('warning') };
}

/** One `it` per case: the diagnostics must be exactly the expected ones, nothing more. */
export function runCases(kind: string, cases: readonly RuleCase[]): void {
  for (const c of cases) {
    it(c.name, () => {
      const got = diagnosticsOf(kind, c.spec, { namespace: c.namespace });
      assert.deepEqual(got.errors, c.errors);
      assert.deepEqual(got.warnings, c.warnings ?? []);
    });
  }
}
