// Dynamic metadata of a request or connection (Envoy's StreamInfo
// dynamic_metadata): filters write namespaced values (`envoy.filters.http.jwt_authn`,
// `istio_authn`, `envoy.filters.http.rbac`, `envoy.filters.http.ext_authz`),
// later filters (RBAC metadata matchers) and access logs read them. Held by
// the request (HTTP) or socket (TCP) itself, so nothing outlives it.
//
// Per request, so kept cheap: the namespaces live under a non-enumerable
// symbol property of the owner (invisible to Object.keys, spreads, for-in and
// JSON, so header copies never carry it). A WeakMap entry per request cost
// about ten times more, most of it in the collector's ephemeron work; it
// remains for owners that cannot take a property (frozen objects).
//
// Values are handed over, not copied: the first write of a namespace stores
// the caller's object itself (the istio.mixer filter sets the same cached,
// frozen object on every request of a source), a later write merges into a
// new object. So a stored object is never mutated here, and callers must not
// mutate an object after handing it over.

type Values = Record<string, unknown>;

const METADATA = Symbol('mesh.dynamicMetadata');
const fallback = new WeakMap<object, Map<string, Values>>();

function namespacesOf(owner: object): Map<string, Values> | undefined {
  return (owner as { [METADATA]?: Map<string, Values> })[METADATA] ?? fallback.get(owner);
}

/** Merges `values` into the namespace `filter` of `owner`'s metadata; `values` is kept as is when the namespace was empty. */
export function setFilterMetadata(owner: object, filter: string, values: Values): void {
  const m = namespacesOf(owner);
  if (!m) {
    const fresh = new Map<string, Values>();
    fresh.set(filter, values);
    if (Object.isExtensible(owner)) Object.defineProperty(owner, METADATA, { value: fresh, enumerable: false, writable: false, configurable: false });
    else fallback.set(owner, fresh);
    return;
  }
  const old = m.get(filter);
  m.set(filter, old ? { ...old, ...values } : values);
}

/** The namespace `filter` of `owner`'s metadata, or undefined. */
export function filterMetadata(owner: object, filter: string): Values | undefined {
  return namespacesOf(owner)?.get(filter);
}

/** Every namespace, for debugging and access logs. */
export function allMetadata(owner: object): Record<string, Values> {
  return Object.fromEntries(namespacesOf(owner) ?? []);
}

/**
 * JSON text of frozen metadata values (source.labels, ...), by identity:
 * the ratelimit descriptor, the check cache key and the report bag read the
 * same cached object on every request of a source. Only objects frozen all
 * the way down are remembered, so a remembered text can never go stale; a
 * WeakMap, so it lives as long as the object.
 */
const jsonOfFrozen = new WeakMap<object, string>();

function deepFrozen(v: unknown): boolean {
  if (v === null || typeof v !== 'object') return true;
  if (!Object.isFrozen(v)) return false;
  for (const k in v) if (!deepFrozen((v as Values)[k])) return false;
  return true;
}

/** A metadata value as text: strings as they are, anything else as JSON (undefined for null and undefined). */
export function metadataText(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v !== 'object') return JSON.stringify(v);
  let t = jsonOfFrozen.get(v);
  if (t === undefined) {
    t = JSON.stringify(v);
    if (deepFrozen(v)) jsonOfFrozen.set(v, t);
  }
  return t;
}
