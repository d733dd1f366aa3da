// HTTP upgrades as the connection manager sees them: a request that asked
// to leave HTTP (WebSocket's `Upgrade:`, or CONNECT) and the raw socket it
// came on. Whether an upgrade may happen is Envoy's rule: the route's
// upgrade_configs entry for the type wins, else the HCM's, else refused.

import type { Socket } from 'node:net';
import type { Route } from '../config/route-config.ts';

export interface UpgradeRequest {
  /** Lower-cased upgrade type: "websocket", ..., or "connect" for CONNECT. */
  readonly type: string;
  /** The downstream connection, no longer parsed as HTTP. */
  readonly socket: Socket;
  /** Bytes that arrived after the request head (already part of the upgraded stream). */
  readonly head: Buffer;
  /** Set once the upstream accepted and bytes flow both ways: the socket is no longer the response's to close. */
  established: boolean;
}

export function upgradeAllowed(type: string, route: Route, hcmUpgrades: ReadonlyMap<string, boolean>): boolean {
  const action = route.action;
  if (action.type !== 'cluster') return true; // direct responses and redirects answer before any upgrade
  const perRoute = action.upgrades?.get(type);
  if (perRoute) return perRoute.enabled;
  return hcmUpgrades.get(type) ?? false;
}
