// Dynamic metadata of a request or connection (Envoy's StreamInfo
// dynamic_metadata): filters write namespaced values (`envoy.filters.http.jwt_authn`,
// `istio_authn`, `envoy.filters.http.rbac`, `envoy.filters.http.ext_authz`),
// later filters (RBAC metadata matchers) and access logs read them. Keyed
// weakly by the request (HTTP) or socket (TCP), so nothing outlives it.

type Values = Record<string, unknown>;

const store = new WeakMap<object, Map<string, Values>>();

/** Merges `values` into the namespace `filter` of `owner`'s metadata. */
export function setFilterMetadata(owner: object, filter: string, values: Values): void {
  let m = store.get(owner);
  if (!m) store.set(owner, (m = new Map()));
  m.set(filter, { ...m.get(filter), ...values });
}

/** The namespace `filter` of `owner`'s metadata, or undefined. */
export function filterMetadata(owner: object, filter: string): Values | undefined {
  return store.get(owner)?.get(filter);
}

/** Every namespace, for debugging and access logs. */
export function allMetadata(owner: object): Record<string, Values> {
  return Object.fromEntries(store.get(owner) ?? []);
}
