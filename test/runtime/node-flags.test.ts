// Which of the sidecar V8 flags a process still needs (bin/mesh.js re-executes
// `mesh run`, `mesh gateway` and `mesh proxy` with them).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { missingSidecarFlags, SIDECAR_NODE_FLAGS } from '../../src/runtime/node-flags.ts';

test('a process started without V8 flags needs all of them', () => {
  assert.deepEqual(missingSidecarFlags(['--disable-warning=ExperimentalWarning']), [...SIDECAR_NODE_FLAGS]);
});

test('a process started with them needs none', () => {
  assert.deepEqual(missingSidecarFlags(['--disable-warning=ExperimentalWarning', ...SIDECAR_NODE_FLAGS]), []);
});

test("a flag the user gave in another form stands: another value, its opposite, underscores, a value as the next argument", () => {
  assert.deepEqual(missingSidecarFlags(['--max-semi-space-size=8']), ['--no-concurrent-array-buffer-sweeping']);
  assert.deepEqual(missingSidecarFlags(['--max_semi_space_size', '16']), ['--no-concurrent-array-buffer-sweeping']);
  assert.deepEqual(missingSidecarFlags(['--concurrent-array-buffer-sweeping']), ['--max-semi-space-size=4']);
});
