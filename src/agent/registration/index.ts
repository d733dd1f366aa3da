// Workload registration: the wire contract and the agent's client.
export { REGISTRATION_SERVICE_NAME, registrationServiceDefinition } from './registration-protocol.ts';
export type { RegistrationReply, WorkloadRef, WorkloadRegistrationMessage } from './registration-protocol.ts';
export { RegistrationClient } from './registration-client.ts';
export type { RegistrationClientOptions, RegistrationCredential } from './registration-client.ts';
