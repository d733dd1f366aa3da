// Serialization shared between proxies: a resource with a cacheKey is packed
// once per push version, and its bytes hashed once, however many proxies
// receive it. The hash is the resource's delta version and what the server
// compares to skip resources a proxy already holds.

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
}

export function hashBytes(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('base64url').slice(0, 22);
}

/** How many push versions keep their entries: the current one and the one before, still draining from queues. */
const GENERATIONS = 2;

export class ResourceCache {
  private readonly generations = new Map<string, Map<string, PackedResource>>();
  hits = 0;
  misses = 0;

  /** Packs a resource (throws, naming the field, when it is not a valid message of the type). */
  pack(pushVersion: string, typeUrl: string, resource: XdsResource): PackedResource {
    if (resource.cacheKey === undefined) return this.encode(typeUrl, resource);
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
  }

  private encode(typeUrl: string, resource: XdsResource): PackedResource {
    const any = packMessage(typeUrl, resource.value);
    if (any.type_url !== typeUrl) throw new Error(`${resource.name}: packed as ${any.type_url}, not ${typeUrl}`);
    return { name: resource.name, any, version: hashBytes(any.value), value: resource.value };
  }
}
