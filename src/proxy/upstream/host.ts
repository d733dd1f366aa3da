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
  /** Its locality's load_balancing_weight (locality-weighted LB). */
  localityWeight = 0;
  /** Endpoint metadata for transport_socket_matches (Istio auto mTLS: tlsMode=istio). */
  transportSocketMatch: Readonly<Record<string, string>> | undefined = undefined;
  /** Requests in flight to this host (LEAST_REQUEST reads it). */
  activeRequests = 0;
  rqTotal = 0;
  rqError = 0;
  cxActive = 0;
  cxConnectFail = 0;
  /** Set by outlier detection while the host is ejected. */
  outlierEjected = false;
  /** Set by active health checking while the host fails its checks (Envoy's FAILED_ACTIVE_HC). */
  activeHcFailed = false;

  constructor(address: string, port: number) {
    this.address = address;
    this.port = port;
    this.key = `${address}:${port}`;
  }

  /** Envoy routes to HEALTHY, UNKNOWN and DEGRADED hosts; never to UNHEALTHY, DRAINING or TIMEOUT. */
  get routable(): boolean {
    return this.health === 'HEALTHY' || this.health === 'UNKNOWN' || this.health === 'DEGRADED';
  }

  /** Routable and neither ejected nor failing active health checks: the hosts a load balancer prefers. */
  get healthy(): boolean {
    return this.routable && !this.outlierEjected && !this.activeHcFailed;
  }
}
