// Host names as Istio resolves them: a short name is a Kubernetes Service in
// the referrer's namespace, `name.namespace` and `name.namespace.svc` are
// completed to `name.namespace.svc.cluster.local`, and a ServiceEntry host may
// be a wildcard (`*.example.com`).

export const CLUSTER_DOMAIN = 'cluster.local';

/** `reviews` in `default` -> `reviews.default.svc.cluster.local`; wildcards and dotted names unchanged. */
export function shortToFqdn(namespace: string, host: string): string {
  if (host.startsWith('*') || host.includes('.')) return host;
  return `${host}.${namespace}.svc.${CLUSTER_DOMAIN}`;
}

/** True when the host (itself possibly a wildcard) falls under the wildcard pattern `*.example.com` or `*`. */
export function wildcardCovers(pattern: string, host: string): boolean {
  if (!pattern.startsWith('*')) return false;
  const suffix = pattern.slice(1);
  const bare = host.startsWith('*') ? host.slice(1) : host;
  return bare.endsWith(suffix);
}

/** Istio's two-way host match (either side may be a wildcard), as gateways match VirtualService hosts. */
export function hostsOverlap(a: string, b: string): boolean {
  return a === b || wildcardCovers(a, b) || wildcardCovers(b, a);
}
