// Consistent-hash load balancers: RING_HASH (Ketama-style ring, each host
// owning points in proportion to its weight) and MAGLEV (Google's lookup
// table, prime size 65537 by default). Both are built once per host set and
// pick by binary search or one index, allocating nothing. Without a hash
// (no hash_policy produced one) they pick at random, as Envoy does.

import type { Host } from './host.ts';

/** A 32-bit string hash with good avalanche (FNV-1a then murmur3's fmix32). */
export function hashString(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Envoy combines the hashes of several hash policies by rotating left one bit and XOR-ing. */
export function combineHash(acc: number | undefined, h: number): number {
  if (acc === undefined) return h >>> 0;
  return (((acc << 1) | (acc >>> 31)) ^ h) >>> 0;
}

export interface HashLoadBalancer {
  /** `attempt` > 0 walks away from the first choice (host selection retries). */
  pick(hash: number | undefined, attempt: number): Host | undefined;
}

export interface HashLbOptions {
  readonly ringMinSize: number;
  readonly ringMaxSize: number;
  readonly maglevTableSize: number;
  readonly random?: () => number;
}

export function createHashLoadBalancer(policy: 'RING_HASH' | 'MAGLEV', hosts: readonly Host[], options: HashLbOptions): HashLoadBalancer {
  const random = options.random ?? Math.random;
  if (hosts.length === 0) return { pick: () => undefined };
  if (hosts.length === 1) return { pick: () => hosts[0] };
  return policy === 'MAGLEV' ? maglev(hosts, options.maglevTableSize, random) : ring(hosts, options, random);
}

function ring(hosts: readonly Host[], options: HashLbOptions, random: () => number): HashLoadBalancer {
  let total = 0;
  let minWeight = Infinity;
  for (const h of hosts) {
    total += h.weight;
    minWeight = Math.min(minWeight, h.weight);
  }
  // Envoy: enough entries that the lightest host gets at least one, within [min, max].
  const size = Math.min(options.ringMaxSize, Math.max(options.ringMinSize, Math.ceil(total / minWeight)));
  const entries: Array<[number, number]> = [];
  hosts.forEach((h, i) => {
    const replicas = Math.max(1, Math.round((size * h.weight) / total));
    for (let j = 0; j < replicas; j++) entries.push([hashString(`${h.key}_${j}`), i]);
  });
  entries.sort((a, b) => a[0] - b[0]);
  const points = new Uint32Array(entries.length);
  const owners = new Uint32Array(entries.length);
  entries.forEach(([p, i], k) => {
    points[k] = p;
    owners[k] = i;
  });
  const n = points.length;
  return {
    pick(hash, attempt) {
      if (hash === undefined) return hosts[Math.floor(random() * hosts.length)];
      // The first point at or after the hash, wrapping around.
      let lo = 0;
      let hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (points[mid] < hash) lo = mid + 1;
        else hi = mid;
      }
      if (attempt === 0) return hosts[owners[lo % n]];
      // A retry walks the ring to the attempt-th distinct host after the first choice.
      const first = owners[lo % n];
      let seen = 0;
      for (let k = 1; k < n; k++) {
        const o = owners[(lo + k) % n];
        if (o !== first && ++seen >= attempt) return hosts[o];
      }
      return hosts[first];
    },
  };
}

function maglev(hosts: readonly Host[], m: number, random: () => number): HashLoadBalancer {
  const n = hosts.length;
  const offset = new Uint32Array(n);
  const skip = new Uint32Array(n);
  const next = new Uint32Array(n);
  const credit = new Float64Array(n);
  let maxWeight = 0;
  for (let i = 0; i < n; i++) {
    offset[i] = hashString(hosts[i].key, 0x9747b28c) % m;
    skip[i] = (hashString(hosts[i].key, 0x5bd1e995) % (m - 1)) + 1;
    maxWeight = Math.max(maxWeight, hosts[i].weight);
  }
  const table = new Int32Array(m).fill(-1);
  let filled = 0;
  // Weighted Maglev: each round a host earns weight/maxWeight of a slot.
  while (filled < m) {
    for (let i = 0; i < n && filled < m; i++) {
      credit[i] += hosts[i].weight / maxWeight;
      if (credit[i] < 1) continue;
      credit[i] -= 1;
      let c = (offset[i] + next[i] * skip[i]) % m;
      while (table[c] >= 0) {
        next[i]++;
        c = (offset[i] + next[i] * skip[i]) % m;
      }
      table[c] = i;
      next[i]++;
      filled++;
    }
  }
  return {
    pick(hash, attempt) {
      if (hash === undefined) return hosts[Math.floor(random() * n)];
      const h = attempt === 0 ? hash : hashString(String(attempt), hash);
      return hosts[table[h % m]];
    },
  };
}
