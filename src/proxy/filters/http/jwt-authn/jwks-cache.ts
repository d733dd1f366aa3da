// Key sets for jwt_authn providers: local_jwks decoded once per config,
// remote_jwks fetched on first use (from the provider's cluster when it
// has a host, else the URI itself) and kept for cache_duration (Envoy's
// default 10 minutes). A failed fetch is not cached, so the next request
// tries again.

import { request as httpRequest } from 'node:http';
import { createLocalJWKSet } from 'jose';
import type { JSONWebKeySet, JWTVerifyGetKey } from 'jose';
import type { ClusterManager } from '../../../upstream/cluster-manager.ts';
import type { Clock } from '../../../clock.ts';

export type KeySet = JWTVerifyGetKey;

/** Parses JWKS text (a key set, or a single JWK as Istio also accepts); throws on bad input. */
export function parseJwks(text: string): KeySet {
  const value = JSON.parse(text) as JSONWebKeySet & { kty?: string };
  const set: JSONWebKeySet = Array.isArray(value.keys) ? value : { keys: [value as never] };
  return createLocalJWKSet(set);
}

export interface RemoteJwksSource {
  readonly uri: string;
  readonly cluster: string;
  readonly timeoutMs: number;
  readonly cacheDurationMs: number;
}

export class RemoteJwks {
  private readonly source: RemoteJwksSource;
  private readonly clusters: ClusterManager;
  private readonly now: () => number;
  private keys: KeySet | undefined;
  private fetchedAt = 0;
  private inflight: Promise<KeySet> | undefined;
  readonly onFetch: (ok: boolean) => void;

  constructor(source: RemoteJwksSource, clusters: ClusterManager, clock: Clock | undefined, onFetch: (ok: boolean) => void) {
    this.source = source;
    this.clusters = clusters;
    this.now = clock ? () => clock.now() : Date.now;
    this.onFetch = onFetch;
  }

  get(): Promise<KeySet> {
    if (this.keys && this.now() - this.fetchedAt < this.source.cacheDurationMs) return Promise.resolve(this.keys);
    this.inflight ??= this.fetch().then(
      (keys) => {
        this.inflight = undefined;
        this.keys = keys;
        this.fetchedAt = this.now();
        this.onFetch(true);
        return keys;
      },
      (err: unknown) => {
        this.inflight = undefined;
        this.onFetch(false);
        throw err;
      },
    );
    return this.inflight;
  }

  private async fetch(): Promise<KeySet> {
    const url = new URL(this.source.uri);
    const host = this.clusters.get(this.source.cluster)?.pickHost();
    let text: string;
    if (url.protocol === 'http:' && host) {
      text = await new Promise<string>((resolve, reject) => {
        const req = httpRequest({ host: host.address, port: host.port, path: `${url.pathname}${url.search}`, headers: { host: url.host }, timeout: this.source.timeoutMs }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString()) : reject(new Error(`status ${res.statusCode}`))));
          res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', reject);
        req.end();
      });
    } else {
      const res = await fetch(url, { signal: AbortSignal.timeout(this.source.timeoutMs) });
      if (res.status !== 200) throw new Error(`status ${res.status}`);
      text = await res.text();
    }
    return parseJwks(text);
  }
}
