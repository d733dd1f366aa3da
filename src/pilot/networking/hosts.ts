// Hostname rules shared by the push context and the generators: resolving the
// short names users write in config (`reviews` -> FQDN), wildcard matching,
// and Istio's exportTo visibility.

/** `reviews` in namespace `default` -> `reviews.default.svc.cluster.local`; FQDNs, wildcards and IPs stay as written. */
export function resolveHost(host: string, namespace: string, domainSuffix: string): string {
  if (host === '*' || host.includes('.') || host.includes(':')) return host;
  return `${host}.${namespace}.svc.${domainSuffix}`;
}

/** True when `pattern` (possibly `*` or `*.suffix`) covers `host` (possibly a wildcard too). */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '*' || pattern === host) return true;
  if (pattern.startsWith('*.')) {
    const suffix = pattern.slice(1);
    if (host.startsWith('*.')) return host.slice(1).endsWith(suffix);
    return host.endsWith(suffix);
  }
  return false;
}

/** Either covers the other: how Istio decides a VirtualService host applies to a gateway server host. */
export function hostsIntersect(a: string, b: string): boolean {
  return hostMatches(a, b) || hostMatches(b, a);
}

/**
 * Istio's exportTo: `*` all namespaces, `.` the owner's, `~` none, else names.
 * An empty list takes the mesh default (which may itself use `.`).
 */
export function isVisible(exportTo: readonly string[], defaults: readonly string[], ownerNamespace: string, viewerNamespace: string): boolean {
  const list = exportTo.length > 0 ? exportTo : defaults.length > 0 ? defaults : ['*'];
  for (const entry of list) {
    if (entry === '*') return true;
    if (entry === '~') continue;
    if (entry === '.' ? ownerNamespace === viewerNamespace : entry === viewerNamespace) return true;
  }
  return false;
}

/** The short names clients in `viewerNamespace` may use for a Kubernetes-style host, most specific first. */
export function hostAliases(hostname: string, viewerNamespace: string, domainSuffix: string): string[] {
  const tail = `.svc.${domainSuffix}`;
  if (!hostname.endsWith(tail)) return [hostname];
  const [name, ns] = hostname.slice(0, -tail.length).split('.');
  if (!name || !ns) return [hostname];
  const out = [hostname, `${name}.${ns}.svc`, `${name}.${ns}`];
  if (ns === viewerNamespace) out.splice(1, 0, name);
  return out;
}

/** True when every label of the selector is on `labels`; an empty selector matches everything. */
export function labelsMatch(selector: Readonly<Record<string, string>> | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}
