// Galley's output: immutable, versioned snapshots of all config, grouped by
// Istio type URL, and the distributor that turns a store's change stream into
// a debounced sequence of them for in-process subscribers (Pilot, Mixer,
// Citadel) and for the gRPC distribution server.

import { deepFreeze, systemClock } from '../common/index.ts';
import type { Clock } from '../common/index.ts';
import type { ConfigObject, KindRegistry } from '../api/index.ts';
import { groupOf, istioTypeUrl } from '../api/index.ts';
import type { ConfigStore, WatchEvent } from './config-store.ts';

const EMPTY: readonly ConfigObject[] = Object.freeze([]);

/** `namespace/name`, or `name` for cluster-scoped objects: an object's name inside its type. */
export { deepFreeze };

export function resourceName(obj: Pick<ConfigObject, 'metadata'>): string {
  const ns = obj.metadata.namespace;
  return ns ? `${ns}/${obj.metadata.name}` : obj.metadata.name;
}

// Name indexes are built on first get() and keyed by the per-type array, so a
// type that did not change between snapshots shares its index too.
const indexes = new WeakMap<readonly ConfigObject[], Map<string, ConfigObject>>();

function indexOf(objects: readonly ConfigObject[]): Map<string, ConfigObject> {
  let index = indexes.get(objects);
  if (!index) {
    index = new Map(objects.map((o) => [resourceName(o), o]));
    indexes.set(objects, index);
  }
  return index;
}

/**
 * All config at one moment. Contract: never changes after construction; every
 * object and array it hands out is deep-frozen and may be shared by every
 * reader. Objects of a type are sorted by namespace/name. `version` grows by
 * one with each snapshot a distributor publishes; `revision` is the store
 * revision the snapshot reflects.
 */
export class ConfigSnapshot {
  readonly version: number;
  readonly revision: number;
  readonly #byType: ReadonlyMap<string, readonly ConfigObject[]>;

  /** Arrays are taken as they are (frozen here); callers pass them sorted. */
  constructor(version: number, revision: number, byType: ReadonlyMap<string, readonly ConfigObject[]>) {
    this.version = version;
    this.revision = revision;
    for (const objects of byType.values()) deepFreeze(objects);
    this.#byType = new Map(byType);
    Object.freeze(this);
  }

  static empty(typeUrls: readonly string[] = []): ConfigSnapshot {
    return new ConfigSnapshot(0, 0, new Map(typeUrls.map((t) => [t, EMPTY])));
  }

  /** The type URLs this snapshot covers (every kind of its registry, empty ones too). */
  typeUrls(): string[] {
    return [...this.#byType.keys()];
  }

  has(typeUrl: string): boolean {
    return this.#byType.has(typeUrl);
  }

  /** The objects of a type, sorted by namespace/name; the same array while the type is unchanged. */
  objects(typeUrl: string): readonly ConfigObject[] {
    return this.#byType.get(typeUrl) ?? EMPTY;
  }

  get(typeUrl: string, namespace: string, name: string): ConfigObject | undefined {
    const objects = this.#byType.get(typeUrl);
    return objects && indexOf(objects).get(namespace ? `${namespace}/${name}` : name);
  }

  /** Types whose object list differs from `previous` (by identity, which unchanged types keep). */
  changedTypes(previous: ConfigSnapshot | undefined): string[] {
    const out: string[] = [];
    const before = previous ? previous.#byType : new Map<string, readonly ConfigObject[]>();
    for (const [typeUrl, objects] of this.#byType) if (before.get(typeUrl) !== objects) out.push(typeUrl);
    if (previous) for (const typeUrl of previous.#byType.keys()) if (!this.#byType.has(typeUrl)) out.push(typeUrl);
    return out;
  }
}

/** Sorted, frozen array of a type's objects; `previous` is returned when nothing in it changed. */
export function sortedObjects(objects: Iterable<ConfigObject>, previous?: readonly ConfigObject[]): readonly ConfigObject[] {
  const next = [...objects].sort((a, b) => compareNames(resourceName(a), resourceName(b)));
  if (previous && previous.length === next.length && next.every((o, i) => o === previous[i])) return previous;
  return next.length === 0 ? EMPTY : deepFreeze(next);
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Timers, injectable so tests control time (src/common/clock.ts). */
export type { Clock };
export { systemClock };

/** The part of a logger Galley uses; a pino Logger (src/common createLogger) fits. The default is silent. */
export interface GalleyLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const noopLog: GalleyLogger = { debug() {}, info() {}, warn() {}, error() {} };

export type SnapshotListener = (snapshot: ConfigSnapshot) => void;

export interface SnapshotDistributorOptions {
  readonly store: ConfigStore;
  readonly registry: KindRegistry;
  /** Quiet time after the last change before a snapshot is built. Default 100 ms. */
  readonly debounceMs?: number;
  /** Longest wait after the first unpublished change, under a constant stream. Default 1000 ms. */
  readonly maxDelayMs?: number;
  readonly clock?: Clock;
  readonly log?: GalleyLogger;
}

/**
 * Follows a store and publishes snapshots.
 *
 * Contract: after `await start()` there is a current snapshot of the whole
 * store. Changes are merged: a burst becomes one snapshot, built `debounceMs`
 * after the last change but never later than `maxDelayMs` after the first.
 * A new snapshot shares the object arrays of every type that did not change.
 * A flush that changes nothing publishes nothing. Listeners are called in
 * order, synchronously; one that throws is logged and does not stop the rest.
 */
export class SnapshotDistributor {
  private readonly store: ConfigStore;
  private readonly registry: KindRegistry;
  private readonly debounceMs: number;
  private readonly maxDelayMs: number;
  private readonly clock: Clock;
  private readonly logger: GalleyLogger;
  private readonly listeners = new Set<SnapshotListener>();
  /** The working state: type URL -> resource name -> frozen object. */
  private readonly state = new Map<string, Map<string, ConfigObject>>();
  private readonly dirty = new Set<string>();
  private snapshot: ConfigSnapshot | undefined;
  private pendingRevision = 0;
  private firstPendingAt: number | undefined;
  private timer: unknown;
  private unwatch: (() => void) | undefined;
  private stopped = false;

  constructor(options: SnapshotDistributorOptions) {
    this.store = options.store;
    this.registry = options.registry;
    this.debounceMs = options.debounceMs ?? 100;
    this.maxDelayMs = options.maxDelayMs ?? 1000;
    this.clock = options.clock ?? systemClock;
    this.logger = options.log ?? noopLog;
  }

  async start(): Promise<ConfigSnapshot> {
    if (this.unwatch) throw new Error('SnapshotDistributor started twice');
    // Watch before listing, so no change falls between the two; events the
    // list already reflects are replayed harmlessly (put/delete by name).
    const buffered: WatchEvent[] = [];
    let listing = true;
    this.unwatch = this.store.watch((events) => {
      if (listing) buffered.push(...events);
      else this.onEvents(events);
    });
    const listedAt = this.store.revision();
    const objects = await this.store.list();
    for (const def of this.registry.all()) this.state.set(istioTypeUrl(def), new Map());
    for (const obj of objects) this.put(obj);
    this.pendingRevision = listedAt;
    for (const event of buffered) if (event.revision > listedAt) this.applyEvent(event);
    listing = false;
    this.dirty.clear();
    const byType = new Map<string, readonly ConfigObject[]>();
    for (const [typeUrl, objs] of this.state) byType.set(typeUrl, sortedObjects(objs.values()));
    this.publish(new ConfigSnapshot(1, this.pendingRevision, byType));
    return this.snapshot!;
  }

  /** The latest snapshot; undefined before start() resolves. */
  current(): ConfigSnapshot | undefined {
    return this.snapshot;
  }

  /** Calls the listener now with the current snapshot (if any) and with every later one. */
  subscribe(listener: SnapshotListener): () => void {
    this.listeners.add(listener);
    if (this.snapshot) this.call(listener, this.snapshot);
    return () => this.listeners.delete(listener);
  }

  /** Stops following the store; changes not yet published are dropped. */
  stop(): void {
    this.stopped = true;
    this.unwatch?.();
    this.unwatch = undefined;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.listeners.clear();
  }

  /** Builds the next snapshot now from the changes seen so far (also what the timer does). */
  flush(): ConfigSnapshot | undefined {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.firstPendingAt = undefined;
    const previous = this.snapshot;
    if (!previous || this.dirty.size === 0) return previous;
    const byType = new Map<string, readonly ConfigObject[]>();
    let changed = false;
    for (const typeUrl of previous.typeUrls()) {
      const before = previous.objects(typeUrl);
      const after = this.dirty.has(typeUrl) ? sortedObjects(this.state.get(typeUrl)!.values(), before) : before;
      if (after !== before) changed = true;
      byType.set(typeUrl, after);
    }
    this.dirty.clear();
    if (!changed) return previous;
    this.publish(new ConfigSnapshot(previous.version + 1, this.pendingRevision, byType));
    return this.snapshot;
  }

  private onEvents(events: readonly WatchEvent[]): void {
    if (this.stopped) return;
    for (const event of events) this.applyEvent(event);
    if (this.dirty.size === 0) return;
    const now = this.clock.now();
    this.firstPendingAt ??= now;
    const due = Math.min(now + this.debounceMs, this.firstPendingAt + this.maxDelayMs);
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, Math.max(0, due - now));
  }

  private applyEvent(event: WatchEvent): void {
    this.pendingRevision = Math.max(this.pendingRevision, event.revision);
    if (event.type === 'DELETED') this.remove(event.object);
    else this.put(event.object);
  }

  private typeUrlOf(obj: ConfigObject): string | undefined {
    const def = this.registry.get(groupOf(obj.apiVersion), obj.kind);
    if (!def) {
      this.logger.debug({ apiVersion: obj.apiVersion, kind: obj.kind }, 'skipping an object of a kind the registry does not know');
      return undefined;
    }
    return istioTypeUrl(def);
  }

  private put(obj: ConfigObject): void {
    const typeUrl = this.typeUrlOf(obj);
    const objects = typeUrl && this.state.get(typeUrl);
    if (!objects) return;
    // Store events carry private copies, so freezing them in place is safe.
    objects.set(resourceName(obj), deepFreeze(obj));
    this.dirty.add(typeUrl);
  }

  private remove(obj: ConfigObject): void {
    const typeUrl = this.typeUrlOf(obj);
    const objects = typeUrl && this.state.get(typeUrl);
    if (!objects) return;
    if (objects.delete(resourceName(obj))) this.dirty.add(typeUrl);
  }

  private publish(snapshot: ConfigSnapshot): void {
    this.snapshot = snapshot;
    this.logger.debug({ version: snapshot.version, revision: snapshot.revision }, 'published a config snapshot');
    for (const listener of [...this.listeners]) this.call(listener, snapshot);
  }

  private call(listener: SnapshotListener, snapshot: ConfigSnapshot): void {
    try {
      listener(snapshot);
    } catch (err) {
      this.logger.error({ err, version: snapshot.version }, 'a snapshot subscriber threw');
    }
  }
}
