// One upstream endpoint and its live counters. Hosts keep their identity
// (address:port) across EDS/DNS updates so active-request counts and stats
// survive an update.

import type { HealthStatus } from '../config/cluster-config.ts';

export class Host {
  readonly key: string;
  readonly address: string;
  readonly port: number;
  weight = 1;
  priority = 0;
  health: HealthStatus = 'UNKNOWN';
  locality = '';
  /** Requests in flight to this host (LEAST_REQUEST reads it). */
  activeRequests = 0;
  rqTotal = 0;
  rqError = 0;
  cxActive = 0;
  cxConnectFail = 0;

  constructor(address: string, port: number) {
    this.address = address;
    this.port = port;
    this.key = `${address}:${port}`;
  }

  /** Envoy routes to HEALTHY, UNKNOWN and DEGRADED hosts; never to UNHEALTHY, DRAINING or TIMEOUT. */
  get routable(): boolean {
    return this.health === 'HEALTHY' || this.health === 'UNKNOWN' || this.health === 'DEGRADED';
  }
}
