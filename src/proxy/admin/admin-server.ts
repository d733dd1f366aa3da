// The admin API on loopback, in Envoy's shapes: /ready, /server_info,
// /config_dump, /clusters, /listeners, /stats, /stats/prometheus,
// /quitquitquit. It reads live state; it never changes config.

import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { once } from 'node:events';
import { TypeUrl, TYPE_URL_PREFIX } from '../../xds/index.ts';
import { renderJson } from '../config/proto-json.ts';
import { BOOTSTRAP_TYPE_URL } from '../bootstrap.ts';
import type { DecodedBootstrap } from '../bootstrap.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import type { ListenerManager } from '../listener-manager.ts';
import type { StatsStore } from '../stats.ts';
import type { SecretProvider } from '../secrets/secret-manager.ts';
import { renderSecret } from '../secrets/secret-dump.ts';
import type { AdminExtrasView } from './admin-extras.ts';
import { ADMIN_EXTRA_PATHS, handleAdminExtras } from './admin-extras.ts';

/** What the admin API reads of the proxy (the Proxy class provides it). */
export interface AdminView {
  readonly state: string;
  readonly bootstrap: DecodedBootstrap;
  readonly startedAt: number;
  readonly clusters: ClusterManager;
  readonly listeners: ListenerManager;
  readonly stats: StatsStore;
  readonly routes: ReadonlyMap<string, { readonly raw: unknown; readonly version: string | undefined; readonly lastUpdated: Date }>;
  /** Static and SDS secrets (SecretsConfigDump, `istioctl proxy-config secret`). */
  readonly secrets?: { all(): readonly SecretProvider[] };
  requestQuit(): void;
  /** /logging sets its level. */
  readonly logger?: AdminExtrasView['logger'];
  /** /drain_listeners. */
  drainListeners?: AdminExtrasView['drainListeners'];
}

export interface AdminServer {
  readonly port: number;
  close(): Promise<void>;
}

const VERSION = 'mesh-proxy/0.1.0/Clean/RELEASE';
const ts = (d: Date): string => d.toISOString();

function configDump(p: AdminView): unknown {
  const clusters = p.clusters.all();
  const listeners = p.listeners.all();
  const routes = [...p.routes.values()];
  return {
    configs: [
      { '@type': `${TYPE_URL_PREFIX}envoy.admin.v3.BootstrapConfigDump`, bootstrap: renderJson(BOOTSTRAP_TYPE_URL, p.bootstrap), last_updated: new Date(p.startedAt).toISOString() },
      {
        '@type': `${TYPE_URL_PREFIX}envoy.admin.v3.ClustersConfigDump`,
        static_clusters: clusters.filter((c) => c.version === undefined).map((c) => ({ cluster: { '@type': TypeUrl.Cluster, ...renderJson(TypeUrl.Cluster, c.cluster.config.raw) }, last_updated: ts(c.lastUpdated) })),
        dynamic_active_clusters: clusters.filter((c) => c.version !== undefined).map((c) => ({ version_info: c.version, cluster: { '@type': TypeUrl.Cluster, ...renderJson(TypeUrl.Cluster, c.cluster.config.raw) }, last_updated: ts(c.lastUpdated) })),
      },
      {
        '@type': `${TYPE_URL_PREFIX}envoy.admin.v3.ListenersConfigDump`,
        static_listeners: listeners.filter((l) => l.version === undefined).map((l) => ({ listener: { '@type': TypeUrl.Listener, ...renderJson(TypeUrl.Listener, l.config.raw) }, last_updated: ts(l.lastUpdated) })),
        dynamic_listeners: listeners
          .filter((l) => l.version !== undefined)
          .map((l) => ({ name: l.config.name, active_state: { version_info: l.version, listener: { '@type': TypeUrl.Listener, ...renderJson(TypeUrl.Listener, l.config.raw) }, last_updated: ts(l.lastUpdated) } })),
      },
      {
        '@type': `${TYPE_URL_PREFIX}envoy.admin.v3.RoutesConfigDump`,
        dynamic_route_configs: routes.map((r) => ({ version_info: r.version, route_config: { '@type': TypeUrl.RouteConfiguration, ...renderJson(TypeUrl.RouteConfiguration, r.raw) }, last_updated: ts(r.lastUpdated) })),
      },
      renderSecretsDump(p.secrets?.all() ?? []),
    ],
  };
}

function renderSecretsDump(secrets: readonly SecretProvider[]): unknown {
  const entry = (s: SecretProvider): Record<string, unknown> => ({ name: s.name, version_info: s.versionInfo, last_updated: s.lastUpdated && ts(s.lastUpdated), secret: renderSecret(s.name, s.current) });
  return {
    '@type': `${TYPE_URL_PREFIX}envoy.admin.v3.SecretsConfigDump`,
    static_secrets: secrets.filter((s) => s.source.kind === 'static').map((s) => ({ name: s.name, last_updated: s.lastUpdated && ts(s.lastUpdated), secret: renderSecret(s.name, s.current) })),
    dynamic_active_secrets: secrets.filter((s) => s.source.kind !== 'static' && s.current).map(entry),
    dynamic_warming_secrets: secrets.filter((s) => s.source.kind !== 'static' && !s.current).map((s) => ({ name: s.name })),
  };
}

function clustersText(p: AdminView): string {
  let out = '';
  for (const { cluster } of p.clusters.all()) {
    const n = cluster.name;
    const cb = cluster.config.circuitBreakers;
    out += `${n}::observability_name::${n}\n`;
    out += `${n}::default_priority::max_connections::${cb.maxConnections}\n${n}::default_priority::max_pending_requests::${cb.maxPendingRequests}\n`;
    out += `${n}::default_priority::max_requests::${cb.maxRequests}\n${n}::default_priority::max_retries::${cb.maxRetries}\n`;
    for (const h of cluster.hostList) {
      const k = `${n}::${h.key}`;
      out += `${k}::cx_connect_fail::${h.cxConnectFail}\n${k}::rq_active::${h.activeRequests}\n${k}::rq_error::${h.rqError}\n${k}::rq_total::${h.rqTotal}\n`;
      out += `${k}::hostname::\n${k}::health_flags::${h.routable ? 'healthy' : '/failed_eds_health'}\n${k}::weight::${h.weight}\n${k}::region::\n${k}::zone::\n${k}::sub_zone::\n${k}::canary::false\n${k}::priority::${h.priority}\n`;
    }
  }
  return out;
}

function clustersJson(p: AdminView): unknown {
  return {
    cluster_statuses: p.clusters.all().map(({ cluster, version }) => ({
      name: cluster.name,
      added_via_api: version !== undefined,
      host_statuses: cluster.hostList.map((h) => ({
        address: { socket_address: { address: h.address, port_value: h.port } },
        stats: [
          { name: 'cx_connect_fail', value: String(h.cxConnectFail) },
          { name: 'rq_error', value: String(h.rqError) },
          { name: 'rq_total', value: String(h.rqTotal) },
          { type: 'GAUGE', name: 'rq_active', value: String(h.activeRequests) },
        ],
        health_status: { eds_health_status: h.health },
        weight: h.weight,
        priority: h.priority,
      })),
    })),
  };
}

function handle(p: AdminView, req: IncomingMessage, res: ServerResponse, stop: () => void): void {
  const url = new URL(req.url ?? '/', 'http://admin');
  const json = (v: unknown): void => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(v, null, 2));
  };
  const text = (v: string, status = 200, type = 'text/plain; charset=UTF-8'): void => {
    res.writeHead(status, { 'content-type': type });
    res.end(v);
  };
  switch (url.pathname) {
    case '/ready':
      return p.state === 'LIVE' ? text('LIVE\n') : text(`${p.state}\n`, 503);
    case '/server_info': {
      const up = Math.floor((Date.now() - p.startedAt) / 1000);
      return json({ version: VERSION, state: p.state, hot_restart_version: 'disabled', command_line_options: { concurrency: 1, mode: 'Serve' }, node: p.bootstrap.node ?? {}, uptime_current_epoch: `${up}s`, uptime_all_epochs: `${up}s` });
    }
    case '/config_dump':
      return json(configDump(p));
    case '/clusters':
      return url.searchParams.get('format') === 'json' ? json(clustersJson(p)) : text(clustersText(p));
    case '/listeners': {
      const ls = p.listeners.all();
      if (url.searchParams.get('format') === 'json') return json({ listener_statuses: ls.map((l) => ({ name: l.config.name, local_address: { socket_address: { address: l.config.address, port_value: l.boundPort } } })) });
      return text(ls.map((l) => `${l.config.name}::${l.config.address}:${l.boundPort}\n`).join(''));
    }
    case '/stats': {
      const filter = url.searchParams.get('filter');
      let re: RegExp | undefined;
      try {
        re = filter ? new RegExp(filter) : undefined;
      } catch {
        return text(`Invalid regex: "${filter}"\n`, 400);
      }
      if (url.searchParams.get('format') === 'json') return json(p.stats.json(re));
      if (url.searchParams.get('format') === 'prometheus') return text(p.stats.prometheus(), 200, 'text/plain; version=0.0.4');
      return text(p.stats.text(re));
    }
    case '/stats/prometheus':
      return text(p.stats.prometheus(), 200, 'text/plain; version=0.0.4');
    case '/quitquitquit':
      if (req.method !== 'POST') return text('This operation requires a POST.\n', 405);
      text('OK\n');
      return stop();
    case '/':
      return text(['/ready', '/server_info', '/config_dump', '/clusters', '/listeners', '/stats', '/stats/prometheus', '/quitquitquit', ...ADMIN_EXTRA_PATHS].join('\n') + '\n');
    default:
      if (handleAdminExtras(p, req, res, url)) return;
      return text(`invalid path: ${url.pathname}\n`, 404);
  }
}

export async function startAdmin(proxy: AdminView, address: string, port: number): Promise<AdminServer> {
  const server = createServer((req, res) => handle(proxy, req, res, () => setImmediate(() => proxy.requestQuit())));
  server.listen(port, address);
  await once(server, 'listening');
  return {
    port: (server.address() as { port: number }).port,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}
