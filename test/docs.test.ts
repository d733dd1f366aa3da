// Every stable error code used in the source is documented in docs/errors.md.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './helpers/processes.ts';

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
    .map((e) => join(e.parentPath, e.name));
}

test('every MESH_ERR_ code in src/ is documented in docs/errors.md', () => {
  const doc = readFileSync(join(REPO_ROOT, 'docs/errors.md'), 'utf8');
  const codes = new Set<string>();
  for (const file of sourceFiles(join(REPO_ROOT, 'src'))) {
    for (const m of readFileSync(file, 'utf8').matchAll(/'(MESH_ERR_[A-Z0-9_]+)'/g)) codes.add(m[1]!);
  }
  assert.ok(codes.size > 5, 'expected to find the error codes in the source');
  const missing = [...codes].filter((c) => !doc.includes(`\`${c}\``)).sort();
  assert.deepEqual(missing, []);
});
