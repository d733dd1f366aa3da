#!/usr/bin/env -S node --disable-warning=ExperimentalWarning
// Entry point of the `mesh` command. The sources are TypeScript run directly by
// Node's type stripping (Node 24+), so there is no build step.
import { main } from '../src/cli/main.ts';

process.exitCode = await main(process.argv.slice(2));
