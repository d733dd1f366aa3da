// Request mirroring (route request_mirror_policies): a fire-and-forget copy
// of the request to another cluster, its Host suffixed with `-shadow` (before
// any port), sent to runtime_fraction of requests. The mirror's response is
// read and discarded; its failures never touch the original request.

import { request } from 'node:http';
import type { OutgoingHttpHeaders } from 'node:http';
import type { MirrorPolicy } from '../../../config/route-resilience.ts';
import type { ClusterManager } from '../../../upstream/cluster-manager.ts';
import type { BufferedBody } from './retry-state.ts';

/** `foo.com:8080` -> `foo.com-shadow:8080` (Envoy's shadow host). */
export function shadowHost(host: string): string {
  const colon = host.lastIndexOf(':');
  const bracket = host.lastIndexOf(']');
  if (colon > bracket && colon > 0) return `${host.slice(0, colon)}-shadow${host.slice(colon)}`;
  return `${host}-shadow`;
}

const discard = (): void => {};

/** Sends copies for the policies that fire; the body streams from `body`. */
export function sendMirrors(clusters: ClusterManager, policies: readonly MirrorPolicy[], method: string, path: string, headers: OutgoingHttpHeaders, body: BufferedBody, random: () => number = Math.random): void {
  for (const p of policies) {
    if (p.fraction < 1 && !(random() < p.fraction)) continue;
    const cluster = clusters.get(p.cluster);
    if (!cluster || cluster.requestOverflow()) continue;
    const host = cluster.pickHost();
    if (!host) continue;
    const h: OutgoingHttpHeaders = { ...headers };
    if (!p.keepHost && typeof h.host === 'string') h.host = shadowHost(h.host);
    cluster.stats.upstream_rq_total.value++;
    const up = request({ agent: cluster.agent, host: host.address, port: host.port, method, path, headers: h, setHost: false });
    up.on('response', (res) => {
      cluster.countResponse(res.statusCode ?? 0);
      res.resume();
    });
    up.on('error', discard);
    body.attach(up);
  }
}
