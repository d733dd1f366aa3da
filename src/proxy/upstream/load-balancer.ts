// Load balancers over one priority's healthy hosts: ROUND_ROBIN (smooth
// weighted when weights differ, which spreads picks like Envoy's EDF
// scheduler), LEAST_REQUEST (power of two choices), RANDOM. Built once per
// host set; picking allocates nothing.

import type { LbPolicy } from '../config/cluster-config.ts';
import type { Host } from './host.ts';

export interface LoadBalancer {
  pick(): Host | undefined;
}

const EMPTY: LoadBalancer = { pick: () => undefined };

export function createLoadBalancer(policy: LbPolicy, hosts: readonly Host[], random: () => number = Math.random): LoadBalancer {
  const n = hosts.length;
  if (n === 0) return EMPTY;
  if (n === 1) return { pick: () => hosts[0] };
  switch (policy) {
    case 'RANDOM':
      return { pick: () => hosts[Math.floor(random() * n)] };
    case 'LEAST_REQUEST':
      return {
        pick() {
          const a = hosts[Math.floor(random() * n)];
          const b = hosts[Math.floor(random() * n)];
          return b.activeRequests < a.activeRequests ? b : a;
        },
      };
    case 'ROUND_ROBIN':
    default: {
      const equal = hosts.every((h) => h.weight === hosts[0].weight);
      // A random start so a fleet of proxies does not hit the first host in step.
      let next = Math.floor(random() * n);
      if (equal) return { pick: () => hosts[next++ % n] };
      const current = new Float64Array(n);
      let total = 0;
      for (const h of hosts) total += h.weight;
      return {
        pick() {
          let best = 0;
          for (let i = 0; i < n; i++) {
            current[i] += hosts[i].weight;
            if (current[i] > current[best]) best = i;
          }
          current[best] -= total;
          return hosts[best];
        },
      };
    }
  }
}
