// Galley's snapshots over the wire: Envoy's AggregatedDiscoveryService (ADS),
// state-of-the-world and delta, registered on a grpc.Server the caller owns.
// Type URLs are Istio's (`networking.istio.io/v1/VirtualService`); each
// resource is an Any of the same type URL holding the object's JSON (see
// packJsonAny in src/xds for why JSON).

import { createHash } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import { Counter, Gauge } from 'prom-client';
import type { ConfigObject, KindRegistry } from '../api/index.ts';
import type {
  AnyMessage,
  DeltaDiscoveryRequest,
  DeltaDiscoveryResponse,
  DeltaResource,
  DiscoveryRequest,
  DiscoveryResponse,
  StatusMessage,
} from '../xds/index.ts';
import { ADS_PROTO_FILES, ADS_SERVICE, loadXdsProtos, packJsonAny } from '../xds/index.ts';
import type { ConfigSnapshot, GalleyLogger, SnapshotListener } from './snapshot.ts';
import { noopLog, resourceName } from './snapshot.ts';

/** What the server serves from: a SnapshotDistributor or anything with its two methods. */
export interface SnapshotSource {
  current(): ConfigSnapshot | undefined;
  subscribe(listener: SnapshotListener): () => void;
}

export interface GalleyDistributionServerOptions {
  readonly distributor: SnapshotSource;
  /** Decides which type URLs exist; others get an empty response and a warning. */
  readonly registry: KindRegistry;
  readonly log?: GalleyLogger;
  /** Sent as control_plane.identifier in every response. */
  readonly identifier?: string;
  /** Where to register galley_xds_* metrics; none when absent. */
  readonly metrics?: Registry;
}

/** Counters since start, for tests and the metrics endpoint. */
export interface DistributionStats {
  /** Open streams, SotW and delta. */
  streams: number;
  responses: number;
  acks: number;
  nacks: number;
  unknownTypeRequests: number;
}

type SotwCall = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;
type DeltaCall = grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;

interface SotwWatch {
  /** Requested names; empty means every resource of the type (wildcard). */
  names: ReadonlySet<string>;
  nonce: string;
  /** The object array last sent, compared by identity with each new snapshot's. */
  sent: readonly ConfigObject[] | undefined;
}

interface DeltaWatch {
  wildcard: boolean;
  names: Set<string>;
  /** What the client holds: name -> version. */
  known: Map<string, string>;
  nonce: string;
  sent: readonly ConfigObject[] | undefined;
  /** The first response is owed even when it is empty, so the client knows it is up to date. */
  answered: boolean;
}

function isNack(detail: StatusMessage | null | undefined): detail is StatusMessage {
  return !!detail && (!!detail.code || !!detail.message);
}

/**
 * Serves snapshots to any number of ADS streams.
 *
 * Contract (Envoy's xDS protocol): the first request for a type gets the
 * current objects of that type at once; a new snapshot is pushed to every
 * stream watching a type whose objects changed, and only for those types.
 * A request whose response_nonce is not the latest one sent for its type is
 * stale and ignored. An ACK changes nothing; a NACK is logged and counted and
 * the client keeps what it had until the next change. Unknown type URLs get an
 * empty response and a warning. Streams never fail because of what a client
 * sends.
 */
export class GalleyDistributionServer {
  private readonly source: SnapshotSource;
  private readonly registry: KindRegistry;
  private readonly logger: GalleyLogger;
  private readonly identifier: string;
  private readonly sotw = new Map<SotwCall, { id: number; watches: Map<string, SotwWatch> }>();
  private readonly delta = new Map<DeltaCall, { id: number; watches: Map<string, DeltaWatch> }>();
  // Objects in snapshots are frozen and shared, so each is encoded once for all streams.
  private readonly encoded = new WeakMap<ConfigObject, AnyMessage>();
  private readonly versions = new WeakMap<ConfigObject, string>();
  private readonly counters: Omit<DistributionStats, 'streams'> = { responses: 0, acks: 0, nacks: 0, unknownTypeRequests: 0 };
  private nextStreamId = 1;
  private nextNonce = 1;
  private unsubscribe: (() => void) | undefined;
  private readonly promCounters: Partial<Record<keyof Omit<DistributionStats, 'streams'>, Counter>> = {};

  constructor(options: GalleyDistributionServerOptions) {
    this.source = options.distributor;
    this.registry = options.registry;
    this.logger = options.log ?? noopLog;
    this.identifier = options.identifier ?? 'galley';
    if (options.metrics) this.registerMetrics(options.metrics);
    this.unsubscribe = this.source.subscribe((snapshot) => this.onSnapshot(snapshot));
  }

  private registerMetrics(registry: Registry): void {
    const help: Record<keyof Omit<DistributionStats, 'streams'>, [string, string]> = {
      responses: ['galley_xds_responses_total', 'Discovery responses sent to Galley subscribers'],
      acks: ['galley_xds_acks_total', 'Discovery responses subscribers accepted (ACK)'],
      nacks: ['galley_xds_nacks_total', 'Discovery responses subscribers rejected (NACK)'],
      unknownTypeRequests: ['galley_xds_unknown_type_requests_total', 'Requests for type URLs Galley does not serve'],
    };
    for (const [key, [name, text]] of Object.entries(help)) {
      this.promCounters[key as keyof typeof help] = new Counter({ name, help: text, registers: [registry] });
    }
    const streams = () => this.sotw.size + this.delta.size;
    new Gauge({ name: 'galley_xds_streams', help: 'Open ADS streams of Galley subscribers', registers: [registry], collect() { this.set(streams()); } });
  }

  private count(what: keyof Omit<DistributionStats, 'streams'>): void {
    this.counters[what] += 1;
    this.promCounters[what]?.inc();
  }

  /** Adds the ADS service to a server; the caller binds and starts it. */
  register(server: grpc.Server): void {
    const definition = loadXdsProtos(ADS_PROTO_FILES).serviceDefinition(ADS_SERVICE);
    server.addService(definition, {
      StreamAggregatedResources: (call: SotwCall) => this.openSotw(call),
      DeltaAggregatedResources: (call: DeltaCall) => this.openDelta(call),
    });
  }

  stats(): DistributionStats {
    return { streams: this.sotw.size + this.delta.size, ...this.counters };
  }

  /** Stops following the source and ends every open stream. */
  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    for (const call of [...this.sotw.keys(), ...this.delta.keys()]) call.end();
    this.sotw.clear();
    this.delta.clear();
  }

  // ---- state of the world -------------------------------------------------

  private openSotw(call: SotwCall): void {
    const stream = { id: this.nextStreamId++, watches: new Map<string, SotwWatch>() };
    this.track(this.sotw, call, stream, 'ADS stream', (req: DiscoveryRequest) => this.onSotwRequest(call, stream, req));
  }

  /** Registers a stream until it ends, however it ends (end, error, cancel, close). */
  private track<Call extends SotwCall | DeltaCall, Stream extends { id: number }, Req>(streams: Map<Call, Stream>, call: Call, stream: Stream, label: string, onRequest: (req: Req) => void): void {
    streams.set(call, stream);
    this.logger.info({ stream: stream.id, peer: call.getPeer() }, `${label} opened`);
    const done = () => {
      if (streams.delete(call)) this.logger.info({ stream: stream.id }, `${label} closed`);
    };
    call.on('data', onRequest);
    call.on('end', () => {
      done();
      call.end();
    });
    call.on('error', done);
    call.on('cancelled', done);
    call.on('close', done);
  }

  private onSotwRequest(call: SotwCall, stream: { id: number; watches: Map<string, SotwWatch> }, req: DiscoveryRequest): void {
    const typeUrl = req.type_url ?? '';
    const nonce = req.response_nonce ?? '';
    const names = new Set(req.resource_names ?? []);
    const log = { stream: stream.id, typeUrl, nonce, node: req.node?.id };
    if (!typeUrl) {
      this.logger.warn(log, 'ignoring an ADS request without type_url');
      return;
    }
    if (!this.registry.byTypeUrl(typeUrl)) {
      if (nonce) return; // the ACK of our empty answer
      this.count('unknownTypeRequests');
      this.logger.warn(log, 'request for an unknown type URL; answering with no resources');
      this.sendSotw(call, typeUrl, [], String(this.source.current()?.version ?? 0));
      return;
    }
    const watch = stream.watches.get(typeUrl);
    if (watch && nonce) {
      if (nonce !== watch.nonce) {
        this.logger.debug(log, 'ignoring a request with a stale nonce');
        return;
      }
      if (isNack(req.error_detail)) {
        this.count('nacks');
        this.logger.warn({ ...log, version: req.version_info, error: req.error_detail.message }, 'client rejected (NACK) a response');
      } else {
        this.count('acks');
      }
      if (sameSet(names, watch.names)) return;
      watch.names = names;
    } else if (watch) {
      // A request without nonce on a watched type: the client starts over (Envoy does so after a restart of its side).
      watch.names = names;
    } else {
      stream.watches.set(typeUrl, { names, nonce: '', sent: undefined });
    }
    const snapshot = this.source.current();
    if (snapshot) this.pushSotw(call, typeUrl, stream.watches.get(typeUrl)!, snapshot);
  }

  private pushSotw(call: SotwCall, typeUrl: string, watch: SotwWatch, snapshot: ConfigSnapshot): void {
    const objects = snapshot.objects(typeUrl);
    const selected = watch.names.size === 0 ? objects : objects.filter((o) => watch.names.has(resourceName(o)));
    watch.sent = objects;
    watch.nonce = this.sendSotw(call, typeUrl, selected, String(snapshot.version));
  }

  private sendSotw(call: SotwCall, typeUrl: string, objects: readonly ConfigObject[], version: string): string {
    const nonce = String(this.nextNonce++);
    const response: DiscoveryResponse = {
      version_info: version,
      resources: objects.map((o) => this.encode(typeUrl, o)),
      type_url: typeUrl,
      nonce,
      control_plane: { identifier: this.identifier },
    };
    this.write(call, response);
    return nonce;
  }

  // ---- delta ----------------------------------------------------------------

  private openDelta(call: DeltaCall): void {
    const stream = { id: this.nextStreamId++, watches: new Map<string, DeltaWatch>() };
    this.track(this.delta, call, stream, 'delta ADS stream', (req: DeltaDiscoveryRequest) => this.onDeltaRequest(call, stream, req));
  }

  private onDeltaRequest(call: DeltaCall, stream: { id: number; watches: Map<string, DeltaWatch> }, req: DeltaDiscoveryRequest): void {
    const typeUrl = req.type_url ?? '';
    const nonce = req.response_nonce ?? '';
    const subscribe = req.resource_names_subscribe ?? [];
    const unsubscribe = req.resource_names_unsubscribe ?? [];
    const log = { stream: stream.id, typeUrl, nonce, node: req.node?.id };
    if (!typeUrl) {
      this.logger.warn(log, 'ignoring a delta request without type_url');
      return;
    }
    if (!this.registry.byTypeUrl(typeUrl)) {
      if (nonce) return;
      this.count('unknownTypeRequests');
      this.logger.warn(log, 'delta request for an unknown type URL; answering with no resources');
      this.sendDelta(call, typeUrl, [], [], String(this.source.current()?.version ?? 0));
      return;
    }
    let watch = stream.watches.get(typeUrl);
    if (!watch) {
      // The first request subscribes to everything when it names nothing, or when it names '*'.
      const wildcard = subscribe.length === 0 || subscribe.includes('*');
      watch = {
        wildcard,
        names: new Set(subscribe.filter((n) => n !== '*')),
        known: new Map(Object.entries(req.initial_resource_versions ?? {})),
        nonce: '',
        sent: undefined,
        answered: false,
      };
      stream.watches.set(typeUrl, watch);
    } else {
      if (nonce && nonce === watch.nonce) {
        if (isNack(req.error_detail)) {
          this.count('nacks');
          this.logger.warn({ ...log, error: req.error_detail.message }, 'client rejected (NACK) a delta response');
        } else {
          this.count('acks');
        }
      }
      if (subscribe.length === 0 && unsubscribe.length === 0) return;
      for (const name of subscribe) {
        if (name === '*') watch.wildcard = true;
        else watch.names.add(name);
      }
      for (const name of unsubscribe) {
        if (name === '*') watch.wildcard = false;
        else watch.names.delete(name);
      }
      // What the client no longer watches it forgets; no removal is sent for it.
      for (const name of [...watch.known.keys()]) if (!this.deltaWants(watch, name)) watch.known.delete(name);
    }
    const snapshot = this.source.current();
    if (snapshot) this.pushDelta(call, typeUrl, watch, snapshot);
  }

  private deltaWants(watch: DeltaWatch, name: string): boolean {
    return watch.wildcard || watch.names.has(name);
  }

  private pushDelta(call: DeltaCall, typeUrl: string, watch: DeltaWatch, snapshot: ConfigSnapshot): void {
    const objects = snapshot.objects(typeUrl);
    watch.sent = objects;
    const changed: DeltaResource[] = [];
    const present = new Set<string>();
    for (const obj of objects) {
      const name = resourceName(obj);
      if (!this.deltaWants(watch, name)) continue;
      present.add(name);
      const version = this.versionOf(obj);
      if (watch.known.get(name) === version) continue;
      watch.known.set(name, version);
      changed.push({ name, version, resource: this.encode(typeUrl, obj) });
    }
    const removed: string[] = [];
    for (const name of watch.known.keys()) {
      if (!present.has(name)) {
        removed.push(name);
        watch.known.delete(name);
      }
    }
    if (changed.length === 0 && removed.length === 0 && watch.answered) return;
    watch.answered = true;
    watch.nonce = this.sendDelta(call, typeUrl, changed, removed, String(snapshot.version));
  }

  private sendDelta(call: DeltaCall, typeUrl: string, resources: DeltaResource[], removed: string[], version: string): string {
    const nonce = String(this.nextNonce++);
    this.write(call, {
      system_version_info: version,
      resources,
      type_url: typeUrl,
      removed_resources: removed,
      nonce,
      control_plane: { identifier: this.identifier },
    });
    return nonce;
  }

  // ---- shared -------------------------------------------------------------

  private onSnapshot(snapshot: ConfigSnapshot): void {
    for (const [call, stream] of this.sotw) {
      for (const [typeUrl, watch] of stream.watches) {
        if (snapshot.objects(typeUrl) !== watch.sent) this.pushSotw(call, typeUrl, watch, snapshot);
      }
    }
    for (const [call, stream] of this.delta) {
      for (const [typeUrl, watch] of stream.watches) {
        if (snapshot.objects(typeUrl) !== watch.sent) this.pushDelta(call, typeUrl, watch, snapshot);
      }
    }
  }

  private write(call: SotwCall | DeltaCall, response: DiscoveryResponse | DeltaDiscoveryResponse): void {
    if (call.cancelled || call.writableEnded) return;
    this.count('responses');
    (call as grpc.ServerDuplexStream<unknown, unknown>).write(response);
  }

  private encode(typeUrl: string, obj: ConfigObject): AnyMessage {
    let any = this.encoded.get(obj);
    if (!any) {
      any = packJsonAny(typeUrl, obj);
      this.encoded.set(obj, any);
    }
    return any;
  }

  /** The store's resourceVersion; a content hash for sources that set none. */
  private versionOf(obj: ConfigObject): string {
    let version = this.versions.get(obj);
    if (!version) {
      version = obj.metadata.resourceVersion || createHash('sha256').update(JSON.stringify(obj)).digest('hex').slice(0, 16);
      this.versions.set(obj, version);
    }
    return version;
  }
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}
