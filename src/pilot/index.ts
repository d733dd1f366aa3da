// Public surface of Pilot: the module the control plane hosts, and the pieces
// other tools use (model, registry, generators, ADS server).
export { Pilot } from './pilot.ts';
export type { PilotOptions } from './pilot.ts';
export type * from './model/index.ts';
export { parseNodeId, parseLocality, protocolFromName, isHttpProtocol } from './model/index.ts';
export { LocalRegistry, AggregateRegistry, SpiffeRegistrationAuthorizer } from './registry/index.ts';
export type { WorkloadRegistration, RegistrationHandle } from './registry/index.ts';
export { buildPushContext, createGenerators } from './networking/index.ts';
export type { PushContext } from './networking/index.ts';
export { PilotXdsServer, createPilotDebugHandler } from './xds-server/index.ts';
export type { ProxyStatus, ProxyConfig as ProxyConfigView } from './xds-server/index.ts';
export { CredentialServer, DEFAULT_CREDENTIAL_LIMITS } from './credentials/index.ts';
export type { CredentialServerLimits, CredentialServerOptions } from './credentials/index.ts';
