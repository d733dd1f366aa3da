// The durable store survives kill -9: a real child process writes a known
// stream of objects and is SIGKILLed at random moments, again and again on the
// same directory; after each kill the store must hold every acknowledged write
// exactly, at most the one write that was in flight beyond them, and nothing torn.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DurableStore } from '../../src/galley/durable-store.ts';
import { expectedAfter, opAt } from './fixtures/durable-ops.ts';

const NODE = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));
const WRITER = fileURLToPath(new URL('./fixtures/durable-writer.ts', import.meta.url));
const ROUNDS = 12;

interface Round {
  /** The revision the child found on open. */
  readonly openedAt: number;
  /** `[seq, name, resourceVersion]` of every acknowledged write. */
  readonly acks: [number, string, string][];
  readonly signal: NodeJS.Signals | null;
  readonly code: number | null;
  readonly stderr: string;
}

/** Runs the writer until it has acknowledged `killAfter` writes (0: as soon as it opened), then SIGKILLs it at a random moment shortly after. */
function runAndKill(dir: string, killAfter: number): Promise<Round> {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, ['--disable-warning=ExperimentalWarning', WRITER, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let openedAt = -1;
    const acks: [number, string, string][] = [];
    let stdout = '';
    let stderr = '';
    let killing = false;
    const kill = () => {
      if (killing) return;
      killing = true;
      // Half the kills land at once, half a little later, so they hit every phase of a write.
      const delayMs = Math.random() < 0.5 ? 0 : Math.random() * 4;
      setTimeout(() => child.kill('SIGKILL'), delayMs);
    };
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      let newline: number;
      while ((newline = stdout.indexOf('\n')) >= 0) {
        const [what, ...rest] = stdout.slice(0, newline).split(' ');
        stdout = stdout.slice(newline + 1);
        if (what === 'open') openedAt = Number(rest[0]);
        else if (what === 'ack') acks.push([Number(rest[0]), rest[1]!, rest[2]!]);
        if (acks.length >= killAfter && openedAt >= 0) kill();
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ openedAt, acks, signal, code, stderr }));
  });
}

test('no acknowledged write is lost and nothing tears across repeated kill -9', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-durable-kill-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  let revision = 0;
  let lastAcked = -1;
  let inFlightKept = 0;

  for (let round = 0; round < ROUNDS; round++) {
    const killAfter = round === 0 ? 3 : Math.floor(Math.random() * 25);
    const run = await runAndKill(dir, killAfter);
    assert.equal(run.signal, 'SIGKILL', `round ${round}: the writer exited on its own (code ${run.code}): ${run.stderr}`);
    assert.equal(run.openedAt, revision, `round ${round}: the writer found revision ${run.openedAt}, the last check saw ${revision}`);
    for (const [seq, name, resourceVersion] of run.acks) {
      assert.equal(seq, lastAcked + 1, `round ${round}: acknowledged writes are consecutive`);
      assert.equal(resourceVersion, String(seq + 1), `round ${round}: write ${seq} (${name}) got revision ${resourceVersion}`);
      lastAcked = seq;
    }

    const store = await DurableStore.open(dir);
    try {
      const now = store.revision();
      assert.ok(now >= revision, `round ${round}: revision went back from ${revision} to ${now}`);
      // Every acknowledged write is in; at most the one in flight at the kill is beyond them.
      assert.ok(now === lastAcked + 1 || now === lastAcked + 2, `round ${round}: revision ${now} after acknowledged write ${lastAcked}`);
      if (now === lastAcked + 2) inFlightKept++;

      const expected = expectedAfter(now);
      const objects = await store.list();
      assert.deepEqual(objects.map((o) => o.metadata.name).sort(), [...expected.keys()].sort(), `round ${round}: the set of objects`);
      for (const object of objects) {
        const seq = expected.get(object.metadata.name)!;
        const op = opAt(seq);
        assert.ok(op.op === 'put');
        assert.equal(object.metadata.resourceVersion, String(seq + 1), `${object.metadata.name}: resourceVersion`);
        assert.deepEqual(object.metadata.labels, op.object.metadata.labels, `${object.metadata.name}: labels`);
        assert.deepEqual(object.spec, op.object.spec, `${object.metadata.name}: spec`);
      }
      revision = now;
      // The in-flight write that made it counts as acknowledged for the next round.
      lastAcked = now - 1;
    } finally {
      await store.close();
    }
  }
  assert.ok(lastAcked >= ROUNDS, `the writer made progress (${lastAcked + 1} writes)`);
  t.diagnostic(`${lastAcked + 1} writes over ${ROUNDS} kills; ${inFlightKept} in-flight writes were committed before the kill`);
});
