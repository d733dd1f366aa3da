// Live workload registration: what a sidecar agent sends to add its workload
// to the registry, how a WorkloadGroup template fills it in (Istio's
// auto-registration), and who may register (the authorizer hook that Citadel's
// identities plug into).

import type { WorkloadEntrySpec, WorkloadGroupSpec } from '../../api/index.ts';
import { parseLocality } from '../model/index.ts';
import type { WorkloadInstance } from '../model/index.ts';
import { RegistryError, RegistryErrorCode } from './errors.ts';

/** What a workload says about itself when it registers. */
export interface WorkloadRegistration {
  /** Unique within the namespace (and distinct from every WorkloadEntry's name there). */
  readonly name: string;
  readonly namespace: string;
  /** IP address (or hostname) other proxies dial. */
  readonly address: string;
  /** Ports by service port name, as WorkloadEntry.ports. */
  readonly ports?: Readonly<Record<string, number>>;
  readonly labels?: Readonly<Record<string, string>>;
  /** Service account name (not the SPIFFE URI); `default` when neither this nor the group names one. */
  readonly serviceAccount?: string;
  /** `region/zone/subzone` */
  readonly locality?: string;
  readonly network?: string;
  readonly weight?: number;
  /** Name of a WorkloadGroup in the same namespace whose template fills in what the registration leaves out. */
  readonly group?: string;
}

/**
 * Decides whether a caller may register (or heartbeat, or unregister) a
 * workload. Contract: returns normally to allow, throws a RegistryError with
 * code MESH_ERR_REGISTRY_UNAUTHORIZED to refuse. Sees the registration after
 * the group template was merged in, so the service account is the effective one.
 * `callerIdentity` is the caller's authenticated identity (a SPIFFE URI from
 * its mTLS certificate), undefined when the caller is unauthenticated.
 */
export interface RegistrationAuthorizer {
  authorize(registration: WorkloadRegistration, callerIdentity: string | undefined): void;
}

/** Lets everyone register anything: the default until Citadel issues identities. */
export const allowAllRegistrations: RegistrationAuthorizer = { authorize() {} };

/**
 * Only the workload's own identity, `spiffe://<td>/ns/<namespace>/sa/<serviceAccount>`,
 * may register it; the trust domain may be the mesh's or one of its aliases.
 */
export class SpiffeRegistrationAuthorizer implements RegistrationAuthorizer {
  private readonly trustDomains: ReadonlySet<string>;

  constructor(trustDomain: string, aliases: readonly string[] = []) {
    this.trustDomains = new Set([trustDomain, ...aliases]);
  }

  authorize(registration: WorkloadRegistration, callerIdentity: string | undefined): void {
    const who = `${registration.namespace}/${registration.name}`;
    if (callerIdentity === undefined) throw unauthorized(`registering workload ${who} needs an authenticated caller (an mTLS client certificate)`);
    const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(callerIdentity);
    if (!m) throw unauthorized(`caller identity "${callerIdentity}" is not spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`);
    const [, td, ns, sa] = m as unknown as [string, string, string, string];
    if (!this.trustDomains.has(td)) throw unauthorized(`caller identity "${callerIdentity}" is from trust domain "${td}", not ${[...this.trustDomains].join(', ')}`);
    const expected = registration.serviceAccount || 'default';
    if (ns !== registration.namespace || sa !== expected) {
      throw unauthorized(`caller "${callerIdentity}" may not register workload ${who}, which runs as service account ${registration.namespace}/${expected}`);
    }
  }
}

function unauthorized(message: string): RegistryError {
  return new RegistryError(RegistryErrorCode.UNAUTHORIZED, message);
}

function invalid(reg: WorkloadRegistration, field: string, problem: string): RegistryError {
  return new RegistryError(RegistryErrorCode.INVALID_REGISTRATION, `registration of workload ${reg.namespace || '<no namespace>'}/${reg.name || '<no name>'}: ${field}: ${problem}`);
}

/** Throws MESH_ERR_REGISTRY_INVALID_REGISTRATION naming the first bad field. */
export function checkRegistration(reg: WorkloadRegistration): void {
  if (!reg.name) throw invalid(reg, 'name', 'is required');
  if (!reg.namespace) throw invalid(reg, 'namespace', 'is required');
  if (!reg.address) throw invalid(reg, 'address', 'is required');
  for (const [name, port] of Object.entries(reg.ports ?? {})) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalid(reg, `ports.${name}`, `${port} is not a port number (1-65535)`);
  }
  if (reg.weight !== undefined && (!Number.isInteger(reg.weight) || reg.weight < 0)) throw invalid(reg, 'weight', `${reg.weight} is not a non-negative integer`);
}

/**
 * The registration with its WorkloadGroup's template filled in. Precedence as
 * Istio's auto-registration: the registration > group metadata labels > the
 * template; ports merge by name the same way.
 */
export function mergeWithGroup(reg: WorkloadRegistration, group: WorkloadGroupSpec | undefined): WorkloadRegistration {
  const template: WorkloadEntrySpec = group?.template ?? {};
  const merged: WorkloadRegistration = {
    name: reg.name,
    namespace: reg.namespace,
    address: reg.address,
    ports: { ...template.ports, ...reg.ports },
    labels: { ...template.labels, ...group?.metadata?.labels, ...reg.labels },
    serviceAccount: reg.serviceAccount || template.serviceAccount || 'default',
    network: reg.network ?? template.network ?? '',
  };
  const locality = reg.locality ?? template.locality;
  const weight = reg.weight ?? template.weight;
  return {
    ...merged,
    ...(locality !== undefined ? { locality } : {}),
    ...(weight !== undefined ? { weight } : {}),
    ...(reg.group !== undefined ? { group: reg.group } : {}),
  };
}

/** A merged registration as the model's workload. */
export function registrationWorkload(reg: WorkloadRegistration, registry: string, health: WorkloadInstance['health']): WorkloadInstance {
  return {
    name: reg.name,
    namespace: reg.namespace,
    address: reg.address,
    ports: { ...reg.ports },
    labels: { ...reg.labels },
    locality: parseLocality(reg.locality),
    serviceAccount: reg.serviceAccount ?? 'default',
    network: reg.network ?? '',
    health,
    weight: reg.weight || 1,
    registry,
  };
}
