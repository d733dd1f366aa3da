// Runs one mesh proxy from a bootstrap JSON file for the benchmark, as a
// separate process so its CPU and RSS can be read from /proc. Prints "ready"
// when listeners are bound; exits cleanly on SIGTERM (so --cpu-prof writes
// its profile).
//
// usage: node run-proxy.ts <bootstrap.json>

import { readFileSync } from 'node:fs';
import { Proxy, parseBootstrap } from '../../src/proxy/index.ts';

const file = process.argv[2];
const proxy = await Proxy.start({ bootstrap: parseBootstrap(readFileSync(file, 'utf8'), file) });
process.stdout.write('ready\n');
const stop = (): void => {
  void proxy.stop().finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
