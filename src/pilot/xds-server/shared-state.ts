// Per-proxy state shared between proxies of one view. A proxy's subscribed
// names and what it holds are immutable values here, interned: proxies of
// one sidecar scope subscribe to the same ~1000 EDS names and hold the same
// ~2000 resources, so 2000 of them share a handful of sets and maps instead
// of keeping 2000 private copies (see Watch in connection.ts). Interned
// values are held weakly: one that no watch references any more is dropped.
//
// Nothing here is ever mutated after it is handed out.

import type { HeldEntry } from './connection.ts';
import type { PackedResource } from './resource-cache.ts';

/** A held map that came from a list of packed resources, with the memos of its transitions. */
interface Snapshot {
  readonly list: readonly PackedResource[];
  readonly map: ReadonlyMap<string, HeldEntry>;
}

/** Changed and removed names from one held map to another. */
export interface HeldDiff {
  readonly changed: readonly PackedResource[];
  readonly removed: readonly string[];
}

class WeakInterner<V extends object> {
  readonly #entries = new Map<string, WeakRef<V>>();
  readonly #registry = new FinalizationRegistry<string>((key) => {
    const ref = this.#entries.get(key);
    if (ref && ref.deref() === undefined) this.#entries.delete(key);
  });

  get(key: string): V | undefined {
    return this.#entries.get(key)?.deref();
  }

  set(key: string, value: V): void {
    this.#entries.set(key, new WeakRef(value));
    this.#registry.register(value, key);
  }
}

const EMPTY: ReadonlySet<string> = new Set();

export class SharedState {
  readonly #nameSets = new WeakInterner<ReadonlySet<string>>();
  readonly #lists = new WeakMap<ReadonlySet<string>, readonly string[]>();
  /** name set -> the wire encoding of a request list it came from (see sameEncoding). */
  readonly #encodings = new WeakMap<ReadonlySet<string>, { readonly bytes: Buffer; readonly wildcard: boolean }>();
  readonly #hostIndexes = new WeakMap<ReadonlySet<string>, ReadonlyMap<string, readonly string[]>>();
  readonly #snapshots = new WeakInterner<Snapshot>();
  /** Keeps a snapshot alive (and so interned) as long as a watch holds its map. */
  readonly #snapshotOf = new WeakMap<ReadonlyMap<string, HeldEntry>, Snapshot>();
  /** held map -> (key of a change) -> the held map after it. */
  readonly #derived = new WeakMap<ReadonlyMap<string, HeldEntry>, Map<string, ReadonlyMap<string, HeldEntry>>>();
  /** held map -> new held map -> the diff between them. */
  readonly #diffs = new WeakMap<ReadonlyMap<string, HeldEntry>, WeakMap<ReadonlyMap<string, HeldEntry>, HeldDiff>>();

  /** The shared set of these names (in this order). */
  names(names: Iterable<string>): ReadonlySet<string> {
    const list = [...names];
    if (list.length === 0) return EMPTY;
    const key = list.join('\n');
    const known = this.#nameSets.get(key);
    if (known) return known;
    const set: ReadonlySet<string> = new Set(list);
    this.#nameSets.set(key, set);
    if (set.size === list.length) this.#lists.set(set, list);
    return set;
  }

  /**
   * Whether a request's names (ignoring `*`) are exactly `names`. Most SotW
   * requests are ACKs that repeat the subscription (~1000 EDS names at 1000
   * services), in the order it was made: compared in order first, which
   * needs no hashing of the freshly decoded strings (Set.has did, and was
   * most of the cost of an ACK).
   */
  sameNames(names: ReadonlySet<string>, requested: readonly string[]): boolean {
    const list = this.#lists.get(names);
    if (list) {
      let i = 0;
      let inOrder = true;
      for (const r of requested) {
        if (r === '*') continue;
        if (i >= list.length || list[i] !== r) {
          inOrder = false;
          break;
        }
        i += 1;
      }
      if (inOrder) return i === list.length;
    }
    const asked = new Set<string>();
    for (const r of requested) {
      if (r === '*') continue;
      if (!names.has(r)) return false;
      asked.add(r);
    }
    return asked.size === names.size;
  }

  /**
   * Records that the request list encoded as `bytes` (resource_names as on
   * the wire, see request-decoder.ts) subscribes to `names` with `wildcard`.
   * Kept once per shared set (a copy: the request's buffer is not held), so
   * all the proxies of a view share one.
   */
  recordEncoding(names: ReadonlySet<string>, bytes: Buffer, wildcard: boolean): void {
    if (bytes.length === 0 || this.#encodings.has(names)) return;
    this.#encodings.set(names, { bytes: Buffer.from(bytes), wildcard });
  }

  /**
   * Whether a request whose resource_names are encoded as `bytes` subscribes
   * to exactly `names` with `wildcard`, without decoding them: true only when
   * the bytes equal a recorded encoding of that set (equal bytes: the same
   * list, so the same set and the same wildcard). False means "not known
   * from the bytes", not "different": the caller decodes and compares.
   */
  sameEncoding(names: ReadonlySet<string>, wildcard: boolean, bytes: Buffer): boolean {
    const known = this.#encodings.get(names);
    return known !== undefined && known.wildcard === wildcard && known.bytes.equals(bytes);
  }

  /** Names of a shared set by the host of their cluster name ('' for other names), for the EDS fast path; built once per set. */
  namesByHost(names: ReadonlySet<string>, hostOf: (name: string) => string | undefined): ReadonlyMap<string, readonly string[]> {
    let index = this.#hostIndexes.get(names);
    if (!index) {
      const built = new Map<string, string[]>();
      for (const n of names) {
        const host = hostOf(n) ?? '';
        const list = built.get(host);
        if (list) list.push(n);
        else built.set(host, [n]);
      }
      index = built;
      this.#hostIndexes.set(names, index);
    }
    return index;
  }

  /** The shared held map of exactly these resources (in this order). */
  held(typeUrl: string, list: readonly PackedResource[]): ReadonlyMap<string, HeldEntry> {
    // Two independent 32-bit hashes of the packed objects' ids; a hit is verified element by element.
    let h1 = 0x811c9dc5;
    let h2 = 0x12345;
    for (const p of list) {
      h1 = Math.imul(h1 ^ p.seq, 0x01000193);
      h2 = (Math.imul(h2, 31) + p.seq) | 0;
    }
    const key = `${typeUrl}\n${list.length}\n${h1}\n${h2}`;
    const known = this.#snapshots.get(key);
    if (known && known.list.length === list.length && known.list.every((p, i) => p === list[i])) return known.map;
    const map = new Map<string, HeldEntry>();
    for (const p of list) map.set(p.name, p);
    const snapshot: Snapshot = { list: [...list], map };
    this.#snapshots.set(key, snapshot);
    this.#snapshotOf.set(map, snapshot);
    return map;
  }

  /** Changed and removed names from `before` to `after` (both shared held maps), memoized per pair. */
  diff(before: ReadonlyMap<string, HeldEntry>, after: ReadonlyMap<string, HeldEntry>): HeldDiff {
    let byAfter = this.#diffs.get(before);
    if (!byAfter) {
      byAfter = new WeakMap();
      this.#diffs.set(before, byAfter);
    }
    let d = byAfter.get(after);
    if (!d) {
      const changed: PackedResource[] = [];
      for (const [name, p] of after) if (before.get(name)?.version !== p.version) changed.push(p as PackedResource);
      const removed: string[] = [];
      for (const n of before.keys()) if (!after.has(n)) removed.push(n);
      d = { changed, removed };
      byAfter.set(after, d);
    }
    return d;
  }

  /**
   * `base` with `set` resources put and `removed` names deleted, shared: every
   * proxy of a view gets the same change (the endpoint fast path), so the
   * first one pays for the copy and the others share it.
   */
  derive(base: ReadonlyMap<string, HeldEntry>, set: readonly PackedResource[], removed: readonly string[]): ReadonlyMap<string, HeldEntry> {
    let memo = this.#derived.get(base);
    if (!memo) {
      memo = new Map();
      this.#derived.set(base, memo);
    }
    const key = `${set.map((p) => p.seq).join(',')}\n${removed.join('\n')}`;
    const known = memo.get(key);
    if (known) return known;
    const next = new Map(base);
    for (const p of set) next.set(p.name, p);
    for (const n of removed) next.delete(n);
    if (memo.size >= 16) memo.clear();
    memo.set(key, next);
    return next;
  }
}
