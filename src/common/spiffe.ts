// Workload identities as SPIFFE IDs, `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`:
// the name Citadel signs into certificates and the agent asks for. Shared by
// both sides because the format is part of the wire contract.

export interface WorkloadIdentity {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

const SEGMENT = /^[A-Za-z0-9._-]+$/;
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;

/** `spiffe://<td>/ns/<ns>/sa/<sa>`; throws on a part that would break the path. */
export function spiffeId(identity: WorkloadIdentity): string {
  const { trustDomain, namespace, serviceAccount } = identity;
  if (!TRUST_DOMAIN.test(trustDomain)) throw new Error(`invalid trust domain "${trustDomain}": lowercase letters, digits, '.', '-', '_'`);
  if (!SEGMENT.test(namespace)) throw new Error(`invalid namespace "${namespace}" for a SPIFFE identity`);
  if (!SEGMENT.test(serviceAccount)) throw new Error(`invalid service account "${serviceAccount}" for a SPIFFE identity`);
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

/** The parts of a workload SPIFFE ID, or undefined when it is not of that form. */
export function parseSpiffeId(uri: string): WorkloadIdentity | undefined {
  const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(uri);
  if (!m || !TRUST_DOMAIN.test(m[1]!) || !SEGMENT.test(m[2]!) || !SEGMENT.test(m[3]!)) return undefined;
  return { trustDomain: m[1]!, namespace: m[2]!, serviceAccount: m[3]! };
}
