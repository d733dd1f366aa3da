// Public surface of Pilot's service registry: the local adapter (ServiceEntry,
// WorkloadEntry, live registration), the aggregate over adapters, and the
// pieces an integrator wires (clock, authorizers, errors).
export { AggregateRegistry, mergeServices } from './aggregate-registry.ts';
export type { AggregateRegistryOptions } from './aggregate-registry.ts';
export { LocalRegistry } from './local-registry.ts';
export type { LocalRegistryOptions, RegistrationHandle, RegistryLogger, SnapshotSource } from './local-registry.ts';
export { allowAllRegistrations, SpiffeRegistrationAuthorizer, mergeWithGroup } from './registration.ts';
export type { RegistrationAuthorizer, WorkloadRegistration } from './registration.ts';
export { convertServiceEntry, convertWorkloadEntry, endpointPortFor, parseProtocol, spiffeIdentity } from './service-entry-conversion.ts';
export type { ConversionContext, ConvertedServiceEntry } from './service-entry-conversion.ts';
export { systemRegistryClock } from './clock.ts';
export type { RegistryClock } from './clock.ts';
export { RegistryError, RegistryErrorCode } from './errors.ts';
