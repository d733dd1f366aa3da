// Shared helpers: errors, logging, metrics, environment knobs.
export { MeshError, isMeshError } from './mesh-error.ts';
export { createLogger, silentLogger } from './logger.ts';
export type { Logger } from './logger.ts';
// Types only: prom-client (about 2 MB of heap) loads where metrics are made
// (import them from './metrics.ts'), not in every sidecar that logs.
export type { Registry } from './metrics.ts';
export { env, ENV_KNOBS } from './env.ts';
export type { EnvKnob, EnvKnobName } from './env.ts';
export { deepFreeze } from './deep-freeze.ts';
export { spiffeId, parseSpiffeId } from './spiffe.ts';
export type { WorkloadIdentity } from './spiffe.ts';
export { systemClock, backgroundClock } from './clock.ts';
export type { Clock } from './clock.ts';
