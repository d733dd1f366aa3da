// Public surface of the agent (the sidecar's bootstrap side): certificate
// handling, workload registration, and traffic capture (network namespaces,
// iptables, SO_ORIGINAL_DST, the DNS proxy).
export * from './certificates/index.ts';
export * from './registration/index.ts';
export * from './capture/index.ts';
