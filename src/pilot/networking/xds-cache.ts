// Generated resources kept from one push context to the next, keyed by what
// they depend on (Istio's XdsCache with DependentConfigs). An entry names its
// dependencies as config keys; a change clears only the entries that depend
// on something it touched, so a VirtualService change rebuilds the route
// configs that use that VirtualService and reuses the other ~99% as they were
// (same objects, so the ADS server also reuses their encoded bytes).
//
// Every push context has its own cache, derived from the previous one minus
// what the change invalidated. Requests still answered from the old push
// context (it stays current until the debounced push fires) fill the old
// cache, never the new one, so a stale value cannot leak into a newer push.

/**
 * What an entry depends on: `Kind/namespace/name` of one config object,
 * `Service/<hostname>`, or `Kind/*` for "the set of these, or which one
 * applies where" (e.g. `VirtualService/*`: which VirtualService a host selects).
 */
export type ConfigKey = string;

/** Entries beyond this are not kept (built per push instead): a bound on memory, whatever the config. */
const MAX_ENTRIES = 20_000;

interface Entry {
  readonly value: unknown;
  readonly deps: readonly ConfigKey[];
}

export class XdsCache {
  readonly #entries: Map<string, Entry>;
  hits = 0;
  misses = 0;

  constructor(entries: Map<string, Entry> = new Map()) {
    this.#entries = entries;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The cached value of `key`, or `build()`'s, kept under `deps()` (called only on a miss). */
  getOrBuild<T>(key: string, deps: () => readonly ConfigKey[], build: () => T): T {
    const known = this.#entries.get(key);
    if (known) {
      this.hits += 1;
      return known.value as T;
    }
    this.misses += 1;
    const value = build();
    if (this.#entries.size < MAX_ENTRIES) this.#entries.set(key, { value, deps: deps() });
    return value;
  }

  /**
   * The cache of the next push context: these entries minus those that
   * depend on any of `cleared`; `'all'` (a change nobody classified) starts empty.
   */
  derive(cleared: ReadonlySet<ConfigKey> | 'all'): XdsCache {
    if (cleared === 'all') return new XdsCache();
    const next = new Map<string, Entry>();
    for (const [key, entry] of this.#entries) if (!entry.deps.some((d) => cleared.has(d))) next.set(key, entry);
    return new XdsCache(next);
  }
}
