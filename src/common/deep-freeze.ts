// Deep freezing for immutable snapshots and config: frozen all the way down.

// Values known to be frozen all the way down, so unchanged objects and arrays
// are not walked again for every snapshot.
const deeplyFrozen = new WeakSet<object>();

/** Freezes a value and everything reachable from it; returns the value. */
export function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || deeplyFrozen.has(value)) return value;
  // Children first: an object frozen by someone else may still hold mutable children.
  for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  Object.freeze(value);
  deeplyFrozen.add(value);
  return value;
}
