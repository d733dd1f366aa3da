// The workload certificate lifetime a sidecar asks Citadel for, as users write
// it: `mesh run --cert-ttl 6s`, `certTtl: 90m` in mesh.yaml, or
// MESH_WORKLOAD_CERT_TTL. Whole seconds, at least one; Citadel caps it.

/** `6s` / `90m` / `24h` / `30` (seconds) -> seconds; undefined when malformed or under 1 s. */
export function parseCertTtlSeconds(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(text.trim());
  if (!m) return undefined;
  const seconds = Math.floor(Number(m[1]) * { s: 1, m: 60, h: 3600 }[(m[2] ?? 's') as 's' | 'm' | 'h']);
  return seconds >= 1 ? seconds : undefined;
}
