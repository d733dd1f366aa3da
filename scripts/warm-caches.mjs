// Run by `npm install` / `npm ci` (postinstall): fills the caches a mesh
// process reads at start, so that the first `npm start` after install is as
// fast as the next ones: V8's compile cache for the sources (bin/mesh.js
// enables it) and the parsed Envoy protos (src/xds/protos.ts). Offline, a few
// seconds; a failure only means a slower first start, never a failed install.
import { enableCompileCache, flushCompileCache } from 'node:module';
import { fileURLToPath } from 'node:url';

const cacheRoot = process.env.MESH_CACHE_DIR;
if (cacheRoot === 'off') process.exit(0);
try {
  enableCompileCache(cacheRoot ? `${cacheRoot}/v8` : fileURLToPath(new URL('../node_modules/.cache/mesh/v8', import.meta.url)));
  // Importing evaluates the module graphs of the whole CLI, the sidecar and the control plane (no side effects at import).
  await import('../src/cli/main.ts');
  for (const command of ['run', 'gateway', 'up', 'down']) await import(`../src/cli/commands/${command}.ts`);
  const { loadXdsProtos, ADS_PROTO_FILES } = await import('../src/xds/index.ts');
  loadXdsProtos();
  loadXdsProtos(ADS_PROTO_FILES);
  flushCompileCache();
} catch (err) {
  process.stderr.write(`mesh: warming the start-up caches failed (the first start will be slower): ${err?.message ?? err}\n`);
}
