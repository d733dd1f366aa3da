// The extensions this proxy ships, registered in one place. A duplicate type
// URL throws at boot (ExtensionRegistry.register).

import { fileAccessLogExtension, stderrAccessLogExtension, stdoutAccessLogExtension } from './access-loggers/file-access-log.ts';
import { istioStatsHttpExtension, istioStatsNetworkExtension } from './telemetry/istio-stats.ts';
import { faultExtension } from './filters/http/fault/fault.ts';
import { corsExtension } from './filters/http/cors/cors.ts';
import { localRateLimitExtension } from './filters/http/local-ratelimit/local-ratelimit.ts';
import { routerExtension } from './filters/http/router/router.ts';
import { httpConnectionManagerExtension } from './filters/network/http-connection-manager/http-connection-manager.ts';
import { tcpProxyExtension } from './filters/network/tcp-proxy/tcp-proxy.ts';
import { ExtensionRegistry } from './registry.ts';
import { tlsTransportSocketExtensions } from './transport-sockets/tls/tls-transport-socket.ts';
import { tlsInspectorExtension } from './filters/listener/tls-inspector/tls-inspector.ts';
import { httpInspectorExtension } from './filters/listener/http-inspector/http-inspector.ts';
import { originalDstExtension } from './filters/listener/original-dst/original-dst.ts';
import { rbacExtension } from './filters/http/rbac/rbac.ts';
import { jwtAuthnExtension } from './filters/http/jwt-authn/jwt-authn.ts';
import { extAuthzExtension } from './filters/http/ext-authz/ext-authz.ts';
import { networkRbacExtension } from './filters/network/rbac/rbac.ts';
import { networkExtAuthzExtension } from './filters/network/ext-authz/ext-authz.ts';
import { rateLimitExtension } from './filters/http/ratelimit/ratelimit.ts';
import { mixerAttributesExtension } from './filters/http/mixer-attributes/mixer-attributes.ts';
import { httpGrpcAccessLogExtension } from './access-loggers/grpc-als/grpc-als.ts';
import { mixerReportExtension } from './access-loggers/mixer-report/mixer-report.ts';

export function defaultExtensions(): ExtensionRegistry {
  return new ExtensionRegistry()
    .register(httpConnectionManagerExtension)
    .register(tcpProxyExtension)
    .register(routerExtension)
    .register(faultExtension)
    .register(corsExtension)
    .register(localRateLimitExtension)
    .register(fileAccessLogExtension)
    .register(stdoutAccessLogExtension)
    .register(stderrAccessLogExtension)
    .register(istioStatsHttpExtension)
    .register(istioStatsNetworkExtension)
    .register(tlsTransportSocketExtensions[0])
    .register(tlsTransportSocketExtensions[1])
    .register(tlsInspectorExtension)
    .register(httpInspectorExtension)
    .register(originalDstExtension)
    .register(rbacExtension)
    .register(jwtAuthnExtension)
    .register(extAuthzExtension)
    .register(networkRbacExtension)
    .register(networkExtAuthzExtension)
    .register(rateLimitExtension)
    .register(mixerAttributesExtension)
    .register(httpGrpcAccessLogExtension)
    .register(mixerReportExtension);
}
