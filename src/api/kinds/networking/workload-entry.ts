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
  /** DNS-resolved ServiceEntries and standalone entries may name hosts; STATIC ones need IPs or sockets. */
  readonly allowFqdn: boolean;
  /** Port names of the owning ServiceEntry; an endpoint port must be one of them. */
  readonly servicePorts?: ReadonlySet<string>;
}

/** validateWorkloadEntry: address forms, ports, labels. */
export function checkWorkloadEntry(diag: Diagnostics, path: FieldPath, we: WorkloadEntrySpec, opts: WorkloadEntryCheckOptions): void {
  const address = we.address ?? '';
  if (address === '') {
    if (!we.network) {
      diag.error(path.key('address'), 'address is required (an IP, a DNS name or unix:///path), unless network is set');
      return;
    }
    // Reached through its network's gateway; fine, but easy to get wrong.
    diag.warn(path.key('address'), `address is unset with network "${we.network}"`);
  }
  const unix = address.startsWith(UNIX_PREFIX);
  if (unix) {
    checkUnixAddress(diag, path.key('address'), address);
    if (Object.keys(we.ports ?? {}).length > 0) diag.error(path.key('ports'), `unix endpoint ${address} must not include ports`);
  } else if (address !== '' && !isIpAddress(address)) {
    if (!opts.allowFqdn) diag.error(path.key('address'), `endpoint address "${address}" is not a valid IP address (resolution STATIC needs IPs or unix:// sockets)`);
    else if (fqdnProblem(address)) diag.error(path.key('address'), `endpoint address "${address}" is not a valid FQDN or an IP address`);
  }
  for (const [name, port] of Object.entries(we.ports ?? {})) {
    const p = path.key('ports').key(name);
    if (opts.servicePorts && !opts.servicePorts.has(name)) {
      diag.error(p, `endpoint port ${port} ("${name}") is not defined by the service entry; its ports are: ${[...opts.servicePorts].join(', ') || 'none'}`);
    }
    checkPortName(diag, p, name);
    checkPort(diag, p, port);
  }
  checkLabels(diag, path.key('labels'), we.labels);
  if (unix && opts.servicePorts && opts.servicePorts.size !== 1) diag.error(path.key('address'), 'exactly 1 service port required for unix endpoints');
}

export function validateWorkloadEntry(spec: WorkloadEntrySpec, ctx: ValidationContext): void {
  checkWorkloadEntry(ctx.diag, ctx.path, spec, { allowFqdn: true });
}

export const workloadEntryKind: KindDefinition<WorkloadEntrySpec> = {
  group: NETWORKING_GROUP,
  kind: 'WorkloadEntry',
  versions: NETWORKING_VERSIONS,
  plural: 'workloadentries',
  // Istio's CRD says `we`; `wle` is accepted too.
  shortNames: ['we', 'wle'],
  spec: workloadEntrySpec,
  validate: validateWorkloadEntry,
};
