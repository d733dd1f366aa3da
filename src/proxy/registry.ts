// The extension registry: filters are found by the type URL of their config,
// as in Envoy, so the xDS config alone decides which code runs. Each
// extension turns its decoded config into a factory once per config version;
// factories make the per-connection or per-stream objects.

import type { Socket } from 'node:net';
import { ProxyConfigError, ProxyErrorCode, configError } from './errors.ts';
import type { ClusterManager } from './upstream/cluster-manager.ts';
import type { StatsStore } from './stats.ts';
import type { RouteTable } from './config/route-config.ts';
import type { HttpFilter } from './filters/http/http-filter.ts';
import type { AccessLogger } from './access-log.ts';
import { MeshError } from '../common/index.ts';
import type { Clock } from './clock.ts';
import type { SecretManager } from './secrets/secret-manager.ts';
import type { TransportSocketFactory } from './transport-sockets/transport-socket.ts';
import type { ListenerFilterFactory, ListenerHandoff } from './filters/listener/listener-filter.ts';

/** Named route tables delivered by RDS. */
export interface RouteConfigProvider {
  get(name: string): RouteTable | undefined;
}

/** What a factory may use: shared, long-lived services of the proxy. */
export interface FactoryContext {
  readonly clusters: ClusterManager;
  readonly stats: StatsStore;
  readonly routes: RouteConfigProvider;
  readonly registry: ExtensionRegistry;
  /** The enclosing HCM's stat_prefix, set for HTTP filters so their stats live under `http.<prefix>.`. */
  readonly statPrefix?: string;
  /** The proxy's clock (retry backoff, rate-limit buckets); real time when absent. */
  readonly clock?: Clock;
  /** Static and SDS secrets for TLS transport sockets. */
  readonly secrets?: SecretManager;
  /** Hands a connection to the listener of its original destination (use_original_dst). */
  readonly listenerHandoff?: ListenerHandoff;
  /** The bootstrap node (id, cluster, metadata as a decoded Struct): telemetry labels and peer metadata. */
  readonly node?: Readonly<Record<string, any>>;
  /** The enclosing listener's traffic_direction (INBOUND, OUTBOUND, UNSPECIFIED). */
  readonly trafficDirection?: string;
}

/** A terminal network filter (HCM, tcp_proxy): it takes over accepted connections. */
export interface NetworkFilterFactory {
  onConnection(socket: Socket): void;
  /** Ask open connections to finish (HTTP: `connection: close` on the next response). */
  drain(): void;
  /** Connections still open on this factory. */
  readonly activeConnections: number;
  /** Close every connection now. */
  close(): void;
  /** RDS route configuration names this filter reads. */
  readonly rdsNames: readonly string[];
  /**
   * Present on non-terminal network filters (istio.stats): the listener
   * gives them the filter that follows, to which they pass each connection.
   */
  setNext?(next: NetworkFilterFactory): void;
}

/** Built once per HCM config; `create` runs per stream and must be cheap. */
export interface HttpFilterFactory {
  readonly name: string;
  /** The router and other filters that answer the request end the chain. */
  readonly terminal: boolean;
  create(): HttpFilter;
}

export interface AccessLoggerFactory {
  readonly logger: AccessLogger;
}

interface ExtensionBase<C extends string, F> {
  /** `type.googleapis.com/envoy.extensions...` */
  readonly typeUrl: string;
  readonly category: C;
  /** Builds the factory from the decoded typed_config; throws ProxyConfigError naming `path`. */
  create(config: any, context: FactoryContext, path: string, name: string): F;
}

export type NetworkFilterExtension = ExtensionBase<'network', NetworkFilterFactory>;
export interface HttpFilterExtension extends ExtensionBase<'http', HttpFilterFactory> {
  /** Validates a route's typed_per_filter_config for this filter; throws ProxyConfigError naming `path`. */
  validatePerRoute?(config: any, path: string): void;
}
export type AccessLoggerExtension = ExtensionBase<'access_log', AccessLoggerFactory>;
/** envoy.transport_sockets.* (TLS); a factory serves the downstream or the upstream side. */
export type TransportSocketExtension = ExtensionBase<'transport_socket', TransportSocketFactory>;
/** envoy.filters.listener.* (tls_inspector, http_inspector, original_dst). */
export type ListenerFilterExtension = ExtensionBase<'listener', ListenerFilterFactory>;
export type Extension = NetworkFilterExtension | HttpFilterExtension | AccessLoggerExtension | TransportSocketExtension | ListenerFilterExtension;

type ByCategory = { network: NetworkFilterExtension; http: HttpFilterExtension; access_log: AccessLoggerExtension; transport_socket: TransportSocketExtension; listener: ListenerFilterExtension };

export class ExtensionRegistry {
  private readonly byUrl = new Map<string, Extension>();
  /**
   * Extensions by category and type URL: one config type may serve an HTTP
   * and a network filter (Istio's stats.PluginConfig for `istio.stats`).
   */
  private readonly byKey = new Map<string, Extension>();

  /** Registers an extension; a second one for the same type URL and category is a boot error. */
  register(extension: Extension): this {
    const key = `${extension.category} ${extension.typeUrl}`;
    if (this.byKey.has(key)) throw new MeshError(ProxyErrorCode.DUPLICATE_EXTENSION, `an extension for ${extension.typeUrl} is already registered`);
    this.byKey.set(key, extension);
    if (!this.byUrl.has(extension.typeUrl)) this.byUrl.set(extension.typeUrl, extension);
    return this;
  }

  has(typeUrl: string): boolean {
    return this.byUrl.has(typeUrl);
  }

  /** Checks a route's per-filter config against the extension of its type, if that extension validates it. */
  validatePerRoute(typeUrl: string, config: unknown, path: string): void {
    const ext = this.byKey.get(`http ${typeUrl}`);
    if (ext?.category === 'http') ext.validatePerRoute?.(config, path);
  }

  typeUrls(): string[] {
    return [...this.byUrl.keys()];
  }

  /** The extension of `category` for `typeUrl`; throws naming the type URL when there is none. */
  get<C extends keyof ByCategory>(category: C, typeUrl: string, path: string): ByCategory[C] {
    const ext = this.byKey.get(`${category} ${typeUrl}`);
    if (ext) return ext as ByCategory[C];
    const other = this.byUrl.get(typeUrl);
    if (!other) throw new ProxyConfigError(`${path}: unknown typed_config ${typeUrl}: no ${category.replace('_', ' ')} extension is registered for it`, ProxyErrorCode.UNKNOWN_EXTENSION);
    throw configError(path, `${typeUrl} is a ${other.category} extension, not a ${category} one`);
  }
}
