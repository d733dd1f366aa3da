// ServiceEntry: adds a service (external API, VM service, another registry's
// host) to the mesh's registry: its hosts, virtual addresses, ports, how
// endpoints are found (resolution) and where it lives (location).

import type { KindDefinition, ValidationContext } from '../../kind-registry.ts';
import { strict, uint32, z } from '../../schema.ts';
import { checkPort } from '../../validators.ts';
import {
  checkExportTo,
  checkIpSubnet,
  checkPortName,
  checkProtocol,
  checkSelectorLabels,
  checkWildcardDomain,
  fqdnProblem,
  isHttpProtocol,
  isTcpProtocol,
  isTlsProtocol,
  partialWildcardProblem,
  UNIX_PREFIX,
} from './checks.ts';
import { checkWorkloadEntry, workloadEntrySpec } from './workload-entry.ts';
import { networkingWorkloadSelector } from './workload-selector.ts';
import { NETWORKING_GROUP, NETWORKING_VERSIONS } from './versions.ts';

export const serviceEntrySpec = strict({
  hosts: z.array(z.string()),
  addresses: z.array(z.string()).optional(),
  ports: z.array(strict({
    number: uint32,
    protocol: z.string().optional(),
    name: z.string().optional(),
    targetPort: uint32.optional(),
  })).optional(),
  location: z.enum(['MESH_EXTERNAL', 'MESH_INTERNAL']).optional(),
  resolution: z.enum(['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS']).optional(),
  endpoints: z.array(workloadEntrySpec).optional(),
  workloadSelector: networkingWorkloadSelector.optional(),
  exportTo: z.array(z.string()).optional(),
  subjectAltNames: z.array(z.string()).optional(),
});
export type ServiceEntrySpec = z.infer<typeof serviceEntrySpec>;

/** The label with which a ServiceEntry opts out of automatic VIP allocation. */
export const AUTOALLOCATE_LABEL = 'networking.istio.io/enable-autoallocate-ip';

/**
 * Whether the control plane gives this entry a virtual IP itself (Istio's DNS
 * auto-allocation v2, on in this mesh): not for resolution NONE, wildcard
 * hosts, entries with addresses, or entries labelled to opt out.
 */
export function autoAllocatesAddress(spec: ServiceEntrySpec, labels: Record<string, string> | undefined): boolean {
  if ((spec.resolution ?? 'NONE') === 'NONE' || (spec.addresses?.length ?? 0) > 0) return false;
  if (labels?.[AUTOALLOCATE_LABEL] === 'false') return false;
  return !spec.hosts.some((h) => h.includes('*'));
}

/** ValidateServiceEntry. */
export function validateServiceEntry(spec: ServiceEntrySpec, ctx: ValidationContext): void {
  const { diag, path } = ctx;
  const resolution = spec.resolution ?? 'NONE';
  const endpoints = spec.endpoints ?? [];
  const addresses = spec.addresses ?? [];
  const ports = spec.ports ?? [];

  if (spec.workloadSelector && !checkSelectorLabels(diag, path.key('workloadSelector').key('labels'), spec.workloadSelector.labels)) {
    diag.warn(path.key('workloadSelector'), 'service entry: workload selector specified without labels, will be applied to all services in namespace');
  }
  if (spec.workloadSelector && endpoints.length > 0) diag.error(path, 'only one of workloadSelector or endpoints is allowed in a service entry');

  if (spec.hosts.length === 0) diag.error(path.key('hosts'), 'service entry must have at least one host');
  spec.hosts.forEach((host, i) => {
    const p = path.key('hosts').index(i);
    if (host === '*') {
      diag.error(p, 'invalid host *: a service entry cannot claim every host; use a domain such as "*.example.com"');
      return;
    }
    checkWildcardDomain(diag, p, host);
    const partial = partialWildcardProblem(host);
    if (partial) diag.warn(p, partial);
  });

  let cidrFound = false;
  addresses.forEach((address, i) => {
    cidrFound ||= address.includes('/');
    checkIpSubnet(diag, path.key('addresses').index(i), address);
  });
  if (cidrFound && resolution !== 'NONE' && resolution !== 'STATIC') {
    diag.error(path.key('addresses'), `CIDR addresses are allowed only for NONE/STATIC resolution types (resolution is ${resolution})`);
  }

  const autoAllocation = autoAllocatesAddress(spec, ctx.object.metadata.labels);
  const portNames = new Set<string>();
  const portNumbers = new Set<number>();
  ports.forEach((port, i) => {
    const p = path.key('ports').index(i);
    const name = port.name ?? '';
    if (portNames.has(name)) diag.error(p.key('name'), `service entry port name "${name}" already defined`);
    portNames.add(name);
    if (portNumbers.has(port.number)) diag.error(p.key('number'), `service entry port ${port.number} already defined`);
    portNumbers.add(port.number);
    if (port.targetPort) checkPort(diag, p.key('targetPort'), port.targetPort);
    if (addresses.length === 0 && !autoAllocation && (!port.protocol || port.protocol === 'TCP')) {
      // Without a VIP, TCP traffic carries nothing (no Host, no SNI) to tell this service apart on the port.
      diag.warn(p, 'addresses are required for ports serving TCP (or unset) protocol when IP Autoallocation is not enabled');
    }
    checkPortName(diag, p.key('name'), name);
    checkProtocol(diag, p.key('protocol'), port.protocol);
    checkPort(diag, p.key('number'), port.number);
  });

  switch (resolution) {
    case 'NONE':
      if (endpoints.length > 0) diag.error(path.key('endpoints'), 'no endpoints should be provided for resolution type NONE (traffic goes to the address the client asked for)');
      if (spec.workloadSelector) diag.warn(path.key('workloadSelector'), 'workloadSelector should not be set when resolution mode is NONE');
      break;
    case 'STATIC':
      // Istio accepts this: the entry may decorate a service whose endpoints another registry supplies.
      if (endpoints.length === 0 && !spec.workloadSelector) {
        diag.warn(path, 'resolution STATIC without endpoints or a workloadSelector: traffic has no endpoints unless another registry supplies them');
      }
      endpoints.forEach((ep, i) => checkWorkloadEntry(diag, path.key('endpoints').index(i), ep, { allowFqdn: false, servicePorts: portNames }));
      break;
    case 'DNS':
    case 'DNS_ROUND_ROBIN':
    case 'DYNAMIC_DNS':
      // DYNAMIC_DNS resolves each requested name of a wildcard host, so wildcards are its point.
      if (endpoints.length === 0 && resolution !== 'DYNAMIC_DNS') {
        spec.hosts.forEach((host, i) => {
          if (host !== '*' && fqdnProblem(host)) {
            diag.error(path.key('hosts').index(i), `hosts must be FQDN if no endpoints are provided for resolution mode ${resolution} ("${host}" is not)`);
          }
        });
      }
      if (resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1) {
        diag.error(path.key('endpoints'), `there must only be 0 or 1 endpoint for resolution mode ${resolution}`);
      }
      endpoints.forEach((ep, i) => {
        const p = path.key('endpoints').index(i);
        if ((ep.address ?? '').startsWith(UNIX_PREFIX)) diag.error(p.key('address'), `endpoint address "${ep.address}" is not a valid FQDN or an IP address (unix sockets need resolution STATIC)`);
        else checkWorkloadEntry(diag, p, ep, { allowFqdn: true, servicePorts: portNames });
      });
      if (addresses.length > 0 && spec.hosts.length > 1 && ports.some((port) => isTcpProtocol(port.protocol))) {
        diag.warn(path.key('hosts'), 'service entry can not have more than one host specified simultaneously with address and tcp port');
      }
      break;
  }

  // Plain TCP carries no Host or SNI, so several hosts on one port cannot be told apart (NONE ignores hosts).
  if (resolution !== 'NONE' && spec.hosts.length > 1) {
    const i = ports.findIndex((port) => !isHttpProtocol(port.protocol) && !isTlsProtocol(port.protocol));
    if (i >= 0) diag.error(path.key('ports').index(i), 'multiple hosts provided with non-HTTP, non-TLS ports');
  }
  checkExportTo(diag, path.key('exportTo'), spec.exportTo, { namespace: ctx.object.metadata.namespace ?? '', serviceEntry: true });
}

export const serviceEntryKind: KindDefinition<ServiceEntrySpec> = {
  group: NETWORKING_GROUP,
  kind: 'ServiceEntry',
  versions: NETWORKING_VERSIONS,
  plural: 'serviceentries',
  shortNames: ['se'],
  spec: serviceEntrySpec,
  validate: validateServiceEntry,
};
