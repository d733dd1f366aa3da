// WorkloadEntry: one non-Kubernetes workload (a VM, a process on a host) with
// its address, ports, labels and identity. The same message is the endpoint of
// a ServiceEntry and the template of a WorkloadGroup, so its checks are shared.

import type { Diagnostics, FieldPath } from '../../diagnostics.ts';
import type { KindDefinition, ValidationContext } from '../../kind-registry.ts';
import { strict, stringMap, uint32, z } from '../../schema.ts';
import { checkLabels, checkPort, isIpAddress } from '../../validators.ts';
import { checkPortName, checkUnixAddress, fqdnProblem, UNIX_PREFIX } from './checks.ts';
import { NETWORKING_GROUP, NETWORKING_VERSIONS } from './versions.ts';

export const workloadEntrySpec = strict({
  address: z.string().optional(),
  ports: z.record(z.string(), uint32).optional(),
  labels: stringMap.optional(),
  network: z.string().optional(),
  locality: z.string().optional(),
  weight: uint32.optional(),
  serviceAccount: z.string().optional(),
});
export type WorkloadEntrySpec = z.infer<typeof workloadEntrySpec>;

export interface WorkloadEntryCheckOptions {
  /** DNS-resolved ServiceEntries and standalone entries may name hosts; STATIC ones need IPs. */
  readonly allowFqdn: boolean;
  /** Port names of the owning ServiceEntry; an endpoint port must be one of them. */
  readonly servicePorts?: ReadonlySet<string>;
  /** Address optional (WorkloadGroup templates: the address comes from the registering workload). */
  readonly addressOptional?: boolean;
}

/** validateWorkloadEntry: address forms, ports, labels. */
export function checkWorkloadEntry(diag: Diagnostics, path: FieldPath, we: WorkloadEntrySpec, opts: WorkloadEntryCheckOptions): void {
  const address = we.address ?? '';
  if (address === '') {
    if (!we.network && !opts.addressOptional) diag.error(path.key('address'), 'address is required unless network is set (a workload reached through its network\'s gateway)');
  } else if (address.startsWith(UNIX_PREFIX)) {
    checkUnixAddress(diag, path.key('address'), address);
    if (Object.keys(we.ports ?? {}).length > 0) diag.error(path.key('ports'), `unix endpoint ${address} must not include ports`);
  } else if (!isIpAddress(address)) {
    if (!opts.allowFqdn) diag.error(path.key('address'), `endpoint address "${address}" is not a valid IP address`);
    else if (fqdnProblem(address)) diag.error(path.key('address'), `endpoint address "${address}" is not a valid FQDN or an IP address`);
  }
  for (const [name, port] of Object.entries(we.ports ?? {})) {
    const p = path.key('ports').key(name);
    if (opts.servicePorts && !opts.servicePorts.has(name)) {
      diag.error(p, `endpoint port "${name}" is not defined by the service entry; defined: ${[...opts.servicePorts].join(', ') || 'none'}`);
    }
    checkPortName(diag, p, name);
    checkPort(diag, p, port);
  }
  checkLabels(diag, path.key('labels'), we.labels);
}

export function validateWorkloadEntry(spec: WorkloadEntrySpec, ctx: ValidationContext): void {
  checkWorkloadEntry(ctx.diag, ctx.path, spec, { allowFqdn: true });
}

export const workloadEntryKind: KindDefinition<WorkloadEntrySpec> = {
  group: NETWORKING_GROUP,
  kind: 'WorkloadEntry',
  versions: NETWORKING_VERSIONS,
  plural: 'workloadentries',
  // Istio's CRD says `we`; `wle` is accepted too, as the mesh's docs use it.
  shortNames: ['we', 'wle'],
  spec: workloadEntrySpec,
  validate: validateWorkloadEntry,
};
