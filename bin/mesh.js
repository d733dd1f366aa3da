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
const light = await import('../src/cli/light-main.ts');
const { main } = light.isLightCommand(argv[0]) ? light : await import('../src/cli/main.ts');

process.exitCode = await main(argv);
