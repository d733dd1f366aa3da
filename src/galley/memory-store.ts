// An in-memory config store: the reference implementation of ConfigStore, used
// by tests and as the index the durable store keeps in memory.

import type { ConfigObject, ObjectKey } from '../api/index.ts';
import { describeObject, groupOf } from '../api/index.ts';
import type { ApplyOptions, ApplyResult, ConfigStore, ListFilter, WatchEvent } from './config-store.ts';
import { GalleyError, GalleyErrorCode } from './errors.ts';
import { checkResourceVersion, sameContent, stamp, storeKey } from './object-stamp.ts';

export function matchesFilter(obj: ConfigObject, filter: ListFilter | undefined): boolean {
  if (!filter) return true;
  if (filter.group !== undefined && groupOf(obj.apiVersion) !== filter.group) return false;
  if (filter.kind !== undefined && obj.kind !== filter.kind) return false;
  if (filter.namespace !== undefined && obj.metadata.namespace !== filter.namespace) return false;
  return true;
}

export class MemoryStore implements ConfigStore {
  readonly name: string = 'memory';
  protected readonly objects = new Map<string, ConfigObject>();
  protected currentRevision = 0;
  private readonly listeners = new Set<(events: readonly WatchEvent[]) => void>();
  protected closed = false;

  async get(key: ObjectKey): Promise<ConfigObject | undefined> {
    const obj = this.objects.get(storeKey(key));
    return obj && structuredClone(obj);
  }

  async list(filter?: ListFilter): Promise<ConfigObject[]> {
    const out: ConfigObject[] = [];
    for (const obj of this.objects.values()) if (matchesFilter(obj, filter)) out.push(structuredClone(obj));
    return out;
  }

  apply(object: ConfigObject, options: ApplyOptions = {}): Promise<ApplyResult> {
    return this.serialized(() => this.applyNow(object, options));
  }

  delete(key: ObjectKey, options: { resourceVersion?: string; dryRun?: boolean } = {}): Promise<ConfigObject | undefined> {
    return this.serialized(() => this.deleteNow(key, options));
  }

  // Writes run one at a time so each gets the next revision and persists in order.
  private writeQueue: Promise<unknown> = Promise.resolve();
  private serialized<T>(write: () => Promise<T>): Promise<T> {
    const result = this.writeQueue.then(write);
    this.writeQueue = result.catch(() => undefined);
    return result;
  }

  private async applyNow(object: ConfigObject, options: ApplyOptions): Promise<ApplyResult> {
    this.assertOpen();
    const key = storeKey(object);
    const stored = this.objects.get(key);
    checkResourceVersion(object, stored);
    if (stored && sameContent(stored, object)) return { object: structuredClone(stored), action: 'unchanged' };
    const next = stamp(object, stored, this.currentRevision + 1);
    if (options.dryRun) return { object: next, action: stored ? 'configured' : 'created' };
    await this.persist({ op: 'put', key, object: next, revision: this.currentRevision + 1 });
    this.currentRevision += 1;
    this.objects.set(key, next);
    this.emit([{ type: stored ? 'MODIFIED' : 'ADDED', object: structuredClone(next), revision: this.currentRevision }]);
    return { object: structuredClone(next), action: stored ? 'configured' : 'created' };
  }

  private async deleteNow(key: ObjectKey, options: { resourceVersion?: string; dryRun?: boolean }): Promise<ConfigObject | undefined> {
    this.assertOpen();
    const k = storeKey(key);
    const stored = this.objects.get(k);
    if (!stored) return undefined;
    if (options.resourceVersion !== undefined && options.resourceVersion !== stored.metadata.resourceVersion) {
      throw new GalleyError(GalleyErrorCode.CONFLICT, `${describeObject(stored)}: resourceVersion ${options.resourceVersion} does not match the stored ${stored.metadata.resourceVersion}`);
    }
    if (options.dryRun) return structuredClone(stored);
    await this.persist({ op: 'delete', key: k, object: stored, revision: this.currentRevision + 1 });
    this.currentRevision += 1;
    this.objects.delete(k);
    this.emit([{ type: 'DELETED', object: structuredClone(stored), revision: this.currentRevision }]);
    return structuredClone(stored);
  }

  watch(listener: (events: readonly WatchEvent[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  revision(): number {
    return this.currentRevision;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
  }

  /** Durable subclasses write here before the change becomes visible; memory does nothing. */
  protected async persist(_change: { op: 'put' | 'delete'; key: string; object: ConfigObject; revision: number }): Promise<void> {}

  protected emit(events: readonly WatchEvent[]): void {
    for (const listener of this.listeners) listener(events);
  }

  protected assertOpen(): void {
    if (this.closed) throw new GalleyError(GalleyErrorCode.CLOSED, `the ${this.name} store is closed`);
  }
}
