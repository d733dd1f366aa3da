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

export class Watch {
  readonly typeUrl: string;
  wildcard: boolean;
  readonly names = new Set<string>();
  /** What the client holds: name -> version. */
  readonly held = new Map<string, HeldResource>();
  /** The resources last generated for this proxy, for config dumps. */
  readonly generated = new Map<string, Readonly<Record<string, unknown>>>();
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

  /** Subscribed names by the host of their cluster name ('' for other names), for the EDS fast path; see namesChanged(). */
  private hostIndex: Map<string, string[]> | undefined;

  namesByHost(hostOf: (name: string) => string | undefined): ReadonlyMap<string, readonly string[]> {
    if (!this.hostIndex) {
      const index = new Map<string, string[]>();
      for (const n of this.names) {
        const host = hostOf(n) ?? '';
        const list = index.get(host);
        if (list) list.push(n);
        else index.set(host, [n]);
      }
      this.hostIndex = index;
    }
    return this.hostIndex;
  }

  /** Call after changing `names`. */
  namesChanged(): void {
    this.hostIndex = undefined;
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
        resources: w.generated.size,
      };
    }
    return { connectionId: this.id, id: this.proxy?.id ?? '', type: this.proxy?.type ?? 'sidecar', protocol: this.protocol, types };
  }
}
