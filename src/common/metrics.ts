// Prometheus metrics of one process. Components register their metrics on the
// registry they are given, so a test can use a fresh one.

import { collectDefaultMetrics, Registry } from 'prom-client';

export { Registry };

/** A registry with Node's process metrics (CPU, memory, event loop lag). */
export function createProcessRegistry(prefix = ''): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix });
  return registry;
}
