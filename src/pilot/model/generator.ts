// The contract between config generation and the ADS server: a generator per
// Envoy type URL turns (proxy, push context) into named resources; the server
// packs, caches and sends them.

import type { ProxyNode } from './proxy.ts';

/** The part of a push context the ADS server needs; generators see the full one. */
export interface PushContextLike {
  /** Changes whenever any input (config snapshot, registry) changes; used as xDS version_info. */
  readonly version: string;
}

export interface GenerateRequest {
  /** Resource names the client asked for (RDS, EDS); undefined means all (LDS, CDS wildcard). */
  readonly names?: readonly string[];
  /** True for a full push; false for the endpoint fast path (EDS only). */
  readonly full: boolean;
  /** On the fast path: hostnames whose endpoints changed. */
  readonly changedHosts?: ReadonlySet<string>;
}

/** One Envoy resource as a plain object in proto3 JSON shape with snake_case field names (keepCase), nested Anys written as `{ '@type': URL, ... }`. */
export interface XdsResource {
  readonly name: string;
  readonly value: Readonly<Record<string, unknown>>;
  /**
   * Same key, same bytes: the server serializes a resource once per key and
   * shares it between proxies. Generators set it when the resource depends only
   * on inputs the key names (e.g. `cds/outbound|9080||reviews...@<push version>`).
   */
  readonly cacheKey?: string;
}

export interface XdsGenerator<P extends PushContextLike = PushContextLike> {
  readonly typeUrl: string;
  generate(proxy: ProxyNode, push: P, request: GenerateRequest): readonly XdsResource[];
}
