// Public surface of the agent's certificate handling: the key and CSR, the CA
// client, rotation, and the SDS server that hands secrets to the proxy.
export { createWorkloadKey } from './workload-key.ts';
export type { WorkloadKey, WorkloadKeyType } from './workload-key.ts';
export { CaClient } from './ca-client.ts';
export type { CaClientOptions, CaCredential } from './ca-client.ts';
export { SecretManager } from './secret-manager.ts';
export type { SecretManagerOptions, WorkloadSecret } from './secret-manager.ts';
export { SdsServer, SDS_SERVICE, WORKLOAD_SECRET_NAME, ROOT_SECRET_NAME } from './sds-server.ts';
export type { SdsServerOptions, SecretSource } from './sds-server.ts';
export { systemAgentClock } from './clock.ts';
export type { AgentClock } from './clock.ts';
export { AgentError, AgentErrorCode } from './errors.ts';
export { CredentialClient } from './credential-client.ts';
export type { CredentialClientOptions } from './credential-client.ts';
