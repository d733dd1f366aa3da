// What a store does to an object it accepts: stamp resourceVersion, generation,
// uid and creationTimestamp, and decide whether the write changes anything.

import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { ConfigObject, ObjectKey } from '../api/index.ts';
import { describeObject, keyOf, keyString } from '../api/index.ts';
import { GalleyError, GalleyErrorCode } from './errors.ts';

/** The parts of an object a user controls; two objects equal here are the same config. */
function userContent(obj: ConfigObject): unknown {
  const { resourceVersion: _rv, generation: _g, creationTimestamp: _c, uid: _u, ...meta } = obj.metadata;
  return { apiVersion: obj.apiVersion, kind: obj.kind, metadata: meta, spec: obj.spec };
}

export function sameContent(a: ConfigObject, b: ConfigObject): boolean {
  return isDeepStrictEqual(userContent(a), userContent(b));
}

/** Throws CONFLICT when the caller's resourceVersion is stale. */
export function checkResourceVersion(incoming: ConfigObject, stored: ConfigObject | undefined): void {
  const wanted = incoming.metadata.resourceVersion;
  if (wanted === undefined || wanted === '') return;
  const actual = stored?.metadata.resourceVersion;
  if (wanted !== actual) {
    throw new GalleyError(
      GalleyErrorCode.CONFLICT,
      `${describeObject(incoming)}: resourceVersion ${wanted} does not match the stored ${actual ?? '(none: the object does not exist)'}; get the object again and retry`,
    );
  }
}

/** The stored form of an accepted write at a given revision. */
export function stamp(incoming: ConfigObject, stored: ConfigObject | undefined, revision: number, now = new Date()): ConfigObject {
  const copy = structuredClone(incoming);
  copy.metadata.resourceVersion = String(revision);
  copy.metadata.generation = stored ? (stored.metadata.generation ?? 1) + 1 : 1;
  copy.metadata.uid = stored?.metadata.uid ?? randomUUID();
  copy.metadata.creationTimestamp = stored?.metadata.creationTimestamp ?? now.toISOString();
  return copy;
}

export function storeKey(objOrKey: ConfigObject | ObjectKey): string {
  return keyString('apiVersion' in objOrKey ? keyOf(objOrKey) : objOrKey);
}
