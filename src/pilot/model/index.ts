// Pilot's model: services, workloads, proxies and the platform-adapter interface.
export type { Protocol, ServicePort, Resolution, Service, Locality, HealthStatus, WorkloadInstance, ServiceEndpoint } from './service.ts';
export { parseLocality, protocolFromName, isHttpProtocol } from './service.ts';
export type { RegistryEvent, ServiceRegistry } from './service-registry.ts';
export type { ProxyType, ProxyNode } from './proxy.ts';
export { parseNodeId } from './proxy.ts';
export type { PushContextLike, GenerateRequest, XdsResource, XdsGenerator } from './generator.ts';
