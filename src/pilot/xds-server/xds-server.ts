// Pilot's ADS server: Envoy's AggregatedDiscoveryService, state of the world
// (StreamAggregatedResources) and delta (DeltaAggregatedResources), on a
// grpc.Server the caller owns. Config comes from generators chosen by type
// URL; changes arrive as push requests, are debounced and merged, and go to
// every proxy through a per-proxy queue. Only what changed is sent: each
// resource's bytes are hashed and compared with what the proxy holds.

import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import type { DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse, NodeMessage, StatusMessage } from '../../xds/index.ts';
import { TypeUrl } from '../../xds/index.ts';
import type { ProxyNode, PushContextLike, XdsGenerator } from '../model/index.ts';
import type { Clock, PilotLogger } from './clock.ts';
import { noopLog, systemClock } from './clock.ts';
import type { DeltaCall, ProxyStatus, SotwCall, XdsProtocol } from './connection.ts';
import type { HeldEntry } from './connection.ts';
import { Connection, Watch, isWildcardType } from './connection.ts';
import { Debouncer } from './debouncer.ts';
import type { XdsMetrics } from './metrics.ts';
import { createXdsMetrics, noMetrics } from './metrics.ts';
import type { MergedPush, PushRequest } from './push-request.ts';
import { toMerged } from './push-request.ts';
import { PushQueue } from './push-queue.ts';
import { adsServiceDefinition } from './response-encoder.ts';
import type { PackedResource } from './resource-cache.ts';
import { ResourceCache } from './resource-cache.ts';
import { SotwRequest } from './request-decoder.ts';
import type { HeldDiff } from './shared-state.ts';
import { SharedState } from './shared-state.ts';
import type { ResolveProxy } from './resolve-proxy.ts';
import { defaultResolveProxy } from './resolve-proxy.ts';

export interface PilotXdsServerOptions<P extends PushContextLike> {
  /** One generator per type URL; requests for other type URLs get an empty response. */
  readonly generators: ReadonlyMap<string, XdsGenerator<P>>;
  readonly initialPush: P;
  /** Turns the Node of a stream's first request into a proxy; throwing ends the stream with INVALID_ARGUMENT. */
  readonly resolveProxy?: ResolveProxy;
  readonly clock?: Clock;
  readonly log?: PilotLogger;
  /** Where to register Istio's pilot_xds_* metrics; none when absent. */
  readonly metrics?: Registry;
  /** Quiet period before a push (Istio PILOT_DEBOUNCE_AFTER). Default 100. */
  readonly debounceMs?: number;
  /** Longest a push waits for quiet (Istio PILOT_DEBOUNCE_MAX). Default 10000. */
  readonly maxDebounceMs?: number;
  /** Streams beyond this are refused with RESOURCE_EXHAUSTED. Default 10000. */
  readonly maxConnections?: number;
  /** Proxies pushed at once (Istio PILOT_PUSH_THROTTLE). Default 100. */
  readonly pushConcurrency?: number;
  /** Requests wait while more response bytes than this are written and not yet read by clients. Default 64 MiB. */
  readonly maxUnsentBytes?: number;
  /** Sent as control_plane.identifier. Default `pilot`. */
  readonly identifier?: string;
}

/** Counters since start, for tests and debug output. */
export interface XdsServerStats {
  connections: number;
  /** Push requests received. */
  pushRequests: number;
  /** Debounced pushes that went out to the queue. */
  pushes: number;
  responses: number;
  acks: number;
  nacks: number;
  staleNonces: number;
  unknownTypeRequests: number;
  /** Proxy pushes that waited for 'drain' (the stream's write buffer was full), to see whether backpressure holds pushes back. */
  drainWaits: number;
}

/** The last generated resources of one proxy, per type URL. */
export interface ProxyConfig {
  readonly connectionId: string;
  readonly id: string;
  readonly types: Readonly<Record<string, { readonly version?: string; readonly lastPushAt?: number; readonly resources: readonly Readonly<Record<string, unknown>>[] }>>;
}

/** One open stream, for /debug/adsz. */
export interface ConnectionInfo {
  readonly connectionId: string;
  readonly proxyId: string;
  readonly peer: string;
  readonly protocol: XdsProtocol;
  readonly connectedAt: number;
  readonly proxy?: ProxyNode;
  readonly watches: Readonly<Record<string, readonly string[] | '*'>>;
}

/** Envoy's order: clusters before their endpoints, listeners before their routes. */
const PUSH_ORDER = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration, TypeUrl.Secret];

interface SyncMode {
  readonly full: boolean;
  readonly changedHosts?: ReadonlySet<string>;
  /** Respond even when nothing changed (the first request of a type, a grown subscription). */
  readonly force: boolean;
}

// Resource names repeat across proxies (every sidecar subscribes to the same
// ~1000 EDS clusters at 1000 services): keep one string per name rather than
// one per proxy (about 100 KB per proxy at that size).
const internedNames = new Map<string, string>();
function intern(name: string): string {
  const known = internedNames.get(name);
  if (known !== undefined) return known;
  if (internedNames.size >= 1_000_000) internedNames.clear(); // a bound against clients sending endless names
  internedNames.set(name, name);
  return name;
}

// name -> host (null: not a cluster name), shared by all proxies: names are interned, so this is computed once per name.
const hostsOfNames = new Map<string, string | null>();
function internedClusterHost(name: string): string | undefined {
  let host = hostsOfNames.get(name);
  if (host === undefined) {
    const h = clusterHost(name);
    host = h === undefined ? null : intern(h);
    if (hostsOfNames.size >= 1_000_000) hostsOfNames.clear();
    hostsOfNames.set(name, host);
  }
  return host ?? undefined;
}

function isNack(detail: StatusMessage | null | undefined): detail is StatusMessage {
  return !!detail && (!!detail.code || !!detail.message);
}

/** `outbound|9080|v1|reviews.default.svc.cluster.local` -> the hostname; undefined for other names. */
export function clusterHost(name: string): string | undefined {
  const parts = name.split('|');
  return parts.length === 4 && parts[3] ? parts[3] : undefined;
}

/**
 * Contract: see the module header. Protocol as Envoy defines it: a request
 * whose response_nonce is not the latest sent for its type is stale and
 * ignored (SotW); an ACK records the version; a NACK keeps the last ACKed
 * version and records the error; a change of resource names gets a response.
 * Streams never fail because of what a client sends, except for a Node Pilot
 * cannot resolve.
 */
export class PilotXdsServer<P extends PushContextLike = PushContextLike> {
  private readonly generators: ReadonlyMap<string, XdsGenerator<P>>;
  private readonly resolveProxy: ResolveProxy;
  private readonly clock: Clock;
  private readonly log: PilotLogger;
  private readonly metrics: XdsMetrics;
  private readonly maxConnections: number;
  private readonly identifier: string;
  private readonly debouncer: Debouncer<P>;
  private readonly queue: PushQueue<Connection, P>;
  private readonly cache = new ResourceCache();
  private readonly shared = new SharedState();
  private readonly connections = new Map<string, Connection>();
  private readonly counters: Omit<XdsServerStats, 'connections'> = { pushRequests: 0, pushes: 0, responses: 0, acks: 0, nacks: 0, staleNonces: 0, unknownTypeRequests: 0, drainWaits: 0 };
  private currentPush: P;
  /** Response bytes written by request handling and pushes and not yet flushed, over all connections. */
  private unsentBytes = 0;
  private readonly maxUnsentBytes: number;
  private lastFlushAt = 0;
  /** Connections whose requests wait for the unsent budget, in arrival order. */
  private readonly waiting = new Set<Connection>();
  private waitTimer: NodeJS.Timeout | undefined;
  private nextConnection = 1;
  private nextNonce = 1;

  constructor(options: PilotXdsServerOptions<P>) {
    this.generators = options.generators;
    this.currentPush = options.initialPush;
    this.resolveProxy = options.resolveProxy ?? defaultResolveProxy;
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? noopLog;
    this.metrics = options.metrics ? createXdsMetrics(options.metrics, () => this.connections.size) : noMetrics;
    this.maxConnections = options.maxConnections ?? 10000;
    this.identifier = options.identifier ?? 'pilot';
    this.maxUnsentBytes = options.maxUnsentBytes ?? 64 * 1024 * 1024;
    for (const [typeUrl, generator] of this.generators) {
      if (generator.typeUrl !== typeUrl) throw new Error(`generator for ${typeUrl} says its type URL is ${generator.typeUrl}`);
    }
    this.debouncer = new Debouncer<P>({
      clock: this.clock,
      debounceMs: options.debounceMs ?? 100,
      maxDebounceMs: options.maxDebounceMs ?? 10000,
      fire: (push, events, ageMs) => this.firePush(push, events, ageMs),
    });
    this.queue = new PushQueue<Connection, P>(options.pushConcurrency ?? 100, (conn, push) => this.pushConnection(conn, push));
  }

  /** Adds the ADS service to a server; the caller binds and starts it. */
  register(server: grpc.Server): void {
    // Responses are written by response-encoder.ts: shared resource bytes, copied once per stream.
    server.addService(adsServiceDefinition(), {
      StreamAggregatedResources: (call: SotwCall) => this.open(call, 'sotw'),
      DeltaAggregatedResources: (call: DeltaCall) => this.open(call, 'delta'),
    });
  }

  /** The push context new requests are answered from. */
  get pushContext(): P {
    return this.currentPush;
  }

  /** Asks for a push; debounced and merged with others (see Debouncer). */
  push(request: PushRequest<P>): void {
    this.counters.pushRequests += 1;
    this.debouncer.add(toMerged(request, this.clock.now()));
  }

  /**
   * Says that the changes asked for so far already waited for quiet upstream
   * (Galley publishes a snapshot only after its own debounce): they are
   * pushed without a second quiet period. Not while a push is still going
   * out: then the usual debounce merges what comes next (Istio pushes one at
   * a time too), so a steady stream of changes cannot pile pushes up.
   */
  pushPendingNow(): void {
    if (this.queue.idle) this.debouncer.flushSoon();
  }

  stats(): XdsServerStats {
    return { connections: this.connections.size, ...this.counters };
  }

  /** How many serializations were shared through cacheKey, and how many were done. */
  cacheStats(): { hits: number; misses: number } {
    return { hits: this.cache.hits, misses: this.cache.misses };
  }

  /** Every connected proxy (after its first request) with per-type sync state. */
  proxyStatus(): ProxyStatus[] {
    return [...this.connections.values()].filter((c) => c.proxy).map((c) => c.status());
  }

  /** The last generated resources for a proxy (by id, or `name.namespace`); the newest stream when it has several. */
  proxyConfig(proxyId: string, typeUrl?: string): ProxyConfig | undefined {
    const conn = this.findConnection(proxyId);
    if (!conn?.proxy) return undefined;
    const types: Record<string, ProxyConfig['types'][string]> = {};
    for (const [url, watch] of conn.watches) {
      if (typeUrl !== undefined && url !== typeUrl) continue;
      types[url] = {
        ...(watch.sentVersion !== undefined ? { version: watch.sentVersion } : {}),
        ...(watch.lastPushAt !== undefined ? { lastPushAt: watch.lastPushAt } : {}),
        resources: watch.generatedValues(),
      };
    }
    return { connectionId: conn.id, id: conn.proxy.id, types };
  }

  connectionsInfo(): ConnectionInfo[] {
    return [...this.connections.values()].map((c) => {
      const watches: Record<string, readonly string[] | '*'> = {};
      for (const [url, w] of c.watches) watches[url] = w.wildcard ? '*' : [...w.names].sort();
      return { connectionId: c.id, proxyId: c.proxy?.id ?? '', peer: c.peer, protocol: c.protocol, connectedAt: c.connectedAt, ...(c.proxy ? { proxy: c.proxy } : {}), watches };
    });
  }

  /** Drops pending pushes and ends every stream. */
  close(): void {
    this.debouncer.stop();
    this.queue.close();
    if (this.waitTimer) clearTimeout(this.waitTimer);
    this.waitTimer = undefined;
    for (const conn of [...this.connections.values()]) {
      this.closeConnection(conn);
      conn.call.end();
    }
  }

  private findConnection(proxyId: string): Connection | undefined {
    let found: Connection | undefined;
    for (const conn of this.connections.values()) {
      if (conn.proxy && (conn.proxy.id === proxyId || conn.proxy.workloadName === proxyId)) found = conn;
    }
    return found;
  }

  // ---- streams --------------------------------------------------------------

  private open(call: SotwCall | DeltaCall, protocol: XdsProtocol): void {
    if (this.connections.size >= this.maxConnections) {
      this.log.warn({ peer: call.getPeer(), max: this.maxConnections }, 'refusing an ADS stream: too many connections');
      call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: `more than ${this.maxConnections} xDS streams` });
      return;
    }
    const conn = new Connection(String(this.nextConnection++), protocol, call, this.clock.now());
    this.connections.set(conn.id, conn);
    this.log.debug({ connection: conn.id, peer: conn.peer, protocol }, 'ADS stream opened');
    const done = () => this.closeConnection(conn);
    conn.onWritten = (bytes) => {
      // Crossing the budget starts the clock of the stall escape.
      if (this.unsentBytes < this.maxUnsentBytes && this.unsentBytes + bytes >= this.maxUnsentBytes) this.lastFlushAt = this.clock.now();
      this.unsentBytes += bytes;
    };
    conn.onFlushed = (bytes) => {
      this.unsentBytes -= bytes;
      this.lastFlushAt = this.clock.now();
      this.admitWaiting();
    };
    call.on('data', (req: DiscoveryRequest | DeltaDiscoveryRequest) => {
      // Requests still in flight after the stream was refused or closed.
      if (conn.closed) return;
      conn.pendingRequests.push(req);
      this.handleRequests(conn);
    });
    call.on('end', () => {
      done();
      call.end();
    });
    call.on('error', done);
    call.on('cancelled', done);
    call.on('close', done);
  }

  /**
   * Handles a connection's requests in order, unless the responses already
   * written and not yet flushed to clients exceed maxUnsentBytes: then the
   * connection waits its turn (FIFO) until clients have read enough. Node's
   * streams buffer without bound, so without this 2000 sidecars connecting at
   * once had ~2 GB of responses (1000 clusters + 1000 endpoints each) sitting
   * in memory at the same time. Envoy gets the same bound from gRPC flow
   * control in Istio. A budget that makes no progress for a few seconds (clients that
   * do not read) does not hold the others back.
   */
  private handleRequests(conn: Connection): void {
    while (conn.pendingRequests.length > 0 && !conn.closed) {
      if (this.unsentBytes >= this.maxUnsentBytes && this.clock.now() - this.lastFlushAt < 3000) {
        this.waiting.add(conn);
        this.armWaitTimer();
        return;
      }
      const req = conn.pendingRequests.shift()!;
      try {
        if (conn.protocol === 'sotw') this.onSotwRequest(conn, req as DiscoveryRequest);
        else this.onDeltaRequest(conn, req as DeltaDiscoveryRequest);
      } catch (err) {
        // A bug of ours must not take the process down with it; the client retries on a new stream.
        this.log.error({ connection: conn.id, err }, 'failed to handle a discovery request');
        conn.call.emit('error', { code: grpc.status.INTERNAL, details: 'internal error handling the request' });
      }
    }
  }

  /** Re-checks the waiting connections now and then: the stall escape of handleRequests needs no flush to fire. */
  private armWaitTimer(): void {
    this.waitTimer ??= setTimeout(() => {
      this.waitTimer = undefined;
      this.admitWaiting();
      if (this.waiting.size > 0) this.armWaitTimer();
    }, 1000);
  }

  private admitWaiting(): void {
    for (const conn of this.waiting) {
      if (this.unsentBytes >= this.maxUnsentBytes && this.clock.now() - this.lastFlushAt < 3000) return;
      this.waiting.delete(conn);
      this.handleRequests(conn);
    }
    if (this.waiting.size === 0 && this.waitTimer) {
      clearTimeout(this.waitTimer);
      this.waitTimer = undefined;
    }
  }

  private closeConnection(conn: Connection): void {
    if (conn.closed) return;
    conn.closed = true;
    // Its unflushed responses will never call back.
    this.unsentBytes -= conn.unsentBytes;
    conn.unsentBytes = 0;
    conn.pendingRequests.length = 0;
    this.waiting.delete(conn);
    this.connections.delete(conn.id);
    this.queue.remove(conn);
    this.log.debug({ connection: conn.id, proxy: conn.proxy?.id }, 'ADS stream closed');
  }

  /** Resolves the proxy on the first request; false (and the stream failed) when it cannot be. */
  private ensureProxy(conn: Connection, node: NodeMessage | null | undefined): boolean {
    if (conn.proxy) return true;
    let problem: string;
    if (!node?.id) {
      problem = 'the first discovery request carries no node id';
    } else {
      try {
        conn.proxy = this.resolveProxy(node);
        this.log.info({ connection: conn.id, proxy: conn.proxy.id, protocol: conn.protocol }, 'proxy connected');
        return true;
      } catch (err) {
        problem = err instanceof Error ? err.message : String(err);
      }
    }
    this.log.warn({ connection: conn.id, peer: conn.peer }, `refusing an ADS stream: ${problem}`);
    conn.call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: problem });
    this.closeConnection(conn);
    return false;
  }

  private onUnknownType(conn: Connection, typeUrl: string, nonce: string): void {
    if (nonce) return; // the ACK of our empty answer
    this.counters.unknownTypeRequests += 1;
    this.log.warn({ connection: conn.id, proxy: conn.proxy?.id, typeUrl }, 'request for a type URL Pilot has no generator for; answering with no resources');
    const version = this.currentPush.version;
    const nonceOut = this.newNonce();
    if (conn.protocol === 'sotw') conn.write({ version_info: version, resources: [], type_url: typeUrl, nonce: nonceOut, control_plane: { identifier: this.identifier } });
    else conn.write({ system_version_info: version, resources: [], removed_resources: [], type_url: typeUrl, nonce: nonceOut, control_plane: { identifier: this.identifier } });
    this.counters.responses += 1;
  }

  /** Records an ACK or NACK of the watch's latest response. */
  private recordAnswer(conn: Connection, watch: Watch, nonce: string, version: string | undefined, detail: StatusMessage | null | undefined): void {
    if (isNack(detail)) {
      this.counters.nacks += 1;
      watch.nackedNonce = nonce;
      watch.error = detail.message || `code ${detail.code}`;
      this.metrics.reject(watch.typeUrl);
      this.log.warn({ connection: conn.id, proxy: conn.proxy?.id, typeUrl: watch.typeUrl, version, error: watch.error }, 'proxy rejected (NACK) a response');
    } else {
      this.counters.acks += 1;
      watch.ackedNonce = nonce;
      // Delta ACKs carry no version; the one sent with the nonce is the one accepted.
      watch.ackedVersion = version ?? watch.sentVersion;
    }
  }

  private onSotwRequest(conn: Connection, req: DiscoveryRequest): void {
    if (!this.ensureProxy(conn, req.node)) return;
    const typeUrl = req.type_url ?? '';
    const nonce = req.response_nonce ?? '';
    if (!typeUrl) {
      this.log.warn({ connection: conn.id }, 'ignoring a discovery request without type_url');
      return;
    }
    if (!this.generators.has(typeUrl)) return this.onUnknownType(conn, typeUrl, nonce);
    // The encoded names (request-decoder.ts), when the request came off the wire.
    const namesBytes = req instanceof SotwRequest ? req.namesBytes : undefined;
    let watch = conn.watches.get(typeUrl);
    if (watch && nonce) {
      if (nonce !== watch.nonce) {
        this.counters.staleNonces += 1;
        this.log.debug({ connection: conn.id, typeUrl, nonce, latest: watch.nonce }, 'ignoring a request with a stale nonce');
        return;
      }
      this.recordAnswer(conn, watch, nonce, req.version_info, req.error_detail);
      // An ACK repeats the subscription (it is most requests): recognized by
      // its bytes, so the ~1000 names of an EDS ACK are never decoded; else
      // decoded and compared without allocating.
      if (namesBytes && this.shared.sameEncoding(watch.names, watch.wildcard, namesBytes)) return;
      const requested = req.resource_names ?? [];
      const wildcard = requested.includes('*') || (requested.length === 0 && isWildcardType(typeUrl));
      if (watch.wildcard === wildcard && this.shared.sameNames(watch.names, requested)) return;
      const names = requested.filter((n) => n !== '*');
      const grew = (wildcard && !watch.wildcard) || names.some((n) => !watch!.names.has(n));
      this.resubscribe(watch, wildcard, names);
      if (namesBytes) this.shared.recordEncoding(watch.names, namesBytes, wildcard);
      this.sync(conn, watch, this.currentPush, { full: true, force: grew });
      return;
    }
    // The first request of a type (or the client starting over): it is owed everything.
    const requested = req.resource_names ?? [];
    const wildcard = requested.includes('*') || (requested.length === 0 && isWildcardType(typeUrl));
    watch = new Watch(typeUrl, wildcard);
    watch.setNames(this.shared.names(requested.filter((n) => n !== '*').map(intern)));
    if (namesBytes) this.shared.recordEncoding(watch.names, namesBytes, wildcard);
    conn.watches.set(typeUrl, watch);
    this.sync(conn, watch, this.currentPush, { full: true, force: true });
  }

  private onDeltaRequest(conn: Connection, req: DeltaDiscoveryRequest): void {
    if (!this.ensureProxy(conn, req.node)) return;
    const typeUrl = req.type_url ?? '';
    const nonce = req.response_nonce ?? '';
    if (!typeUrl) {
      this.log.warn({ connection: conn.id }, 'ignoring a delta request without type_url');
      return;
    }
    if (!this.generators.has(typeUrl)) return this.onUnknownType(conn, typeUrl, nonce);
    const subscribe = req.resource_names_subscribe ?? [];
    const unsubscribe = req.resource_names_unsubscribe ?? [];
    let watch = conn.watches.get(typeUrl);
    if (!watch) {
      watch = new Watch(typeUrl, subscribe.includes('*') || (subscribe.length === 0 && isWildcardType(typeUrl)));
      watch.setNames(this.shared.names(subscribe.filter((n) => n !== '*').map(intern)));
      // What the client says it already holds (after a reconnect) is not sent again unless it changed.
      const initial = Object.entries(req.initial_resource_versions ?? {}).filter(([name]) => watch!.wants(name));
      if (initial.length > 0) {
        const held = watch.mutableHeld();
        for (const [name, version] of initial) held.set(name, { version });
      }
      conn.watches.set(typeUrl, watch);
      this.sync(conn, watch, this.currentPush, { full: true, force: true });
      return;
    }
    if (nonce) {
      // In delta a nonce only ties an ACK or NACK to a response; subscription changes apply whatever it is.
      if (nonce === watch.nonce) this.recordAnswer(conn, watch, nonce, undefined, req.error_detail);
      else this.counters.staleNonces += 1;
    }
    if (subscribe.length === 0 && unsubscribe.length === 0) return;
    const names = new Set(watch.names);
    for (const n of subscribe) {
      if (n === '*') watch.wildcard = true;
      else names.add(intern(n));
    }
    for (const n of unsubscribe) {
      if (n === '*') watch.wildcard = false;
      else names.delete(n);
    }
    watch.setNames(this.shared.names(names));
    forgetUnwanted(watch);
    this.sync(conn, watch, this.currentPush, { full: true, force: false });
  }

  private resubscribe(watch: Watch, wildcard: boolean, names: readonly string[]): void {
    watch.wildcard = wildcard;
    watch.setNames(this.shared.names(names.map(intern)));
    forgetUnwanted(watch);
  }

  // ---- generation and sending ---------------------------------------------

  /**
   * Generates one type for one proxy and sends what the proxy does not hold.
   * Returns whether a response was written and whether the stream took it
   * without asking to wait (write() backpressure).
   */
  private sync(conn: Connection, watch: Watch, push: P, mode: SyncMode): { sent: boolean; flowing: boolean } {
    const proxy = conn.proxy;
    const generator = this.generators.get(watch.typeUrl);
    if (!proxy || !generator || conn.closed) return { sent: false, flowing: true };
    const started = performance.now();
    // SotW Listener and Cluster responses carry the whole set, so they are always generated whole.
    const fullState = conn.protocol === 'sotw' && isWildcardType(watch.typeUrl);
    const full = mode.full || fullState;
    let names: string[] | undefined;
    if (watch.wildcard) {
      names = undefined;
    } else if (!full && mode.changedHosts) {
      // The endpoint fast path: the names of the changed hosts (plus any that
      // are not cluster names), from an index kept per (shared) name set
      // rather than a scan of every subscribed name of every proxy.
      const index = this.shared.namesByHost(watch.names, internedClusterHost);
      names = [...(index.get('') ?? [])];
      for (const host of mode.changedHosts) {
        const list = index.get(host);
        if (list) names.push(...list);
      }
    } else {
      names = [...watch.names];
    }
    if (names && names.length === 0 && !mode.force) return { sent: false, flowing: true };
    let packed: PackedResource[];
    try {
      const resources = generator.generate(proxy, push, { ...(names ? { names } : {}), full, ...(mode.changedHosts && !full ? { changedHosts: mode.changedHosts } : {}) });
      packed = resources.filter((r) => watch.wants(r.name)).map((r) => this.cache.pack(push.version, watch.typeUrl, r));
    } catch (err) {
      // The proxy keeps what it has rather than getting a partial or invalid set.
      this.log.error({ connection: conn.id, proxy: proxy.id, typeUrl: watch.typeUrl, err: err instanceof Error ? err.message : String(err) }, 'failed to generate config; the proxy keeps its previous one');
      return { sent: false, flowing: true };
    }
    // Which held names this generation speaks for: all of them (the held
    // state becomes exactly what was generated: a shared map, see
    // SharedState), or only those asked for (the endpoint fast path).
    const whole = names ? !(!full && mode.changedHosts) : full;
    let changed: readonly PackedResource[];
    let removed: readonly string[];
    if (whole) {
      const next = this.shared.held(watch.typeUrl, packed);
      if (next === watch.held) {
        changed = [];
        removed = [];
      } else {
        const d = watch.heldIsPrivate ? diffHeld(watch.held, next) : this.shared.diff(watch.held, next);
        changed = d.changed;
        removed = d.removed;
        watch.setHeld(next);
      }
    } else {
      const present = new Set(packed.map((p) => p.name));
      changed = packed.filter((p) => watch.held.get(p.name)?.version !== p.version);
      // Held names in scope that were not generated: looked up by the few
      // names in scope, not by a scan of all ~1000 held (per proxy and push).
      removed = names ? [...new Set(names)].filter((n) => watch.held.has(n) && !present.has(n)) : [];
      if (changed.length > 0 || removed.length > 0) {
        if (watch.heldIsPrivate) {
          const held = watch.mutableHeld();
          for (const p of changed) held.set(p.name, p);
          for (const n of removed) held.delete(n);
        } else {
          watch.setHeld(this.shared.derive(watch.held, changed, removed));
        }
      }
    }
    if (changed.length === 0 && removed.length === 0 && !mode.force) return { sent: false, flowing: true };
    const nonce = this.newNonce();
    let response: DiscoveryResponse | DeltaDiscoveryResponse;
    if (conn.protocol === 'sotw') {
      response = { version_info: push.version, resources: (fullState ? packed : changed).map((p) => p.any), type_url: watch.typeUrl, nonce, control_plane: { identifier: this.identifier } };
    } else {
      response = {
        system_version_info: push.version,
        resources: changed.map((p) => ({ name: p.name, version: p.version, resource: p.any })),
        removed_resources: [...removed],
        type_url: watch.typeUrl,
        nonce,
        control_plane: { identifier: this.identifier },
      };
    }
    watch.nonce = nonce;
    watch.sentVersion = push.version;
    watch.lastPushAt = this.clock.now();
    const sendStart = performance.now();
    const flowing = conn.write(response);
    const end = performance.now();
    this.metrics.send((end - sendStart) / 1000);
    this.metrics.push(watch.typeUrl, (end - started) / 1000);
    this.counters.responses += 1;
    this.log.debug({ connection: conn.id, proxy: proxy.id, typeUrl: watch.typeUrl, version: push.version, nonce, resources: changed.length, removed: removed.length }, 'sent a discovery response');
    return { sent: true, flowing };
  }

  private newNonce(): string {
    return (this.nextNonce++).toString(36);
  }

  // ---- pushes ---------------------------------------------------------------

  private firePush(merged: MergedPush<P>, events: number, ageMs: number): void {
    if (merged.push) this.currentPush = merged.push;
    this.counters.pushes += 1;
    this.metrics.debounce(ageMs / 1000);
    this.log.info({ full: merged.full, events, version: this.currentPush.version, reasons: Object.fromEntries(merged.reasons), proxies: this.connections.size }, 'push');
    const request: MergedPush<P> = { ...merged, push: this.currentPush };
    for (const conn of this.connections.values()) if (conn.proxy && this.concerns(conn, request)) this.queue.enqueue(conn, request);
  }

  /**
   * Whether a push can change anything a proxy watches: an endpoint push only
   * reaches proxies watching a cluster of a changed host, a full push limited
   * to some types only those watching one of them. The others are not queued
   * (their config stays right: what changed is not theirs), so a push for one
   * cluster costs per proxy that watches it, not per connected proxy. Uses
   * the per-name-set host index of the fast path: no scan of names.
   */
  private concerns(conn: Connection, merged: MergedPush<P>): boolean {
    if (merged.full) {
      if (!merged.types) return true;
      for (const typeUrl of conn.watches.keys()) if (merged.types.has(typeUrl)) return true;
      return false;
    }
    const watch = conn.watches.get(TypeUrl.ClusterLoadAssignment);
    if (!watch) return false;
    if (watch.wildcard || !merged.changedHosts) return true;
    const index = this.shared.namesByHost(watch.names, internedClusterHost);
    if (index.has('')) return true;
    for (const host of merged.changedHosts) if (index.has(host)) return true;
    return false;
  }

  private async pushConnection(conn: Connection, merged: MergedPush<P>): Promise<void> {
    if (conn.closed || !conn.proxy) return;
    const push = merged.push ?? this.currentPush;
    let flowing = true;
    for (const typeUrl of pushOrder(conn.watches)) {
      // The fast path touches endpoints only.
      if (!merged.full && typeUrl !== TypeUrl.ClusterLoadAssignment) continue;
      // A full push for a change that cannot touch this type (PushRequest.types).
      if (merged.full && merged.types && !merged.types.has(typeUrl)) continue;
      const watch = conn.watches.get(typeUrl)!;
      const result = this.sync(conn, watch, push, { full: merged.full, ...(merged.changedHosts ? { changedHosts: merged.changedHosts } : {}), force: false });
      if (!result.flowing) flowing = false;
    }
    this.metrics.convergence((this.clock.now() - merged.since) / 1000);
    // A proxy that reads slowly keeps this worker until it catches up; the others go on.
    if (!flowing) {
      this.counters.drainWaits += 1;
      await drained(conn);
    }
  }
}

const PUSH_ORDER_SET: ReadonlySet<string> = new Set(PUSH_ORDER);

/** The watched types in PUSH_ORDER, then any others in subscription order (no sort: this runs per proxy and push). */
function pushOrder(watches: ReadonlyMap<string, Watch>): string[] {
  const out: string[] = [];
  for (const t of PUSH_ORDER) if (watches.has(t)) out.push(t);
  for (const t of watches.keys()) if (!PUSH_ORDER_SET.has(t)) out.push(t);
  return out;
}

/** What a client no longer watches it forgets: no removal is sent, and a later subscription gets it again. */
function forgetUnwanted(watch: Watch): void {
  if (watch.wildcard) return;
  const unwanted: string[] = [];
  for (const name of watch.held.keys()) if (!watch.names.has(name)) unwanted.push(name);
  if (unwanted.length === 0) return;
  const held = watch.mutableHeld();
  for (const name of unwanted) held.delete(name);
}

/** Changed and removed names from a watch's own held map to a new one. */
function diffHeld(before: ReadonlyMap<string, HeldEntry>, after: ReadonlyMap<string, HeldEntry>): HeldDiff {
  const changed: PackedResource[] = [];
  for (const [name, p] of after) if (before.get(name)?.version !== p.version) changed.push(p as PackedResource);
  const removed: string[] = [];
  for (const n of before.keys()) if (!after.has(n)) removed.push(n);
  return { changed, removed };
}


function drained(conn: Connection): Promise<void> {
  const call = conn.call;
  return new Promise((resolve) => {
    const events = ['drain', 'close', 'error', 'cancelled', 'finish'] as const;
    const done = () => {
      for (const e of events) call.off(e, done);
      resolve();
    };
    for (const e of events) call.once(e, done);
  });
}


