// istio.stats: Istio's standard metrics as an HTTP filter and a network
// filter, configured as Istio does with Istio's own config type,
// `stats.PluginConfig`, carried in a TypedStruct (udpa.type.v1 or
// xds.type.v3): {"@type": ".../udpa.type.v1.TypedStruct", "type_url":
// "type.googleapis.com/stats.PluginConfig", "value": {...}}.
//
// The reporter is "source" on outbound listeners and "destination" on inbound
// ones (the listener's traffic_direction; reporter: SERVER_GATEWAY forces
// destination). Our side comes from the bootstrap node metadata; the peer
// from the metadata exchange headers (peer-metadata.ts). destination_service
// comes from the cluster name (`outbound|9080|v1|reviews.default.svc.cluster.local`),
// an inbound cluster's `istio.services` metadata, or, failing those, the Host
// header (disable_host_header_fallback turns that off).
// Principals and connection_security_policy come from the downstream TLS
// connection on the inbound side; the source reporter says "unknown", as Istio does.

import type { OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { ClusterConfig } from '../config/cluster-config.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import type { FactoryContext, HttpFilterExtension, HttpFilterFactory, NetworkFilterExtension, NetworkFilterFactory } from '../registry.ts';
import type { FilterStatus, HttpFilter, HttpStream } from '../filters/http/http-filter.ts';
import { plainStruct } from '../config/typed-struct.ts';
import { tlsConnectionInfo } from '../transport-sockets/tls/connection-info.ts';
import { upstreamClusterOf } from '../filters/network/tcp-proxy/tcp-proxy.ts';
import type { WorkloadInfo } from './peer-metadata.ts';
import { PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER, UNKNOWN_WORKLOAD, encodePeerMetadata, peerFromHeader, workloadInfo } from './peer-metadata.ts';
import type { HttpSeries, IstioMetrics } from './istio-metrics.ts';
import { MAX_SERIES, escapeLabel, istioMetricsFor, observeRequest, workloadLabels } from './istio-metrics.ts';

export const STATS_PLUGIN_CONFIG_TYPE_URL = 'type.googleapis.com/stats.PluginConfig';

type D = Record<string, any>;

/** Immutable settings shared by every stream of one filter config. */
export class IstioStatsSettings {
  readonly reporter: 'source' | 'destination';
  readonly self: WorkloadInfo;
  readonly nodeId: string;
  /** Our x-envoy-peer-metadata value, encoded once. */
  readonly selfHeader: string;
  readonly hostHeaderFallback: boolean;
  readonly metrics: IstioMetrics;
  private readonly selfLabels: string;
  private readonly peerLabels = new Map<WorkloadInfo, string>();
  /** destination_service labels by cluster, then host. */
  private readonly serviceLabels = new Map<string, Map<string, string>>();
  /** destination_service labels of clusters that carry istio.services metadata. */
  private readonly metadataServiceLabels = new WeakMap<ClusterConfig, string>();
  private readonly clusters: ClusterManager | undefined;
  private serviceCount = 0;
  /**
   * Series by peer labels, connection labels, service labels, then the
   * request's own facts (see seriesFor). Every key but the last is a string
   * cached elsewhere, so a request neither renders nor hashes a label set.
   */
  private readonly series = new Map<string, Map<string, Map<string, Map<string | number, HttpSeries>>>>();
  private seriesCount = 0;

  constructor(config: D, ctx: FactoryContext) {
    const meta = plainStruct(ctx.node?.metadata);
    this.self = workloadInfo(meta);
    this.nodeId = String(ctx.node?.id ?? '');
    this.selfHeader = encodePeerMetadata(meta);
    this.reporter = config.reporter === 'SERVER_GATEWAY' || ctx.trafficDirection === 'INBOUND' ? 'destination' : 'source';
    this.hostHeaderFallback = config.disable_host_header_fallback !== true;
    this.metrics = istioMetricsFor(ctx.stats);
    this.clusters = ctx.clusters;
    this.selfLabels = workloadLabels(this.reporter, this.self);
  }

  /** reporter, source_* and destination_* workload labels for a peer, cached per distinct peer. */
  workloads(peer: WorkloadInfo): string {
    let l = this.peerLabels.get(peer);
    if (l === undefined) {
      const peerSide = workloadLabels(this.reporter === 'source' ? 'destination' : 'source', peer);
      l = this.reporter === 'source' ? `reporter="source",${this.selfLabels},${peerSide}` : `reporter="destination",${peerSide},${this.selfLabels}`;
      if (this.peerLabels.size > 1024) this.peerLabels.clear();
      this.peerLabels.set(peer, l);
    }
    return l;
  }

  /**
   * destination_service{,_name,_namespace}, as Istio's plugin derives them:
   * the first service in the cluster's `istio.services` metadata (Pilot
   * writes it on inbound clusters); else the service host of an
   * `outbound|...|HOST` cluster name; else the Host header. Passthrough and blackhole clusters are their own
   * service name. Cached per cluster and host (per cluster config for
   * metadata, which a cluster update replaces).
   */
  service(cluster: string, host: string, peer: WorkloadInfo): string {
    const config = this.clusters?.get(cluster)?.config;
    const ref = config?.istioServices?.[0];
    if (ref && config) {
      let l = this.metadataServiceLabels.get(config);
      if (l === undefined) this.metadataServiceLabels.set(config, (l = serviceLabels(ref.host, ref.name, ref.namespace)));
      return l;
    }
    let byHost = this.serviceLabels.get(cluster);
    let l = byHost?.get(host);
    if (l === undefined) {
      const fqdn = serviceHostOf(cluster) ?? (this.hostHeaderFallback && host ? host : undefined);
      const m = fqdn ? /^([^.]+)\.([^.]+)\.svc(\.|$)/.exec(fqdn) : null;
      const dest = this.reporter === 'destination' ? this.self : peer;
      const name = PASSTHROUGH_CLUSTERS.has(cluster) ? cluster : m ? m[1]! : (fqdn ?? 'unknown');
      const ns = m ? m[2]! : dest.namespace;
      l = serviceLabels(fqdn ?? 'unknown', name, ns);
      // Host values come from requests: cap what they can add.
      if (this.serviceCount >= 4096) {
        this.serviceLabels.clear();
        this.serviceCount = 0;
        byHost = undefined;
      }
      if (!byHost) this.serviceLabels.set(cluster, (byHost = new Map()));
      byHost.set(host, l);
      this.serviceCount++;
    }
    return l;
  }

  /**
   * The series of one finished request. The request's own facts key the
   * last level: a number for the common case (no flags, no gRPC status),
   * else a short string; the full label set is rendered only for a new series.
   */
  seriesFor(peer: WorkloadInfo, conn: ConnectionLabels, service: string, grpc: boolean, status: number, grpcStatus: string, flags: string): HttpSeries | undefined {
    const workloads = this.workloads(peer);
    let byConn = this.series.get(workloads);
    if (!byConn) this.series.set(workloads, (byConn = new Map()));
    let byService = byConn.get(conn.key);
    if (!byService) byConn.set(conn.key, (byService = new Map()));
    let byFacts = byService.get(service);
    if (!byFacts) byService.set(service, (byFacts = new Map()));
    const facts = grpcStatus === '' && flags === '' ? status * 2 + (grpc ? 1 : 0) : `${status} ${grpc} ${grpcStatus} ${flags}`;
    let s = byFacts.get(facts);
    if (s === undefined) {
      const labels = `${workloads},${conn.security},${service},request_protocol="${grpc ? 'grpc' : 'http'}",response_code="${status}",grpc_response_status="${grpcStatus}",response_flags="${flags || '-'}",connection_security_policy="${conn.policy}"`;
      s = this.metrics.httpSeries(labels);
      if (s === undefined) return undefined;
      // Keys come from requests (flags, codes): keep the index within the series cap.
      if (this.seriesCount >= MAX_SERIES) {
        this.series.clear();
        this.seriesCount = 0;
      }
      byFacts.set(facts, s);
      this.seriesCount++;
    }
    return s;
  }
}

/** Istio's catch-all clusters, which Istio's metrics name as the destination service. */
const PASSTHROUGH_CLUSTERS = new Set(['PassthroughCluster', 'BlackHoleCluster', 'InboundPassthroughClusterIpv4', 'InboundPassthroughClusterIpv6']);

function serviceLabels(host: string, name: string, namespace: string): string {
  return `destination_service="${escapeLabel(host)}",destination_service_name="${escapeLabel(name)}",destination_service_namespace="${escapeLabel(namespace)}"`;
}

/** `outbound|9080|v1|reviews.default.svc.cluster.local` -> the service host; undefined for other names. */
export function serviceHostOf(cluster: string): string | undefined {
  if (!cluster.startsWith('outbound|') && !cluster.startsWith('inbound|')) return undefined;
  const host = cluster.slice(cluster.lastIndexOf('|') + 1);
  return host || undefined;
}

const stripPort = (h: string): string => {
  const c = h.lastIndexOf(':');
  return c > 0 && !h.endsWith(']') && h.indexOf(':') === c ? h.slice(0, c) : h;
};

/** Principals and security policy of a downstream connection, rendered once per connection. */
export interface ConnectionLabels {
  /** source_principal and destination_principal. */
  readonly security: string;
  /** connection_security_policy's value. */
  readonly policy: string;
  /** Both, as one cache key. */
  readonly key: string;
}

function connectionLabelsOf(security: string, policy: string): ConnectionLabels {
  return { security, policy, key: `${security},${policy}` };
}

// The source reporter does not know the server's identity, as in Istio.
const SOURCE_CONNECTION = connectionLabelsOf('source_principal="unknown",destination_principal="unknown"', 'unknown');
const NO_TLS_CONNECTION = connectionLabelsOf('source_principal="unknown",destination_principal="unknown"', 'none');
const connectionLabelCache = new WeakMap<object, ConnectionLabels>();

function connectionLabels(reporter: 'source' | 'destination', socket: Socket | null | undefined): ConnectionLabels {
  if (reporter === 'source') return SOURCE_CONNECTION;
  if (!socket) return NO_TLS_CONNECTION;
  let l = connectionLabelCache.get(socket);
  if (l) return l;
  const tls = tlsConnectionInfo(socket);
  if (!tls) l = NO_TLS_CONNECTION;
  else {
    const peer = tls.uriSanPeerCertificate[0] ?? 'unknown';
    const local = tls.uriSanLocalCertificate[0] ?? 'unknown';
    l = connectionLabelsOf(`source_principal="${escapeLabel(peer)}",destination_principal="${escapeLabel(local)}"`, tls.peerCertificatePresented ? 'mutual_tls' : 'none');
  }
  connectionLabelCache.set(socket, l);
  return l;
}

/** Per stream: the peer as learned from the exchange headers, and the gRPC status if any. */
export class IstioStatsFilter implements HttpFilter {
  private readonly settings: IstioStatsSettings;
  private peer: WorkloadInfo = UNKNOWN_WORKLOAD;
  private grpcStatus = '';

  constructor(settings: IstioStatsSettings) {
    this.settings = settings;
  }

  decodeHeaders(s: HttpStream): FilterStatus {
    const h = s.req.headers;
    const st = this.settings;
    if (st.reporter === 'destination') {
      this.peer = peerFromHeader(h[PEER_METADATA_HEADER]);
      delete h[PEER_METADATA_HEADER];
      delete h[PEER_METADATA_ID_HEADER];
      s.res.setHeader(PEER_METADATA_ID_HEADER, st.nodeId);
      s.res.setHeader(PEER_METADATA_HEADER, st.selfHeader);
    } else {
      h[PEER_METADATA_ID_HEADER] = st.nodeId;
      h[PEER_METADATA_HEADER] = st.selfHeader;
    }
    return 'continue';
  }

  encodeHeaders(_s: HttpStream, _status: number, headers: OutgoingHttpHeaders): void {
    if (this.settings.reporter === 'source') {
      this.peer = peerFromHeader(headers[PEER_METADATA_HEADER] as string | undefined);
      delete headers[PEER_METADATA_HEADER];
      delete headers[PEER_METADATA_ID_HEADER];
    }
    const g = headers['grpc-status'];
    if (g !== undefined) this.grpcStatus = String(g);
  }

  onStreamComplete(s: HttpStream): void {
    const st = this.settings;
    const req = s.req;
    const res = s.res;
    const status = res.headersSent ? res.statusCode : 0;
    const ct = req.headers['content-type'];
    const grpc = typeof ct === 'string' && ct.startsWith('application/grpc');
    let grpcStatus = this.grpcStatus;
    if (grpc && grpcStatus === '') {
      const g = res.getHeader('grpc-status');
      grpcStatus = g === undefined ? '' : String(g);
    }
    const host = st.reporter === 'destination' || !s.upstreamCluster ? stripPort(s.host) : '';
    const series = st.seriesFor(this.peer, connectionLabels(st.reporter, req.socket), st.service(s.upstreamCluster, host, this.peer), grpc, status, grpcStatus, s.responseFlags);
    if (!series) return;
    let reqBytes = s.bytesReceived + (req.method?.length ?? 0) + (req.url?.length ?? 0) + 12;
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i++) reqBytes += raw[i].length + 2;
    const respHeader = (res as unknown as { _header?: string | null })._header;
    observeRequest(series, performance.now() - s.startTime, reqBytes, s.bytesSent + (respHeader ? respHeader.length : 0));
  }
}

/**
 * The network form (before tcp_proxy): counts connections opened and closed
 * and bytes both ways under the TCP label set (request_protocol "tcp").
 */
export class IstioTcpStatsFilter implements NetworkFilterFactory {
  private readonly settings: IstioStatsSettings;
  private next: NetworkFilterFactory | undefined;

  constructor(settings: IstioStatsSettings) {
    this.settings = settings;
  }

  setNext(next: NetworkFilterFactory): void {
    this.next = next;
  }

  get rdsNames(): readonly string[] {
    return this.next?.rdsNames ?? [];
  }

  get activeConnections(): number {
    return this.next?.activeConnections ?? 0;
  }

  drain(): void {
    this.next?.drain();
  }

  close(): void {
    this.next?.close();
  }

  onConnection(socket: Socket): void {
    const next = this.next;
    if (!next) {
      socket.destroy();
      return;
    }
    next.onConnection(socket);
    if (socket.destroyed) return;
    const st = this.settings;
    const cluster = upstreamClusterOf.get(socket) ?? '';
    const conn = connectionLabels(st.reporter, socket);
    const labels = `${st.workloads(UNKNOWN_WORKLOAD)},${conn.security},${st.service(cluster, '', UNKNOWN_WORKLOAD)},request_protocol="tcp",response_flags="-",connection_security_policy="${conn.policy}"`;
    st.metrics.tcpOpened(labels, socket);
    socket.once('close', () => st.metrics.tcpClosed(labels, socket));
  }
}

export const istioStatsHttpExtension: HttpFilterExtension = {
  typeUrl: STATS_PLUGIN_CONFIG_TYPE_URL,
  category: 'http',
  create(config: D, ctx, _path, name): HttpFilterFactory {
    const settings = new IstioStatsSettings(config ?? {}, ctx);
    return { name: name || 'istio.stats', terminal: false, create: () => new IstioStatsFilter(settings) };
  },
};

export const istioStatsNetworkExtension: NetworkFilterExtension = {
  typeUrl: STATS_PLUGIN_CONFIG_TYPE_URL,
  category: 'network',
  create(config: D, ctx) {
    return new IstioTcpStatsFilter(new IstioStatsSettings(config ?? {}, ctx));
  },
};
