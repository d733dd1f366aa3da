// Public surface of the sidecar proxy: start one from a bootstrap, feed it
// xDS resources, and the pieces the agent and tests need.
export { Proxy } from './proxy.ts';
export type { ProxyOptions, RouteInfo } from './proxy.ts';
export { loadBootstrapFile, parseBootstrap, BOOTSTRAP_TYPE_URL } from './bootstrap.ts';
export type { DecodedBootstrap } from './bootstrap.ts';
export { ExtensionRegistry } from './registry.ts';
export type { Extension, NetworkFilterExtension, HttpFilterExtension, AccessLoggerExtension, FactoryContext, NetworkFilterFactory, HttpFilterFactory } from './registry.ts';
export type { HttpFilter, HttpStream, FilterStatus } from './filters/http/http-filter.ts';
export { defaultExtensions } from './extensions.ts';
export { ProxyConfigError, ProxyErrorCode } from './errors.ts';
export { StatsStore } from './stats.ts';
export { decodeJson, decodeAny, renderJson } from './config/proto-json.ts';
export { decodeRouteConfiguration } from './config/route-config.ts';
export { decodeCluster, decodeLoadAssignment } from './config/cluster-config.ts';
export { formatDefault as formatAccessLog } from './access-log.ts';
export { setOriginalDstResolver, localAddressResolver } from './filters/listener/original-dst/original-dst.ts';
export type { OriginalDstResolver } from './filters/listener/original-dst/original-dst.ts';
export { SecretManager } from './secrets/secret-manager.ts';
export { tlsConnectionInfo } from './transport-sockets/tls/connection-info.ts';
