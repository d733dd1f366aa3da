#!/usr/bin/env -S node --disable-warning=ExperimentalWarning
// Entry point of the `mesh` command. The sources are TypeScript run directly by
// Node's type stripping (Node 24+), so there is no build step. Sidecars,
// gateways and `mesh up`/`mesh down` take a light entry that loads only their
// own command (src/cli/light-main.ts); everything else loads the whole CLI.
const argv = process.argv.slice(2);
const light = await import('../src/cli/light-main.ts');
const { main } = light.isLightCommand(argv[0]) ? light : await import('../src/cli/main.ts');

process.exitCode = await main(argv);
