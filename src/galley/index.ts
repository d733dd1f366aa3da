// Public surface of Galley: config stores, validation-gated ingestion,
// snapshots and their distribution, analysis.
export type { ConfigStore, WatchEvent, WatchEventType, ListFilter, ApplyOptions, ApplyResult } from './config-store.ts';
export { MemoryStore } from './memory-store.ts';
export { DurableStore } from './durable-store.ts';
export { DirectorySource } from './directory-source.ts';
export { GalleyError, GalleyErrorCode } from './errors.ts';
export { ingest, ValidationFailedError } from './ingestion.ts';
export type { IngestOptions, IngestOutcome } from './ingestion.ts';
export { createHttpApiServer, DEFAULT_HTTP_API_LIMITS } from './http-api.ts';
export type { HttpApiLimits, HttpApiOptions } from './http-api.ts';
export { ConfigSnapshot, SnapshotDistributor } from './snapshot.ts';
export { GalleyDistributionServer } from './distribution-server.ts';
export { GalleyClient } from './distribution-client.ts';
