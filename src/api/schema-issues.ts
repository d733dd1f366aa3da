// Turning zod's structural issues into diagnostics with field paths and
// sentences a user can act on; shared by object and MeshConfig validation.

import type { z } from 'zod';
import type { Diagnostics, FieldPath } from './diagnostics.ts';

/** Turns a zod issue into a diagnostic with a field path and a sentence a user can act on. */
export function reportSchemaIssue(diag: Diagnostics, base: FieldPath, issue: z.core.$ZodIssue): void {
  let path = base;
  for (const segment of issue.path) path = typeof segment === 'number' ? path.index(segment) : path.key(String(segment));
  switch (issue.code) {
    case 'unrecognized_keys':
      for (const key of issue.keys) diag.error(path.key(key), `unknown field "${key}"`);
      return;
    case 'invalid_type':
      if (issue.input === undefined) diag.error(path, `required field is missing (expected ${issue.expected})`);
      else diag.error(path, `expected ${issue.expected}, got ${describeValue(issue.input)}`);
      return;
    case 'invalid_value':
      diag.error(path, `invalid value ${describeValue(issue.input)}; allowed: ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`);
      return;
    case 'too_small':
    case 'too_big':
      diag.error(path, `${issue.message.replace(/^Too (small|big): /, '')}`);
      return;
    case 'invalid_union':
      diag.error(path, `invalid value ${describeValue(issue.input)}`);
      return;
    default:
      diag.error(path, issue.message);
  }
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `string ${JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value)}`;
  return `${typeof value} ${String(value)}`;
}

