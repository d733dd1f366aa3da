// Serialization shared between proxies: a resource with a cacheKey is packed
// once per push version, and its bytes hashed once, however many proxies
// receive it. The hash is the resource's delta version and what the server
// compares to skip resources a proxy already holds.
//
// Resources without a cacheKey (route configs, listeners, proxy-dependent
// clusters) are cached by content instead: the JSON of the generated value,
// hashed. Equal JSON means equal bytes, so this is always safe, and it spans
// push versions: JSON.stringify + a hash is ~10x cheaper than packMessage
// (normalize + check + encode), which dominated full pushes at scale (see
// bench/pilot-scale-bench.ts: 1000 services, most sidecars get the very same
// route configs and listeners).

import { createHash } from 'node:crypto';
import type { AnyMessage } from '../../xds/index.ts';
import { packMessage } from '../../xds/index.ts';
import type { XdsResource } from '../model/index.ts';

/** A resource ready for the wire. */
export interface PackedResource {
  readonly name: string;
  readonly any: AnyMessage;
  /** Hash of the serialized bytes: equal bytes, equal version. */
  readonly version: string;
  readonly value: Readonly<Record<string, unknown>>;
  /** Unique per packed object: fingerprints of resource lists (shared held state, see shared-state.ts). */
  readonly seq: number;
}

let nextSeq = 1;

export function hashBytes(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('base64url').slice(0, 22);
}

/** How many push versions keep their entries: the current one and the one before, still draining from queues. */
const GENERATIONS = 2;

export class ResourceCache {
  private readonly generations = new Map<string, Map<string, PackedResource>>();
  /** Content-keyed entries used under the current push version, and those of the versions before (dropped when they go unused for a whole version). */
  private byContent = new Map<string, PackedResource>();
  private byContentBefore = new Map<string, PackedResource>();
  private contentVersion: string | undefined;
  private readonly byValue = new WeakMap<object, PackedResource>();
  private contentVersionBefore: string | undefined;
  hits = 0;
  misses = 0;
  contentHits = 0;
  contentMisses = 0;

  /** Packs a resource (throws, naming the field, when it is not a valid message of the type). */
  pack(pushVersion: string, typeUrl: string, resource: XdsResource): PackedResource {
    // Generators share resource values between proxies within a push (and
    // never mutate them): the same object was packed already.
    const known = this.byValue.get(resource.value);
    if (known && known.name === resource.name && known.any.type_url === typeUrl) {
      this.hits += 1;
      return known;
    }
    const packed = this.packUncached(pushVersion, typeUrl, resource);
    this.byValue.set(resource.value, packed);
    return packed;
  }

  private packUncached(pushVersion: string, typeUrl: string, resource: XdsResource): PackedResource {
    if (resource.cacheKey === undefined) return this.packByContent(pushVersion, typeUrl, resource);
    let generation = this.generations.get(pushVersion);
    if (!generation) {
      generation = new Map();
      this.generations.set(pushVersion, generation);
      // Oldest first in insertion order.
      while (this.generations.size > GENERATIONS) this.generations.delete(this.generations.keys().next().value as string);
    }
    const key = `${typeUrl}\n${resource.cacheKey}`;
    const cached = generation.get(key);
    if (cached && cached.name === resource.name) {
      this.hits += 1;
      return cached;
    }
    this.misses += 1;
    const packed = this.encode(typeUrl, resource);
    generation.set(key, packed);
    return packed;
  }

  clear(): void {
    this.generations.clear();
    this.byContent.clear();
    this.byContentBefore.clear();
  }

  private packByContent(pushVersion: string, typeUrl: string, resource: XdsResource): PackedResource {
    let json: string;
    try {
      json = JSON.stringify(resource.value);
    } catch {
      return this.encode(typeUrl, resource); // not JSON-able (BigInt, cycles): no sharing
    }
    if (pushVersion !== this.contentVersion && pushVersion !== this.contentVersionBefore) {
      // A new push version: what was used under the last one stays one more round.
      if (this.contentVersion !== undefined) {
        this.byContentBefore = this.byContent;
        this.byContent = new Map();
      }
      this.contentVersionBefore = this.contentVersion;
      this.contentVersion = pushVersion;
    }
    const key = `${typeUrl}\n${resource.name}\n${createHash('sha1').update(json).digest('base64')}`;
    let packed = this.byContent.get(key) ?? this.byContentBefore.get(key);
    if (packed) {
      this.contentHits += 1;
    } else {
      this.contentMisses += 1;
      packed = this.encode(typeUrl, resource);
    }
    this.byContent.set(key, packed);
    return packed;
  }

  private encode(typeUrl: string, resource: XdsResource): PackedResource {
    const any = packMessage(typeUrl, resource.value);
    if (any.type_url !== typeUrl) throw new Error(`${resource.name}: packed as ${any.type_url}, not ${typeUrl}`);
    return { name: resource.name, any, version: hashBytes(any.value), value: resource.value, seq: nextSeq++ };
  }
}
