// The type URLs of xDS resources as Envoy names them on the wire, and the
// prefix every protobuf Any uses. Istio config kinds have their own type URLs
// (`networking.istio.io/v1/VirtualService`), made by istioTypeUrl in src/api.

export const TYPE_URL_PREFIX = 'type.googleapis.com/';

/** `envoy.config.cluster.v3.Cluster` -> `type.googleapis.com/envoy.config.cluster.v3.Cluster`. */
export function typeUrlOf(fullName: string): string {
  return TYPE_URL_PREFIX + fullName;
}

export const TypeUrl = {
  Listener: typeUrlOf('envoy.config.listener.v3.Listener'),
  Cluster: typeUrlOf('envoy.config.cluster.v3.Cluster'),
  RouteConfiguration: typeUrlOf('envoy.config.route.v3.RouteConfiguration'),
  ScopedRouteConfiguration: typeUrlOf('envoy.config.route.v3.ScopedRouteConfiguration'),
  VirtualHost: typeUrlOf('envoy.config.route.v3.VirtualHost'),
  ClusterLoadAssignment: typeUrlOf('envoy.config.endpoint.v3.ClusterLoadAssignment'),
  Secret: typeUrlOf('envoy.extensions.transport_sockets.tls.v3.Secret'),
  Runtime: typeUrlOf('envoy.service.runtime.v3.Runtime'),
  HttpConnectionManager: typeUrlOf('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager'),
  TcpProxy: typeUrlOf('envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy'),
  Router: typeUrlOf('envoy.extensions.filters.http.router.v3.Router'),
  UpstreamTlsContext: typeUrlOf('envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext'),
  DownstreamTlsContext: typeUrlOf('envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext'),
} as const;

/** Short names of the xDS APIs, as logs and `proxy-config` speak of them. */
export const XDS_SHORT_NAMES: Readonly<Record<string, string>> = {
  [TypeUrl.Listener]: 'LDS',
  [TypeUrl.Cluster]: 'CDS',
  [TypeUrl.RouteConfiguration]: 'RDS',
  [TypeUrl.ClusterLoadAssignment]: 'EDS',
  [TypeUrl.Secret]: 'SDS',
};

export const ADS_SERVICE = 'envoy.service.discovery.v3.AggregatedDiscoveryService';
