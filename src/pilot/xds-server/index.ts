// Public surface of Pilot's ADS server: the server, push requests, proxy
// status and the debug HTTP handler.
export { PilotXdsServer, clusterHost } from './xds-server.ts';
export type { PilotXdsServerOptions, XdsServerStats, ProxyConfig, ConnectionInfo } from './xds-server.ts';
export type { PushRequest } from './push-request.ts';
export type { ProxyStatus, TypeStatus, SyncState, XdsProtocol } from './connection.ts';
export { defaultResolveProxy, structToJson, InvalidNodeError } from './resolve-proxy.ts';
export type { ResolveProxy } from './resolve-proxy.ts';
export { createPilotDebugHandler, toConfigDump } from './debug-handler.ts';
export type { DebugHandler } from './debug-handler.ts';
export { systemClock } from './clock.ts';
export type { Clock, PilotLogger } from './clock.ts';
