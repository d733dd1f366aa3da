// The dependency direction between components (DESIGN.md), enforced with
// dependency-cruiser and the rules in .dependency-cruiser.cjs.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { cruise } from 'dependency-cruiser';

const require = createRequire(import.meta.url);
const ruleSet = require('../.dependency-cruiser.cjs') as { forbidden: unknown[]; options: Record<string, unknown> };

async function violations(root: string, baseDir: string): Promise<string[]> {
  const result = await cruise([root], { ...ruleSet.options, baseDir, validate: true, ruleSet: { forbidden: ruleSet.forbidden } } as never);
  const output = result.output as { summary: { violations: { rule: { name: string }; from: string; to: string }[] } };
  return output.summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`);
}

test('the source tree follows the dependency direction between components', async () => {
  assert.deepEqual(await violations('src', process.cwd()), []);
});

test('a proxy module importing Galley is reported (the rules can fail)', async () => {
  const found = await violations('src', new URL('./fixtures/architecture/', import.meta.url).pathname);
  assert.deepEqual(found, ['data-plane-meets-control-plane-on-the-wire: src/proxy/listener.ts -> src/galley/store.ts']);
});
