#!/usr/bin/env -S node --disable-warning=ExperimentalWarning
// Entry point of the `mesh` command. The sources are TypeScript run directly by
// Node's type stripping (Node 24+), so there is no build step. Sidecars,
// gateways and `mesh up`/`mesh down` take a light entry that loads only their
// own command (src/cli/light-main.ts); everything else loads the whole CLI.
import { enableCompileCache } from 'node:module';
import { fileURLToPath } from 'node:url';

// V8's compile cache for the sources, beside the parsed-proto cache: loading a
// sidecar's modules takes about half the CPU with it (docs/runtime.md, start
// time). MESH_CACHE_DIR=off turns both caches off.
const cacheRoot = process.env.MESH_CACHE_DIR;
if (cacheRoot !== 'off') enableCompileCache(cacheRoot ? `${cacheRoot}/v8` : fileURLToPath(new URL('../node_modules/.cache/mesh/v8', import.meta.url)));

const argv = process.argv.slice(2);

// A proxy started by hand (`mesh run`, `mesh gateway`, `mesh proxy -c`)
// takes the V8 flags the runtime gives the sidecars it starts
// (src/runtime/node-flags.ts): without them a sidecar at full speed held
// 154-172 MB instead of 127-132. The process replaces itself with one that has them:
// same pid and stdio, nothing loaded yet but this check.
if (['run', 'gateway', 'proxy'].includes(argv[0]) && typeof process.execve === 'function') {
  const { missingSidecarFlags } = await import('../src/runtime/node-flags.ts');
  const missing = missingSidecarFlags(process.execArgv);
  if (missing.length > 0) process.execve(process.execPath, [process.execPath, ...process.execArgv, ...missing, process.argv[1], ...argv], process.env);
}
const light = await import('../src/cli/light-main.ts');
const { main } = light.isLightCommand(argv[0]) ? light : await import('../src/cli/main.ts');

process.exitCode = await main(argv);
