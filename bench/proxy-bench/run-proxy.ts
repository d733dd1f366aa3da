// Runs one mesh proxy from a bootstrap JSON file for the benchmark, as a
// separate process so its CPU and RSS can be read from /proc. Prints "ready"
// when listeners are bound; exits cleanly on SIGTERM (so --cpu-prof writes
// its profile).
//
// Loads its modules through V8's compile cache as bin/mesh.js does for the
// sidecars the runtime starts (MESH_CACHE_DIR, `off` to skip it): without
// it node also loads its TypeScript stripper, about 20 MB of RSS a real
// sidecar does not carry. A source edited since the cache was written is a
// miss on the next run (the stripper comes back for that run).
//
// usage: node run-proxy.ts <bootstrap.json>

import { readFileSync } from 'node:fs';
import { enableCompileCache } from 'node:module';
import { fileURLToPath } from 'node:url';

const cacheRoot = process.env.MESH_CACHE_DIR;
if (cacheRoot !== 'off') enableCompileCache(cacheRoot ? `${cacheRoot}/v8` : fileURLToPath(new URL('../../node_modules/.cache/mesh/v8', import.meta.url)));
// Imported after the cache is on: static imports would be loaded before it.
const { Proxy, parseBootstrap } = await import('../../src/proxy/index.ts');

const file = process.argv[2];
const proxy = await Proxy.start({ bootstrap: parseBootstrap(readFileSync(file, 'utf8'), file) });
process.stdout.write('ready\n');
const stop = (): void => {
  void proxy.stop().finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
