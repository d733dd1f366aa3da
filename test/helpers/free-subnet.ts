// A subnet for a capture test's mesh bridge that clashes with nothing on
// this host (tests that create bridges run beside each other and beside
// the host's own networks).

import { randomBytes } from 'node:crypto';
import { inSubnet, runCommand } from '../../src/agent/capture/index.ts';

/**
 * A random 10.X.Y.0/24 that no route on this host overlaps, for a test's
 * mesh bridge; X is drawn from `secondOctet` (first value and how many).
 */
export async function freeSubnet(secondOctet: { readonly from: number; readonly count: number } = { from: 200, count: 50 }): Promise<string> {
  const routes = (await runCommand('ip', ['-4', 'route', 'show', 'table', 'all'])).stdout;
  const prefixes = [...routes.matchAll(/^(?:\S+\s+)?(\d+\.\d+\.\d+\.\d+)(?:\/(\d+))?/gm)].map((m) => `${m[1]}/${m[2] ?? '32'}`);
  for (let i = 0; i < 50; i++) {
    const s = `10.${secondOctet.from + (randomBytes(1)[0]! % secondOctet.count)}.${randomBytes(1)[0]}.0/24`;
    const clash = prefixes.some((p) => inSubnet(p.split('/')[0]!, s) || (Number(p.split('/')[1]) <= 24 && inSubnet(s.split('/')[0]!, p)));
    if (!clash) return s;
  }
  throw new Error('no free 10.x /24 subnet for the mesh bridge');
}
