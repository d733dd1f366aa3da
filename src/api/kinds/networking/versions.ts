// The API group and versions every networking.istio.io kind accepts. Istio
// serves v1, v1beta1 and v1alpha3 of these kinds with one schema, so one
// definition covers all three; v1 names the type URL.
export const NETWORKING_GROUP = 'networking.istio.io';
export const NETWORKING_VERSIONS: readonly string[] = ['v1', 'v1beta1', 'v1alpha3'];
