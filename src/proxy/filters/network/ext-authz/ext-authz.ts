// The external authorization network filter (envoy.filters.network.ext_authz):
// each new connection (after TLS, so the peer's identity is known) becomes
// an envoy.service.auth.v3 CheckRequest with its source and destination
// addresses and principals, sent to a host of `grpc_service.envoy_grpc`'s
// cluster. OK hands the connection to the next filter (tcp_proxy, HCM); a
// denial closes it; a failed call closes it too unless failure_mode_allow.
// Bytes the client sends meanwhile wait in the socket. Mixer's cache hints
// (dynamic_metadata["istio.mixer"]) decide later connections with the same
// referenced attributes locally, as the HTTP filter does.
//
// Envoy asks on the connection's first bytes; this filter asks as soon as
// the connection is accepted (as Istio's Mixer TCP filter did), so a
// server-speaks-first upstream is not contacted before the answer.
//
// Stats under `ext_authz.<stat_prefix>.` as Envoy names them: total, ok,
// denied, error, failure_mode_allowed, disabled, cx_closed, active (gauge),
// plus check_cache_hit.

import type * as grpc from '@grpc/grpc-js';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { TYPE_URL_PREFIX } from '../../../../xds/index.ts';
import { configError } from '../../../errors.ts';
import { durationMs } from '../../../config/values.ts';
import { plainStruct } from '../../../config/typed-struct.ts';
import type { Clock } from '../../../clock.ts';
import { realClock } from '../../../clock.ts';
import { connectionFacts } from '../../../rbac/connection-facts.ts';
import { setFilterMetadata } from '../../../rbac/stream-metadata.ts';
import type { NetworkFilterExtension, NetworkFilterFactory } from '../../../registry.ts';
import type { ClusterManager } from '../../../upstream/cluster-manager.ts';
import type { Counter, Gauge } from '../../../stats.ts';
import type { CheckMethod } from '../../common/ext-authz/authz-client.ts';
import { GrpcClients, connectionAttribute, decisionOf, localPrincipal, metadataEnabled, socketAddress } from '../../common/ext-authz/authz-client.ts';
import type { AttributeReader } from '../../common/ext-authz/check-cache.ts';
import { CheckCache } from '../../common/ext-authz/check-cache.ts';

type D = Record<string, any>;

export const NETWORK_EXT_AUTHZ_TYPE_URL = `${TYPE_URL_PREFIX}envoy.extensions.filters.network.ext_authz.v3.ExtAuthz`;
/** The dynamic metadata namespace the CheckResponse's dynamic_metadata lands in. */
export const NETWORK_EXT_AUTHZ_METADATA = 'envoy.filters.network.ext_authz';

export interface NetworkExtAuthzStats {
  readonly total: Counter;
  readonly ok: Counter;
  readonly denied: Counter;
  readonly error: Counter;
  readonly failure_mode_allowed: Counter;
  readonly disabled: Counter;
  readonly cx_closed: Counter;
  readonly active: Gauge;
  readonly cache_hit: Counter;
}

export interface NetworkExtAuthzSettings {
  readonly cluster: string;
  readonly authority: string;
  readonly timeoutMs: number;
  readonly failureModeAllow: boolean;
  readonly includePeerCertificate: boolean;
  readonly includeTlsSession: boolean;
  /** attributes.destination.labels, from the node metadata key bootstrap_metadata_labels_key. */
  readonly destinationLabels: Readonly<Record<string, string>>;
  readonly enabledMetadata: ((owner: object) => boolean) | undefined;
  readonly clusters: ClusterManager;
  readonly clients: GrpcClients;
  readonly cache: CheckCache;
  readonly stats: NetworkExtAuthzStats;
}

export class NetworkExtAuthzFilter implements NetworkFilterFactory {
  readonly settings: NetworkExtAuthzSettings;
  private next: NetworkFilterFactory | undefined;
  /** Connections waiting for their answer, with the call in flight (none while no host was found). */
  private readonly waiting = new Map<Socket, grpc.ClientUnaryCall | undefined>();

  constructor(settings: NetworkExtAuthzSettings) {
    this.settings = settings;
  }

  setNext(next: NetworkFilterFactory): void {
    this.next = next;
  }

  onConnection(socket: Socket): void {
    const st = this.settings;
    if (st.enabledMetadata && !st.enabledMetadata(socket)) {
      st.stats.disabled.value++;
      this.next?.onConnection(socket);
      return;
    }
    const read = this.attributeReader(socket);
    const cached = st.cache.lookup(read);
    if (cached) {
      st.stats.cache_hit.value++;
      if (cached.allowed) this.admit(socket, 'ok');
      else this.refuse(socket, 'denied');
      return;
    }
    this.check(socket, read);
  }

  private attributeReader(socket: Socket): AttributeReader {
    const conn = connectionFacts(socket);
    return (name) => (name === 'context.protocol' ? 'tcp' : connectionAttribute(conn, name));
  }

  private checkRequest(socket: Socket): D {
    const st = this.settings;
    const conn = connectionFacts(socket);
    const source: D = { address: socketAddress(conn.directRemoteIp, conn.directRemotePort), principal: conn.principal };
    if (st.includePeerCertificate && socket instanceof TLSSocket) {
      const pem = socket.getPeerX509Certificate()?.toString();
      if (pem) source.certificate = encodeURIComponent(pem);
    }
    const attributes: D = {
      source,
      destination: { address: socketAddress(conn.destinationIp, conn.destinationPort), principal: localPrincipal(socket), labels: st.destinationLabels },
    };
    if (st.includeTlsSession && conn.sni) attributes.tls_session = { sni: conn.sni };
    return { attributes };
  }

  private check(socket: Socket, read: AttributeReader): void {
    const st = this.settings;
    st.stats.total.value++;
    st.stats.active.value++;
    let settled = false;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      st.stats.active.value--;
      this.waiting.delete(socket);
      socket.removeListener('close', onClose);
      return !socket.destroyed;
    };
    // A client that gives up while the call is out ends it.
    const onClose = (): void => {
      const call = this.waiting.get(socket);
      if (settle()) return;
      call?.cancel();
    };
    socket.once('close', onClose);
    this.waiting.set(socket, undefined);
    const host = st.clusters.get(st.cluster)?.pickHost();
    if (!host) {
      if (settle()) this.onError(socket);
      return;
    }
    const client = st.clients.get(`${host.address}:${host.port}`, st.authority);
    const call = (client as unknown as { Check: CheckMethod }).Check(this.checkRequest(socket), { deadline: Date.now() + st.timeoutMs }, (err, resp) => {
      if (!settle()) return;
      if (err) {
        this.onError(socket);
        return;
      }
      const { decision, hints } = decisionOf(resp);
      if (hints) st.cache.store(hints, read, decision);
      if (resp.dynamic_metadata) setFilterMetadata(socket, NETWORK_EXT_AUTHZ_METADATA, plainStruct(resp.dynamic_metadata));
      if (decision.allowed) this.admit(socket, 'ok');
      else this.refuse(socket, 'denied');
    });
    if (!settled) this.waiting.set(socket, call);
  }

  private onError(socket: Socket): void {
    const st = this.settings;
    st.stats.error.value++;
    if (st.failureModeAllow) {
      st.stats.failure_mode_allowed.value++;
      this.next?.onConnection(socket);
      return;
    }
    this.refuse(socket, undefined);
  }

  private admit(socket: Socket, counter: 'ok'): void {
    this.settings.stats[counter].value++;
    this.next?.onConnection(socket);
  }

  private refuse(socket: Socket, counter: 'denied' | undefined): void {
    const stats = this.settings.stats;
    if (counter) stats[counter].value++;
    stats.cx_closed.value++;
    socket.destroy();
  }

  get activeConnections(): number {
    return this.waiting.size + (this.next?.activeConnections ?? 0);
  }

  get rdsNames(): readonly string[] {
    return this.next?.rdsNames ?? [];
  }

  drain(): void {
    this.next?.drain();
  }

  close(): void {
    for (const socket of [...this.waiting.keys()]) socket.destroy();
    this.next?.close();
    this.settings.clients.close();
  }
}

function labelsFromNode(node: Readonly<Record<string, any>> | undefined, key: string): Record<string, string> {
  if (!key) return {};
  const labels = plainStruct(node?.metadata)[key];
  if (!labels || typeof labels !== 'object') return {};
  return Object.fromEntries(Object.entries(labels as Record<string, unknown>).filter(([, v]) => typeof v === 'string')) as Record<string, string>;
}

export const networkExtAuthzExtension: NetworkFilterExtension = {
  typeUrl: NETWORK_EXT_AUTHZ_TYPE_URL,
  category: 'network',
  create(c: D, ctx, path) {
    if (!c.stat_prefix) throw configError(`${path}.stat_prefix`, 'must not be empty');
    const g = c.grpc_service;
    if (!g?.envoy_grpc?.cluster_name) throw configError(`${path}.grpc_service.envoy_grpc.cluster_name`, 'must not be empty (google_grpc is not supported)');
    const p = `ext_authz.${c.stat_prefix}.`;
    const counter = (n: string): Counter => ctx.stats.counter(p + n);
    const clock: Clock = ctx.clock ?? realClock;
    return new NetworkExtAuthzFilter({
      cluster: g.envoy_grpc.cluster_name,
      authority: g.envoy_grpc.authority ?? '',
      timeoutMs: durationMs(g.timeout, 200),
      failureModeAllow: c.failure_mode_allow === true,
      includePeerCertificate: c.include_peer_certificate === true,
      includeTlsSession: c.include_tls_session === true,
      destinationLabels: labelsFromNode(ctx.node, c.bootstrap_metadata_labels_key ?? ''),
      enabledMetadata: c.filter_enabled_metadata ? metadataEnabled(c.filter_enabled_metadata, `${path}.filter_enabled_metadata`) : undefined,
      clusters: ctx.clusters,
      clients: new GrpcClients(),
      cache: new CheckCache(clock),
      stats: {
        total: counter('total'),
        ok: counter('ok'),
        denied: counter('denied'),
        error: counter('error'),
        failure_mode_allowed: counter('failure_mode_allowed'),
        disabled: counter('disabled'),
        cx_closed: counter('cx_closed'),
        active: ctx.stats.gauge(p + 'active'),
        cache_hit: counter('check_cache_hit'),
      },
    });
  },
};
