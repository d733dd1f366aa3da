// The router filter (envoy.filters.http.router): the terminal HTTP filter.
// Direct responses and redirects answer locally; cluster routes pick a
// cluster (weighted), a host (the cluster's load balancer), check circuit
// breakers and stream the request through the cluster's keep-alive pool with
// backpressure both ways (pipe(), or the raw HTTP/1.1 pool's forwardTo()). Failures map to Envoy's codes and flags:
// 503 UH/UF/UO/UC/NC, 504 UT. Retries (retry_policy, retry-state.ts) replay
// a buffered body on a new host after a backoff on the proxy's clock, ending
// in URX when exhausted; hash_policy feeds consistent-hash LBs; mirrors send
// a copy to a shadow cluster; results feed outlier detection.

import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { TypeUrl } from '../../../../xds/index.ts';
import type { ClusterAction, HeaderMutation, RedirectAction } from '../../../config/route-config.ts';
import type { ClusterManager } from '../../../upstream/cluster-manager.ts';
import type { Cluster } from '../../../upstream/cluster.ts';
import { CONNECT_TIMEOUT } from '../../../upstream/cluster.ts';
import type { Host } from '../../../upstream/host.ts';
import type { ResponseSink } from '../../../upstream/http1-pool.ts';
import type { HttpFilterExtension, HttpFilterFactory } from '../../../registry.ts';
import type { FilterStatus, HttpFilter, HttpStream } from '../http-filter.ts';
import type { TransportFailure } from '../../../transport-sockets/transport-socket.ts';
import type { ClientRequest } from 'node:http';
import type { Clock, TimerHandle } from '../../../clock.ts';
import { realClock } from '../../../clock.ts';
import type { ResetReason } from './retry-state.ts';
import { BufferedBody, RetryState } from './retry-state.ts';
import { requestHash } from './request-hash.ts';
import { sendMirrors } from './mirror.ts';
import { forwardTrailers, openUpstreamRequest, respondTrailersOnly } from './upstream-codec.ts';
import { relayUpgrade } from './upgrade-relay.ts';
import { routeTimeoutMs } from '../../../http/grpc.ts';
import { originalDestinationOf } from '../../listener/listener-filter.ts';

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

/** Most routes mutate nothing: skip the call (and the array the loop over all three levels built). */
function applyIfAny(headers: OutgoingHttpHeaders, m: HeaderMutation): void {
  if (m.add.length > 0 || m.remove.length > 0) applyHeaderMutation(headers, m);
}

const CONNECT_FAILURE = 'upstream connect error or disconnect/reset before headers. reset reason: connection failure';
const CONNECT_TERMINATION = 'upstream connect error or disconnect/reset before headers. reset reason: connection termination';
const OVERFLOW = 'upstream connect error or disconnect/reset before headers. reset reason: overflow';

export class RouterFilter implements HttpFilter {
  private readonly clusters: ClusterManager;
  private readonly clock: Clock;
  /** The route timeout: from the end of the downstream request over all attempts. */
  private timer: TimerHandle | undefined;
  /** The path as the first attempt rewrote it; retries reuse it. */
  private rewrittenPath: string | undefined;
  /** Retry and replay state, set only for routes with a retry_policy or mirrors. */
  private retry: RetryState | undefined;
  private body: BufferedBody | undefined;
  private hash: number | undefined;
  private setCookie: string | undefined;
  private perTryTimer: TimerHandle | undefined;
  private backoffTimer: TimerHandle | undefined;
  private durationTimer: TimerHandle | undefined;
  /**
   * The attempt in flight, for abortAttempt(). Kept as the request and its
   * finish callback, not as a closure over send()'s scope: a router holding
   * such a closure made V8's scavenger keep every request's objects alive
   * into the old generation (about 30% of all allocation promoted, the cause
   * of the p99 tail; see docs/proxy.md).
   */
  private attemptUp: ClientRequest | undefined;
  private attemptFinish: (() => void) | undefined;

  constructor(clusters: ClusterManager, clock: Clock = realClock) {
    this.clusters = clusters;
    this.clock = clock;
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
    this.clock.clearTimeout(this.timer);
    this.clock.clearTimeout(this.perTryTimer);
    this.clock.clearTimeout(this.backoffTimer);
    this.clock.clearTimeout(this.durationTimer);
    this.retry?.releaseRetry();
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
    s.upstreamCluster = name;
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
    if (action.hashPolicies && action.hashPolicies.length > 0) {
      const h = requestHash(s, action.hashPolicies);
      this.hash = h.hash;
      this.setCookie = h.setCookie;
    }
    const mirrors = action.mirrorPolicies ?? [];
    if (action.retryPolicy || mirrors.length > 0) {
      // Keep the body for replays and copies; the attempt reads it from here.
      const body = (this.body = new BufferedBody());
      s.req.on('data', (chunk: Buffer) => {
        s.bytesReceived += chunk.length;
        body.push(chunk);
      });
      s.req.once('end', () => body.end());
      if (action.retryPolicy) this.retry = new RetryState(action.retryPolicy, cluster);
      if (mirrors.length > 0) sendMirrors(this.clusters, mirrors, s.req.method ?? 'GET', s.req.url ?? '/', { ...(s.req.headers as OutgoingHttpHeaders) }, body);
    }
    // Envoy's route timeout starts when the downstream request is complete and spans all retries.
    // grpc-timeout may stand in for it (max_stream_duration.grpc_timeout_header_max).
    const timeoutMs = routeTimeoutMs(action, s.req.headers);
    if (timeoutMs > 0) {
      const arm = (): void => {
        if (!s.ended) this.timer = this.clock.setTimeout(() => this.onRouteTimeout(s, cluster), timeoutMs);
      };
      if (s.req.complete) arm();
      else s.req.once('end', arm);
    }
    if (action.maxStreamDurationMs) {
      const remaining = action.maxStreamDurationMs - (performance.now() - s.startTime);
      this.durationTimer = this.clock.setTimeout(() => this.onMaxStreamDuration(s), Math.max(0, remaining));
    }
    this.attempt(s, action, cluster);
  }

  /** Resets the attempt in flight, if any (route timeout, max stream duration). */
  private abortAttempt(err?: Error): void {
    const up = this.attemptUp;
    const finish = this.attemptFinish;
    this.attemptUp = undefined;
    this.attemptFinish = undefined;
    up?.destroy(err);
    finish?.();
  }

  private onRouteTimeout(s: HttpStream, cluster: Cluster): void {
    this.timer = undefined;
    if (s.ended) return;
    cluster.stats.upstream_rq_timeout.value++;
    this.clock.clearTimeout(this.backoffTimer);
    this.clock.clearTimeout(this.perTryTimer);
    const err = new Error('upstream request timeout') as NodeJS.ErrnoException;
    err.code = 'MESH_UPSTREAM_TIMEOUT';
    this.abortAttempt(err);
    if (!s.res.headersSent) s.sendLocalReply(504, 'upstream request timeout', 'UT');
    else s.res.destroy();
  }

  /** Route max_stream_duration: the whole exchange took too long (Envoy: 408 before a response, flag DT). */
  private onMaxStreamDuration(s: HttpStream): void {
    this.durationTimer = undefined;
    if (s.ended) return;
    this.abortAttempt();
    this.clock.clearTimeout(this.backoffTimer);
    if (!s.res.headersSent) s.sendLocalReply(408, 'downstream duration timeout', 'DT');
    else {
      s.addResponseFlag('DT');
      s.res.destroy();
    }
  }

  /** One try: pick a host (honouring previous_hosts), check the pending breaker, send. */
  private attempt(s: HttpStream, action: ClusterAction, cluster: Cluster): void {
    if (s.ended) return;
    const stats = cluster.stats;
    const retry = this.retry;
    let host = cluster.config.type === 'ORIGINAL_DST' ? cluster.originalDstHost(originalDestinationOf(s.req.socket)) : cluster.pickHost(this.hash);
    if (retry && host && retry.policy.avoidPreviousHosts) {
      for (let i = 1; i < retry.policy.hostSelectionMaxAttempts + 1 && host && retry.rejectsHost(host); i++) host = cluster.pickHost(this.hash, i);
    }
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
    retry?.recordHost(host);
    this.send(s, action, cluster, host);
  }

  /**
   * Whether a failed attempt is retried. When it is, the next attempt is
   * scheduled after the backoff; when retries are used up the caller answers,
   * flagged URX (limit) or UO (max_retries overflow).
   */
  private retryAfter(s: HttpStream, action: ClusterAction, cluster: Cluster, decide: () => boolean): boolean {
    const retry = this.retry;
    if (!retry || !this.body?.replayable || s.ended || s.res.headersSent || !decide()) return false;
    const d = retry.tryRetry();
    if (d === 'limit') s.addResponseFlag('URX');
    else if (d === 'overflow') s.addResponseFlag('UO');
    if (d !== 'retry') return false;
    this.backoffTimer = this.clock.setTimeout(() => {
      this.backoffTimer = undefined;
      this.attempt(s, action, cluster);
    }, retry.backoffMs());
    return true;
  }

  private send(s: HttpStream, action: ClusterAction, cluster: Cluster, host: Host): void {
    const { req, res } = s;
    const headers = req.headers as OutgoingHttpHeaders;
    const retry = this.retry;
    let path = req.url ?? '/';
    // HTTP/1.x without content-length or transfer-encoding has no body (RFC 9112 6.3): no pipe to set up.
    const bodyless = req.httpVersionMajor === 1 && headers['transfer-encoding'] === undefined && (headers['content-length'] === undefined || headers['content-length'] === '0');
    // A retry reuses the request as the first attempt rewrote it.
    if (!retry || retry.attemptCount === 1) {
      for (const h of HOP_BY_HOP) if (headers[h] !== undefined) delete headers[h];
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
      this.rewrittenPath = path;
    } else path = this.rewrittenPath ?? path;
    if (retry && s.virtualHost.includeRequestAttemptCount) headers['x-envoy-attempt-count'] = String(retry.attemptCount);
    s.upstreamHost = host.key;
    // WebSocket and CONNECT: bytes both ways instead of a request/response.
    if (s.upgrade) return relayUpgrade(s, action, cluster, host, path, headers);

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
    };

    const up: ClientRequest = openUpstreamRequest(s, cluster, host, path, headers, bodyless);
    up.once('socket', () => {
      if (pending) stats.upstream_rq_pending_active.value--;
      pending = false;
    });
    const outlier = cluster.outlierDetector;
    this.attemptUp = up;
    this.attemptFinish = finish;
    up.once('response', (upRes: IncomingMessage) => {
      const status = upRes.statusCode ?? 502;
      cluster.countResponse(status);
      if (status >= 500) host.rqError++;
      outlier?.report(host, status);
      if (s.ended) {
        upRes.destroy();
        return finish();
      }
      if (retry) {
        retry.releaseRetry();
        if (this.retryAfter(s, action, cluster, () => retry.retriableResponse(status, upRes.headers))) {
          upRes.resume();
          upRes.once('end', finish);
          upRes.once('error', finish);
          this.clock.clearTimeout(this.perTryTimer);
          this.body?.detach(up);
          return;
        }
        if (status < 500) retry.succeeded();
        this.clock.clearTimeout(this.perTryTimer);
      }
      const out = upRes.headers as OutgoingHttpHeaders;
      // A delete that finds nothing still costs; most responses carry none of these.
      for (const h of HOP_BY_HOP) if (out[h] !== undefined) delete out[h];
      out['x-envoy-upstream-service-time'] = String(Math.round(performance.now() - started));
      if (retry && s.virtualHost.includeAttemptCountInResponse) out['x-envoy-attempt-count'] = String(retry.attemptCount);
      if (this.setCookie) {
        const cur = out['set-cookie'];
        out['set-cookie'] = cur === undefined ? [this.setCookie] : [...(Array.isArray(cur) ? cur : [String(cur)]), this.setCookie];
      }
      applyIfAny(out, s.route.responseHeaders);
      applyIfAny(out, s.virtualHost.responseHeaders);
      applyIfAny(out, s.routeTable.responseHeaders);
      s.encodeHeaders(status, out);
      for (const name in out) res.setHeader(name, out[name]!);
      if (respondTrailersOnly(upRes, s, status)) {
        upRes.resume();
        upRes.once('end', finish);
        return;
      }
      res.writeHead(status);
      // Body bytes for stats and logs: a declared length is counted when the
      // body has been read, saving a second 'data' listener per response.
      const declared = s.req.method === 'HEAD' || status === 204 || status === 304 ? 0 : Number(out['content-length'] ?? NaN);
      forwardTrailers(upRes, s);
      upRes.once('error', () => {
        finish();
        res.destroy();
      });
      // The raw HTTP/1.1 pool's response writes its body straight into res (no pipe, no stream events).
      const direct = (upRes as Partial<DirectResponse>).forwardTo;
      if (direct !== undefined) {
        const sink = Number.isNaN(declared) ? countingSink(res, s) : (res as unknown as ResponseSink);
        const ok = direct.call(upRes, sink, () => {
          res.end();
          if (!Number.isNaN(declared)) s.bytesSent += declared;
          finish();
        });
        if (ok) return;
      }
      if (Number.isNaN(declared)) upRes.on('data', (chunk: Buffer) => (s.bytesSent += chunk.length));
      upRes.pipe(res);
      upRes.once('end', Number.isNaN(declared) ? finish : () => {
        s.bytesSent += declared;
        finish();
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
      const connectFailure = err.code === CONNECT_TIMEOUT || err.code === 'ECONNREFUSED' || err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH' || err.code === 'EADDRNOTAVAIL' || (err as TransportFailure).transportFailureReason !== undefined;
      const reason: ResetReason = err.code === 'MESH_PER_TRY_TIMEOUT' ? 'timeout' : connectFailure ? 'connect-failure' : 'reset';
      outlier?.report(host, reason);
      if (retry) {
        retry.releaseRetry();
        this.body?.detach(up);
        if (this.retryAfter(s, action, cluster, () => retry.retriableReset(reason))) return;
      }
      if (reason === 'timeout') {
        s.sendLocalReply(504, 'upstream request timeout', 'UT');
        return;
      }
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
    // Envoy's per_try_timeout: this attempt alone; a retry may follow (upstream_rq_per_try_timeout).
    if (retry && retry.policy.perTryTimeoutMs > 0) {
      this.clock.clearTimeout(this.perTryTimer);
      this.perTryTimer = this.clock.setTimeout(() => {
        this.perTryTimer = undefined;
        if (done) return;
        cluster.retryStats.upstream_rq_per_try_timeout.value++;
        const err = new Error('upstream per-try timeout') as NodeJS.ErrnoException;
        err.code = 'MESH_PER_TRY_TIMEOUT';
        up.destroy(err);
      }, retry.policy.perTryTimeoutMs);
    }
    if (this.body) this.body.attach(up);
    else if (bodyless) {
      up.end();
      req.resume();
    } else {
      req.pipe(up);
      req.on('data', (chunk: Buffer) => (s.bytesReceived += chunk.length));
    }
  }
}

/** What the raw HTTP/1.1 pool's response adds to IncomingMessage (http1-pool.ts). */
interface DirectResponse {
  forwardTo(sink: ResponseSink, onEnd: () => void): boolean;
}

/** `res` as a sink that also counts body bytes for stats and logs (responses without a declared length). */
function countingSink(res: ServerResponse, s: HttpStream): ResponseSink {
  return {
    write(chunk: Buffer): boolean {
      s.bytesSent += chunk.length;
      return res.write(chunk);
    },
    once(event: 'drain', listener: () => void): unknown {
      return res.once(event, listener);
    },
  };
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
    const clock = context.clock ?? realClock;
    return { name: name || 'envoy.filters.http.router', terminal: true, create: () => new RouterFilter(clusters, clock) };
  },
};
