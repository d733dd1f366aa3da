// The config store interface every backend implements (memory, durable local
// store, watched directory; etcd and Kubernetes later), and the events it emits.

import type { ConfigObject, ObjectKey } from '../api/index.ts';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface WatchEvent {
  readonly type: WatchEventType;
  /** The object after the change (for DELETED: as it was when deleted). */
  readonly object: ConfigObject;
  /** The store revision this event produced. */
  readonly revision: number;
}

export interface ListFilter {
  readonly group?: string;
  readonly kind?: string;
  readonly namespace?: string;
}

export interface ApplyOptions {
  /** Validate and compute the result, change nothing. */
  readonly dryRun?: boolean;
}

export interface ApplyResult {
  readonly object: ConfigObject;
  readonly action: 'created' | 'configured' | 'unchanged';
}

/**
 * A store of config objects keyed by group/kind/namespace/name.
 *
 * Contract:
 * - apply creates or updates. If the given object carries
 *   metadata.resourceVersion, it must equal the stored one, else the apply
 *   fails with MESH_ERR_GALLEY_CONFLICT and changes nothing. The store sets
 *   resourceVersion (its revision at the write), generation, uid and
 *   creationTimestamp. Once the returned promise resolves the write is durable
 *   (for durable backends).
 * - Objects passed to apply are already validated by the caller (Galley gates
 *   ingestion); stores do not validate.
 * - watch listeners get every change after they subscribed, in revision order,
 *   in batches; they must not throw.
 */
export interface ConfigStore {
  readonly name: string;
  get(key: ObjectKey): Promise<ConfigObject | undefined>;
  list(filter?: ListFilter): Promise<ConfigObject[]>;
  apply(object: ConfigObject, options?: ApplyOptions): Promise<ApplyResult>;
  /** Deletes; returns the deleted object, or undefined when there was none. */
  delete(key: ObjectKey, options?: { resourceVersion?: string; dryRun?: boolean }): Promise<ConfigObject | undefined>;
  watch(listener: (events: readonly WatchEvent[]) => void): () => void;
  /** The revision of the latest change (0 for an empty, new store). */
  revision(): number;
  /** Backend-specific health, e.g. a watched directory's files with errors; shown by `GET /status`. */
  status?(): unknown;
  close(): Promise<void>;
}
