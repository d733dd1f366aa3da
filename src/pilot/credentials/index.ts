// Gateway credentials by name (credentialName), served over SDS to gateway agents.
export { CredentialServer, DEFAULT_CREDENTIAL_LIMITS } from './credential-server.ts';
export type { CredentialServerLimits, CredentialServerOptions, CredentialSnapshots } from './credential-server.ts';
