#!/usr/bin/env -S node --disable-warning=ExperimentalWarning
// Entry point of the `mesh` command. The sources are TypeScript run directly by
// Node's type stripping (Node 24+), so there is no build step. Sidecar
// processes (`mesh run`, `mesh gateway`) take a light entry that loads only
// the agent and the proxy.
const argv = process.argv.slice(2);
const light = argv[0] === 'run' || argv[0] === 'gateway';
const { main } = await import(light ? '../src/cli/sidecar-main.ts' : '../src/cli/main.ts');

process.exitCode = await main(argv);
