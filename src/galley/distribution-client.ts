// Subscribes to a Galley distribution server over one ADS stream (state of
// the world) and turns its responses back into ConfigSnapshot objects, so a
// component in another process sees the same thing as one in Galley's.

import * as grpc from '@grpc/grpc-js';
import type { ConfigObject, KindRegistry } from '../api/index.ts';
import { istioKinds, istioTypeUrl } from '../api/index.ts';
import type { AnyMessage, DiscoveryRequest, DiscoveryResponse } from '../xds/index.ts';
import { ADS_PROTO_FILES, ADS_SERVICE, loadXdsProtos, unpackJsonAny } from '../xds/index.ts';
import type { Clock, GalleyLogger, SnapshotListener } from './snapshot.ts';
import { ConfigSnapshot, deepFreeze, noopLog, sortedObjects, systemClock } from './snapshot.ts';

export interface GalleyClientOptions {
  /** `host:port` of the distribution server. */
  readonly address: string;
  /** The type URLs to follow; default: every kind of `registry`. */
  readonly typeUrls?: readonly string[];
  /** Default: istioKinds. Only used when typeUrls is not given. */
  readonly registry?: KindRegistry;
  /** Default: insecure (plain TCP). */
  readonly credentials?: grpc.ChannelCredentials;
  /** Sent as the node in requests, so the server's logs name this client. */
  readonly nodeId?: string;
  /** First reconnect delay; doubles per failed attempt up to maxBackoffMs. Default 100 ms. */
  readonly initialBackoffMs?: number;
  /** Default 5000 ms. */
  readonly maxBackoffMs?: number;
  readonly clock?: Clock;
  readonly log?: GalleyLogger;
}

export interface GalleyClientStats {
  /** Streams opened, the first included. */
  connects: number;
  responses: number;
  nacks: number;
}

/**
 * A remote view of Galley's snapshots.
 *
 * Contract: from construction until close(), the client keeps one ADS stream open and follows
 * every configured type. The first snapshot is emitted once every type has
 * arrived; later ones each time the server pushes (responses arriving
 * together become one snapshot). After the server goes away the client
 * reconnects with capped exponential backoff and, once every type has arrived
 * again, emits the server's current state. A response that cannot be decoded
 * is NACKed and the previous objects of that type stay.
 *
 * Snapshot numbering is the client's own: `version` counts the snapshots this
 * client emitted (so it never goes back when the server restarts) and
 * `revision` is the highest metadata.resourceVersion among the objects held.
 */
export class GalleyClient {
  private readonly typeUrls: readonly string[];
  private readonly client: grpc.Client;
  private readonly nodeId: string;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly clock: Clock;
  private readonly logger: GalleyLogger;
  private readonly listeners = new Set<SnapshotListener>();
  private readonly objects = new Map<string, readonly ConfigObject[]>();
  private readonly versions = new Map<string, string>();
  private readonly counters: GalleyClientStats = { connects: 0, responses: 0, nacks: 0 };
  private call: grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse> | undefined;
  private awaiting = new Set<string>();
  private snapshot: ConfigSnapshot | undefined;
  private emitScheduled = false;
  private attempt = 0;
  private reconnectTimer: unknown;
  private closed = false;

  constructor(options: GalleyClientOptions) {
    this.typeUrls = options.typeUrls ?? (options.registry ?? istioKinds).all().map(istioTypeUrl);
    this.nodeId = options.nodeId ?? `galley-client~${process.pid}`;
    this.initialBackoffMs = options.initialBackoffMs ?? 100;
    this.maxBackoffMs = options.maxBackoffMs ?? 5000;
    this.clock = options.clock ?? systemClock;
    this.logger = options.log ?? noopLog;
    const Service = loadXdsProtos(ADS_PROTO_FILES).service(ADS_SERVICE);
    // grpc-js has its own reconnect backoff (1 s up to 120 s); bound it by ours so a returning server is found quickly.
    this.client = new Service(options.address, options.credentials ?? grpc.credentials.createInsecure(), {
      'grpc.initial_reconnect_backoff_ms': this.initialBackoffMs,
      'grpc.max_reconnect_backoff_ms': this.maxBackoffMs,
    });
    this.connect();
  }

  /** Connecting starts in the constructor; this only exists for symmetry and is idempotent. */
  start(): void {
    if (this.closed) throw new Error('GalleyClient is closed');
    if (!this.call && this.reconnectTimer === undefined) this.connect();
  }

  /** Calls the listener now with the current snapshot (if any) and with every later one. */
  subscribe(listener: SnapshotListener): () => void {
    this.listeners.add(listener);
    if (this.snapshot) this.deliver(listener, this.snapshot);
    return () => this.listeners.delete(listener);
  }

  current(): ConfigSnapshot | undefined {
    return this.snapshot;
  }

  stats(): GalleyClientStats {
    return { ...this.counters };
  }

  close(): void {
    this.closed = true;
    if (this.reconnectTimer !== undefined) this.clock.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.call?.cancel();
    this.call = undefined;
    this.client.close();
    this.listeners.clear();
  }

  private connect(): void {
    this.reconnectTimer = undefined;
    this.counters.connects += 1;
    const call = (this.client as unknown as { StreamAggregatedResources(): grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse> })
      .StreamAggregatedResources();
    this.call = call;
    this.awaiting = new Set(this.typeUrls);
    let ended = false;
    const onEnd = (err?: grpc.ServiceError) => {
      if (ended) return;
      ended = true;
      if (this.call === call) this.call = undefined;
      if (this.closed) return;
      const delay = Math.min(this.maxBackoffMs, this.initialBackoffMs * 2 ** this.attempt);
      this.attempt += 1;
      this.logger.warn({ code: err?.code, error: err?.details, delayMs: delay }, 'Galley stream ended; reconnecting');
      this.reconnectTimer = this.clock.setTimeout(() => this.connect(), delay);
    };
    call.on('data', (res: DiscoveryResponse) => this.onResponse(call, res));
    call.on('error', onEnd);
    call.on('end', () => onEnd());
    for (const typeUrl of this.typeUrls) {
      // version_info tells the server what we hold; it answers with the current state either way.
      call.write({ node: { id: this.nodeId }, type_url: typeUrl, resource_names: [], version_info: this.versions.get(typeUrl) ?? '' });
    }
    // Following no type at all is complete at once: an empty snapshot.
    if (this.typeUrls.length === 0 && !this.snapshot) this.scheduleEmit();
  }

  private onResponse(call: grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>, res: DiscoveryResponse): void {
    this.counters.responses += 1;
    this.attempt = 0;
    const typeUrl = res.type_url;
    if (!this.typeUrls.includes(typeUrl)) {
      this.logger.warn({ typeUrl }, 'ignoring a response for a type this client did not ask for');
      return;
    }
    let decoded: readonly ConfigObject[];
    try {
      decoded = sortedObjects(res.resources.map((any) => decodeResource(typeUrl, any)));
    } catch (err) {
      this.counters.nacks += 1;
      this.logger.warn({ typeUrl, version: res.version_info, error: String(err) }, 'rejecting (NACK) a Galley response');
      call.write({
        node: { id: this.nodeId },
        type_url: typeUrl,
        response_nonce: res.nonce,
        version_info: this.versions.get(typeUrl) ?? '',
        error_detail: { code: grpc.status.INVALID_ARGUMENT, message: String((err as Error).message ?? err) },
      });
      return;
    }
    this.objects.set(typeUrl, decoded);
    this.versions.set(typeUrl, res.version_info);
    this.awaiting.delete(typeUrl);
    call.write({ node: { id: this.nodeId }, type_url: typeUrl, response_nonce: res.nonce, version_info: res.version_info });
    this.scheduleEmit();
  }

  // Responses of one server push arrive back to back; emitting on the next
  // turn of the event loop makes them one snapshot.
  private scheduleEmit(): void {
    if (this.emitScheduled) return;
    this.emitScheduled = true;
    setImmediate(() => {
      this.emitScheduled = false;
      if (this.closed || this.awaiting.size > 0) return;
      this.emit();
    });
  }

  private emit(): void {
    let revision = 0;
    const byType = new Map<string, readonly ConfigObject[]>();
    for (const typeUrl of this.typeUrls) {
      const objects = this.objects.get(typeUrl) ?? [];
      byType.set(typeUrl, objects);
      for (const obj of objects) revision = Math.max(revision, Number(obj.metadata.resourceVersion) || 0);
    }
    this.snapshot = new ConfigSnapshot((this.snapshot?.version ?? 0) + 1, revision, byType);
    for (const listener of [...this.listeners]) this.deliver(listener, this.snapshot);
  }

  private deliver(listener: SnapshotListener, snapshot: ConfigSnapshot): void {
    try {
      listener(snapshot);
    } catch (err) {
      this.logger.error({ err, version: snapshot.version }, 'a snapshot subscriber threw');
    }
  }
}

function decodeResource(typeUrl: string, any: AnyMessage): ConfigObject {
  if (any.type_url !== typeUrl) throw new Error(`resource of type ${any.type_url} in a response for ${typeUrl}`);
  const obj = unpackJsonAny<ConfigObject>(any);
  if (!obj || typeof obj !== 'object' || typeof obj.metadata?.name !== 'string' || typeof obj.kind !== 'string') {
    throw new Error(`a ${typeUrl} resource is not a config object (no kind or metadata.name)`);
  }
  return deepFreeze(obj);
}
