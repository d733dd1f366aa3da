// Pilot's debug endpoints, Istio's names and roughly Istio's shapes:
// /debug/syncz (per-proxy sync state), /debug/config_dump?proxyID=... (what
// Pilot last generated for a proxy, shaped like Envoy's admin config dump) and
// /debug/adsz (open streams). Mounted on the monitoring port by the control
// plane: the handler answers its own paths and returns false for others.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { TypeUrl } from '../../xds/index.ts';
import type { PushContextLike } from '../model/index.ts';
import type { PilotXdsServer, ProxyConfig } from './xds-server.ts';

export type DebugHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

const ADMIN = 'type.googleapis.com/envoy.admin.v3.';

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function iso(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

/** Envoy's ConfigDump shape (envoy.admin.v3.*ConfigDump), from what Pilot generated rather than what Envoy holds. */
export function toConfigDump(config: ProxyConfig): { configs: object[] } {
  const of = (typeUrl: string) => config.types[typeUrl];
  const entries = (typeUrl: string, wrap: (value: object, version: string | undefined, lastUpdated: string | undefined) => object) => {
    const t = of(typeUrl);
    return t ? t.resources.map((r) => wrap({ '@type': typeUrl, ...r }, t.version, iso(t.lastPushAt))) : [];
  };
  return {
    configs: [
      {
        '@type': `${ADMIN}ClustersConfigDump`,
        dynamic_active_clusters: entries(TypeUrl.Cluster, (cluster, version_info, last_updated) => ({ version_info, cluster, last_updated })),
      },
      {
        '@type': `${ADMIN}ListenersConfigDump`,
        dynamic_listeners: entries(TypeUrl.Listener, (listener, version_info, last_updated) => ({
          name: (listener as { name?: string }).name,
          active_state: { version_info, listener, last_updated },
        })),
      },
      {
        '@type': `${ADMIN}RoutesConfigDump`,
        dynamic_route_configs: entries(TypeUrl.RouteConfiguration, (route_config, version_info, last_updated) => ({ version_info, route_config, last_updated })),
      },
      {
        '@type': `${ADMIN}EndpointsConfigDump`,
        dynamic_endpoint_configs: entries(TypeUrl.ClusterLoadAssignment, (endpoint_config, version_info, last_updated) => ({ version_info, endpoint_config, last_updated })),
      },
    ],
  };
}

/** Answers GET /debug/syncz, /debug/config_dump and /debug/adsz; false for any other path. */
export function createPilotDebugHandler<P extends PushContextLike>(server: PilotXdsServer<P>): DebugHandler {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = url.pathname;
    if (route !== '/debug/syncz' && route !== '/debug/config_dump' && route !== '/debug/adsz') return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJson(res, 405, { error: `${req.method} not allowed on ${route}` });
      return true;
    }
    if (route === '/debug/syncz') {
      sendJson(res, 200, server.proxyStatus());
    } else if (route === '/debug/adsz') {
      sendJson(res, 200, { totalClients: server.stats().connections, clients: server.connectionsInfo() });
    } else {
      const proxyId = url.searchParams.get('proxyID');
      if (!proxyId) {
        sendJson(res, 400, { error: 'query parameter proxyID is required' });
        return true;
      }
      const config = server.proxyConfig(proxyId);
      if (!config) sendJson(res, 404, { error: `no connected proxy ${proxyId}` });
      else sendJson(res, 200, toConfigDump(config));
    }
    return true;
  };
}
