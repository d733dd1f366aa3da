// The extensions this proxy ships, registered in one place. A duplicate type
// URL throws at boot (ExtensionRegistry.register).

import { fileAccessLogExtension } from './access-loggers/file-access-log.ts';
import { faultExtension } from './filters/http/fault/fault.ts';
import { routerExtension } from './filters/http/router/router.ts';
import { httpConnectionManagerExtension } from './filters/network/http-connection-manager/http-connection-manager.ts';
import { tcpProxyExtension } from './filters/network/tcp-proxy/tcp-proxy.ts';
import { ExtensionRegistry } from './registry.ts';

export function defaultExtensions(): ExtensionRegistry {
  return new ExtensionRegistry()
    .register(httpConnectionManagerExtension)
    .register(tcpProxyExtension)
    .register(routerExtension)
    .register(faultExtension)
    .register(fileAccessLogExtension);
}
