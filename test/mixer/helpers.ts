// Shared pieces of the Mixer tests: config snapshots from YAML (validated the
// way Galley would), a snapshot source tests publish to, and a fake clock.

import assert from 'node:assert/strict';
import type { ConfigObject } from '../../src/api/index.ts';
import { istioKinds, istioTypeUrl, validateText } from '../../src/api/index.ts';
import { ConfigSnapshot } from '../../src/galley/index.ts';
import type { SnapshotSource } from '../../src/mixer/index.ts';

let version = 0;

/** A snapshot of the objects in `yaml`; each must pass the config API's validation. */
export function snapshotOf(yaml: string): ConfigSnapshot {
  const results = validateText(yaml, istioKinds);
  const byType = new Map<string, ConfigObject[]>();
  for (const def of istioKinds.all()) byType.set(istioTypeUrl(def), []);
  for (const r of results) {
    const errors = r.diagnostics.filter((d) => d.severity === 'error');
    assert.deepEqual(errors, [], `${r.object.kind} ${r.object.metadata.name} should be valid`);
    const def = istioKinds.forObject(r.object.apiVersion, r.object.kind)!;
    byType.get(istioTypeUrl(def))!.push(r.object);
  }
  version++;
  return new ConfigSnapshot(version, version, byType);
}

/** Snapshots published by hand. */
export class ManualSnapshots implements SnapshotSource {
  private readonly listeners = new Set<(s: ConfigSnapshot) => void>();
  private current: ConfigSnapshot | undefined;

  subscribe(listener: (s: ConfigSnapshot) => void): () => void {
    this.listeners.add(listener);
    if (this.current) listener(this.current);
    return () => this.listeners.delete(listener);
  }

  publish(snapshot: ConfigSnapshot): void {
    this.current = snapshot;
    for (const l of this.listeners) l(snapshot);
  }
}

export class FakeClock {
  ms = Date.UTC(2026, 0, 1);
  readonly now = (): number => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}
