// Public surface of the agent (the sidecar's bootstrap side): today its
// certificate handling; the xDS client, DNS proxy and lifecycle join here.
export * from './certificates/index.ts';
