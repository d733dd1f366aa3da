// One ADS stream and what Pilot knows about it: the proxy, and per type URL
// what it subscribed to, what it was sent, and what it accepted. The state is
// kept by nonce: the latest response of a type is SYNCED once ACKed, NACKED
// when rejected, STALE while unanswered.

import type * as grpc from '@grpc/grpc-js';
import type { DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse } from '../../xds/index.ts';
import { TypeUrl } from '../../xds/index.ts';
import type { ProxyNode } from '../model/index.ts';

export type XdsProtocol = 'sotw' | 'delta';
export type SotwCall = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;
export type DeltaCall = grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;

export type SyncState = 'SYNCED' | 'STALE' | 'NACKED' | 'NOT_SENT';

/** What the client holds of one resource, to the server's knowledge. */
export interface HeldResource {
  /** Hash of the bytes sent (or the version the client announced in delta initial_resource_versions). */
  readonly version: string;
}

/**
 * Types where SotW responses carry the complete set and an empty subscription
 * means "everything" (Envoy: Listener and Cluster). The others are named:
 * responses carry only what changed and the client subscribes by name.
 */
const WILDCARD_TYPES: ReadonlySet<string> = new Set([TypeUrl.Listener, TypeUrl.Cluster]);

export function isWildcardType(typeUrl: string): boolean {
  return WILDCARD_TYPES.has(typeUrl);
}

/** A resource as the server knows the client holds it: packed (sent by us) or only announced (delta initial_resource_versions). */
export interface HeldEntry extends HeldResource {
  /** The generated value, when the server sent it (for config dumps). */
  readonly value?: Readonly<Record<string, unknown>>;
}

const EMPTY_NAMES: ReadonlySet<string> = new Set();
const EMPTY_HELD: ReadonlyMap<string, HeldEntry> = new Map();

/**
 * Per-proxy state is the memory of a control plane: at 1000 services a
 * sidecar subscribes to ~1000 EDS names and holds ~2000 resources, and 2000
 * sidecars with private maps of all that took ~0.4 MB each (and the major GCs
 * of an ~800 MB heap were most of a push's latency). Proxies of one view
 * (sidecar scope) subscribe to the same names and hold the same resources,
 * so both are immutable values here, shared between watches (interned by the
 * server) and replaced, never mutated: `names` and `held` are references to
 * shared sets/maps, copied on write only when a watch diverges.
 */
export class Watch {
  readonly typeUrl: string;
  wildcard: boolean;
  /** Subscribed names; immutable and possibly shared: replace it (setNames), never mutate it. */
  names: ReadonlySet<string> = EMPTY_NAMES;
  /** What the client holds: name -> version (and value, when we sent it). Immutable and possibly shared: see setHeld / mutableHeld. */
  held: ReadonlyMap<string, HeldEntry> = EMPTY_HELD;
  #heldPrivate = false;
  /** The latest nonce sent; '' before the first response. */
  nonce = '';
  sentVersion: string | undefined;
  ackedVersion: string | undefined;
  ackedNonce = '';
  nackedNonce = '';
  /** The error text of the latest NACK. */
  error: string | undefined;
  lastPushAt: number | undefined;

  constructor(typeUrl: string, wildcard: boolean) {
    this.typeUrl = typeUrl;
    this.wildcard = wildcard;
  }

  setNames(names: ReadonlySet<string>): void {
    this.names = names;
  }

  /** Replaces what the client holds by a shared, immutable map. */
  setHeld(held: ReadonlyMap<string, HeldEntry>): void {
    this.held = held;
    this.#heldPrivate = false;
  }

  /** Whether `held` is this watch's own (mutable) map rather than a shared one. */
  get heldIsPrivate(): boolean {
    return this.#heldPrivate;
  }

  /** What the client holds, as a map of this watch's own (copied first when shared). */
  mutableHeld(): Map<string, HeldEntry> {
    if (!this.#heldPrivate) {
      this.held = new Map(this.held);
      this.#heldPrivate = true;
    }
    return this.held as Map<string, HeldEntry>;
  }

  /** The resources last generated for this proxy (what it was sent and holds), for config dumps. */
  generatedValues(): Readonly<Record<string, unknown>>[] {
    const out: Readonly<Record<string, unknown>>[] = [];
    for (const h of this.held.values()) if (h.value) out.push(h.value);
    return out;
  }

  wants(name: string): boolean {
    return this.wildcard || this.names.has(name);
  }

  get state(): SyncState {
    if (!this.nonce) return 'NOT_SENT';
    if (this.nackedNonce === this.nonce) return 'NACKED';
    if (this.ackedNonce === this.nonce) return 'SYNCED';
    return 'STALE';
  }
}

/** One type URL of one proxy, as proxyStatus reports it. */
export interface TypeStatus {
  readonly state: SyncState;
  readonly sentVersion?: string;
  readonly ackedVersion?: string;
  /** The NACK's error text, when state is NACKED. */
  readonly error?: string;
  /** Clock ms of the latest response of this type. */
  readonly lastPushAt?: number;
  /** Resource names subscribed; absent for a wildcard subscription. */
  readonly names?: readonly string[];
  readonly resources: number;
}

export interface ProxyStatus {
  readonly connectionId: string;
  readonly id: string;
  readonly type: ProxyNode['type'];
  readonly protocol: XdsProtocol;
  readonly types: Readonly<Record<string, TypeStatus>>;
}

export class Connection {
  readonly id: string;
  readonly protocol: XdsProtocol;
  readonly call: SotwCall | DeltaCall;
  readonly peer: string;
  readonly connectedAt: number;
  /** Set by the first request. */
  proxy: ProxyNode | undefined;
  readonly watches = new Map<string, Watch>();
  closed = false;

  constructor(id: string, protocol: XdsProtocol, call: SotwCall | DeltaCall, connectedAt: number) {
    this.id = id;
    this.protocol = protocol;
    this.call = call;
    this.connectedAt = connectedAt;
    let peer = '';
    try {
      peer = call.getPeer();
    } catch {
      // The peer is only for debug output.
    }
    this.peer = peer;
  }

  /** Response bytes written to the stream and not yet flushed to the socket (see PilotXdsServer's unsent budget). */
  unsentBytes = 0;
  /** Requests received and not handled yet (held back while the server's unsent budget is spent). */
  readonly pendingRequests: (DiscoveryRequest | DeltaDiscoveryRequest)[] = [];
  /** Called with the size of each response written. */
  onWritten: ((bytes: number) => void) | undefined;
  /** Called with the size of each response once it is flushed. */
  onFlushed: ((bytes: number) => void) | undefined;

  /** Writes a response; false when the stream is gone or asks the writer to wait for 'drain'. */
  write(response: DiscoveryResponse | DeltaDiscoveryResponse): boolean {
    if (this.closed || this.call.cancelled || this.call.writableEnded) return true;
    let bytes = 0;
    for (const r of response.resources) bytes += ('resource' in r ? r.resource?.value.length : 'value' in r ? r.value.length : 0) ?? 0;
    this.unsentBytes += bytes;
    this.onWritten?.(bytes);
    return (this.call as grpc.ServerDuplexStream<unknown, unknown>).write(response, () => {
      // grpc-js calls back once the frame is handed to the socket; never when the call was cancelled (closeConnection settles those).
      if (this.closed) return;
      this.unsentBytes -= bytes;
      this.onFlushed?.(bytes);
    });
  }

  status(): ProxyStatus {
    const types: Record<string, TypeStatus> = {};
    for (const [typeUrl, w] of this.watches) {
      types[typeUrl] = {
        state: w.state,
        ...(w.sentVersion !== undefined ? { sentVersion: w.sentVersion } : {}),
        ...(w.ackedVersion !== undefined ? { ackedVersion: w.ackedVersion } : {}),
        ...(w.state === 'NACKED' && w.error !== undefined ? { error: w.error } : {}),
        ...(w.lastPushAt !== undefined ? { lastPushAt: w.lastPushAt } : {}),
        ...(w.wildcard ? {} : { names: [...w.names].sort() }),
        resources: w.generatedValues().length,
      };
    }
    return { connectionId: this.id, id: this.proxy?.id ?? '', type: this.proxy?.type ?? 'sidecar', protocol: this.protocol, types };
  }
}
