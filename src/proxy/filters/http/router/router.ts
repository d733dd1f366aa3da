// The router filter (envoy.filters.http.router): the terminal HTTP filter.
// Direct responses and redirects answer locally; cluster routes pick a
// cluster (weighted), a host (the cluster's load balancer), check circuit
// breakers and stream the request through the cluster's keep-alive pool with
// pipe() backpressure both ways. Failures map to Envoy's codes and flags:
// 503 UH/UF/UO/UC/NC, 504 UT.

import { request } from 'node:http';
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { performance } from 'node:perf_hooks';
import { TypeUrl } from '../../../../xds/index.ts';
import type { ClusterAction, HeaderMutation, RedirectAction } from '../../../config/route-config.ts';
import type { ClusterManager } from '../../../upstream/cluster-manager.ts';
import type { Cluster } from '../../../upstream/cluster.ts';
import { CONNECT_TIMEOUT } from '../../../upstream/cluster.ts';
import type { Host } from '../../../upstream/host.ts';
import type { HttpFilterExtension, HttpFilterFactory } from '../../../registry.ts';
import type { FilterStatus, HttpFilter, HttpStream } from '../http-filter.ts';

// Hop-by-hop headers never cross the proxy.
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer'];

export function applyHeaderMutation(headers: OutgoingHttpHeaders | Record<string, unknown>, m: HeaderMutation): void {
  for (const name of m.remove) delete headers[name];
  for (const h of m.add) {
    const cur = headers[h.name];
    switch (h.action) {
      case 'append':
        headers[h.name] = cur === undefined ? h.value : Array.isArray(cur) ? [...cur, h.value] : [String(cur), h.value];
        break;
      case 'add_if_absent':
        if (cur === undefined) headers[h.name] = h.value;
        break;
      case 'overwrite':
        headers[h.name] = h.value;
        break;
      case 'overwrite_if_exists':
        if (cur !== undefined) headers[h.name] = h.value;
        break;
    }
  }
}

const CONNECT_FAILURE = 'upstream connect error or disconnect/reset before headers. reset reason: connection failure';
const CONNECT_TERMINATION = 'upstream connect error or disconnect/reset before headers. reset reason: connection termination';
const OVERFLOW = 'upstream connect error or disconnect/reset before headers. reset reason: overflow';

export class RouterFilter implements HttpFilter {
  private readonly clusters: ClusterManager;
  private timer: NodeJS.Timeout | undefined;

  constructor(clusters: ClusterManager) {
    this.clusters = clusters;
  }

  decodeHeaders(s: HttpStream): FilterStatus {
    const action = s.route.action;
    const stats = (s as unknown as { hcm: { stats: { rq_direct_response: { value: number }; rq_redirect: { value: number } } } }).hcm.stats;
    if (action.type === 'direct_response') {
      stats.rq_direct_response.value++;
      this.responseHeaders(s);
      s.sendLocalReply(action.status, action.body ?? '');
      return 'stop';
    }
    if (action.type === 'redirect') {
      stats.rq_redirect.value++;
      this.responseHeaders(s);
      s.res.setHeader('location', redirectLocation(action, s));
      s.sendLocalReply(action.status, '');
      return 'stop';
    }
    this.forward(s, action);
    return 'stop';
  }

  onDestroy(): void {
    if (this.timer) clearTimeout(this.timer);
  }

  private responseHeaders(s: HttpStream): void {
    const res = s.res;
    const h: Record<string, unknown> = {};
    for (const m of [s.route.responseHeaders, s.virtualHost.responseHeaders, s.routeTable.responseHeaders]) {
      if (m.add.length === 0 && m.remove.length === 0) continue;
      for (const name of m.remove) res.removeHeader(name);
      for (const a of m.add) h[a.name] = res.getHeader(a.name);
      applyHeaderMutation(h, { add: m.add, remove: [] });
      for (const a of m.add) if (h[a.name] !== undefined) res.setHeader(a.name, h[a.name] as string);
    }
  }

  private forward(s: HttpStream, action: ClusterAction): void {
    const name = action.cluster ?? pickWeighted(action);
    const cluster = this.clusters.get(name);
    if (!cluster) {
      s.sendLocalReply(503, '', 'NC');
      return;
    }
    const stats = cluster.stats;
    if (cluster.requestOverflow()) {
      stats.upstream_rq_pending_overflow.value++;
      s.res.setHeader('x-envoy-overloaded', 'true');
      s.sendLocalReply(503, OVERFLOW, 'UO');
      return;
    }
    const host = cluster.pickHost();
    if (!host) {
      stats.upstream_cx_none_healthy.value++;
      s.sendLocalReply(503, 'no healthy upstream', 'UH');
      return;
    }
    if (cluster.pendingOverflow()) {
      stats.upstream_rq_pending_overflow.value++;
      s.res.setHeader('x-envoy-overloaded', 'true');
      s.sendLocalReply(503, OVERFLOW, 'UO');
      return;
    }
    this.send(s, action, cluster, host);
  }

  private send(s: HttpStream, action: ClusterAction, cluster: Cluster, host: Host): void {
    const { req, res } = s;
    const headers = req.headers as OutgoingHttpHeaders;
    for (const h of HOP_BY_HOP) delete headers[h];
    let path = req.url ?? '/';
    if (action.prefixRewrite !== undefined && s.route.match.kind !== 'regex') {
      headers['x-envoy-original-path'] = path;
      path = action.prefixRewrite + path.slice(s.route.match.value.length);
    } else if (action.regexRewrite) {
      headers['x-envoy-original-path'] = path;
      path = action.regexRewrite.regex.matcher(s.path).replaceAll(action.regexRewrite.substitution) + (s.query ? `?${s.query}` : '');
    }
    if (action.hostRewrite) headers.host = action.hostRewrite;
    applyHeaderMutation(headers, s.route.requestHeaders);
    applyHeaderMutation(headers, s.virtualHost.requestHeaders);
    applyHeaderMutation(headers, s.routeTable.requestHeaders);
    s.upstreamHost = host.key;

    const stats = cluster.stats;
    stats.upstream_rq_total.value++;
    stats.upstream_rq_active.value++;
    stats.upstream_rq_pending_total.value++;
    stats.upstream_rq_pending_active.value++;
    host.activeRequests++;
    host.rqTotal++;
    let pending = true;
    let done = false;
    const started = performance.now();
    const finish = (): void => {
      if (done) return;
      done = true;
      if (pending) stats.upstream_rq_pending_active.value--;
      pending = false;
      stats.upstream_rq_active.value--;
      host.activeRequests--;
      if (this.timer) clearTimeout(this.timer);
    };

    const up = request({ agent: cluster.agent, host: host.address, port: host.port, method: req.method, path, headers, setHost: false });
    up.once('socket', () => {
      if (pending) stats.upstream_rq_pending_active.value--;
      pending = false;
    });
    up.once('response', (upRes: IncomingMessage) => {
      const status = upRes.statusCode ?? 502;
      cluster.countResponse(status);
      if (status >= 500) host.rqError++;
      if (s.ended) {
        upRes.destroy();
        return finish();
      }
      const out = upRes.headers as OutgoingHttpHeaders;
      for (const h of HOP_BY_HOP) delete out[h];
      out['x-envoy-upstream-service-time'] = String(Math.round(performance.now() - started));
      for (const m of [s.route.responseHeaders, s.virtualHost.responseHeaders, s.routeTable.responseHeaders]) applyHeaderMutation(out, m);
      for (const name in out) res.setHeader(name, out[name]!);
      res.writeHead(status);
      upRes.on('data', (chunk: Buffer) => (s.bytesSent += chunk.length));
      upRes.pipe(res);
      upRes.once('end', finish);
      upRes.once('error', () => {
        finish();
        res.destroy();
      });
    });
    up.once('error', (err: NodeJS.ErrnoException) => {
      const before = !res.headersSent;
      finish();
      if (s.ended) return;
      if (!before) {
        res.destroy();
        return;
      }
      if (err.code === 'MESH_UPSTREAM_TIMEOUT') return;
      const connectFailure = err.code === CONNECT_TIMEOUT || err.code === 'ECONNREFUSED' || err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH' || err.code === 'EADDRNOTAVAIL';
      if (connectFailure) {
        host.cxConnectFail++;
        s.sendLocalReply(503, CONNECT_FAILURE, 'UF');
      } else s.sendLocalReply(503, CONNECT_TERMINATION, 'UC');
    });
    // The downstream went away: reset the upstream request too.
    res.once('close', () => {
      if (!done) {
        up.destroy();
        finish();
      }
    });
    // Envoy's route timeout starts when the downstream request is complete.
    if (action.timeoutMs > 0) {
      const arm = (): void => {
        if (done) return;
        this.timer = setTimeout(() => {
          if (done) return;
          stats.upstream_rq_timeout.value++;
          const err = new Error('upstream request timeout') as NodeJS.ErrnoException;
          err.code = 'MESH_UPSTREAM_TIMEOUT';
          const before = !res.headersSent;
          up.destroy(err);
          finish();
          if (before) s.sendLocalReply(504, 'upstream request timeout', 'UT');
          else res.destroy();
        }, action.timeoutMs);
      };
      if (req.complete) arm();
      else req.once('end', arm);
    }
    req.pipe(up);
    req.on('data', (chunk: Buffer) => (s.bytesReceived += chunk.length));
  }
}

function pickWeighted(action: ClusterAction): string {
  const w = action.weighted!;
  let r = Math.random() * w.total;
  for (const c of w.clusters) {
    r -= c.weight;
    if (r < 0) return c.name;
  }
  return w.clusters[w.clusters.length - 1].name;
}

function redirectLocation(a: RedirectAction, s: HttpStream): string {
  const scheme = a.scheme ?? 'http';
  const hostHeader = s.req.headers.host ?? '';
  let host = a.host ?? hostHeader.replace(/:\d+$/, '');
  let port = a.port ? `:${a.port}` : a.host ? '' : (/:\d+$/.exec(hostHeader)?.[0] ?? '');
  // Like Envoy, drop a default port for the scheme.
  if ((scheme === 'https' && port === ':443') || (scheme === 'http' && port === ':80')) port = '';
  if (a.scheme === 'https' && !a.port && !a.host) port = '';
  let path = s.path;
  if (a.path !== undefined) path = a.path;
  else if (a.prefixRewrite !== undefined && s.route.match.kind === 'prefix') path = a.prefixRewrite + s.path.slice(s.route.match.value.length);
  const query = a.stripQuery || !s.query ? '' : `?${s.query}`;
  host = host || 'localhost';
  return `${scheme}://${host}${port}${path}${query}`;
}

export const routerExtension: HttpFilterExtension = {
  typeUrl: TypeUrl.Router,
  category: 'http',
  create(_config, context, _path, name): HttpFilterFactory {
    const clusters = context.clusters;
    return { name: name || 'envoy.filters.http.router', terminal: true, create: () => new RouterFilter(clusters) };
  },
};
