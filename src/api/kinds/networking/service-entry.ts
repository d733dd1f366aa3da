// ServiceEntry: adds a service (external API, VM service, another registry's
// host) to the mesh's registry: its hosts, virtual addresses, ports, how
// endpoints are found (resolution) and where it lives (location).

import type { KindDefinition, ValidationContext } from '../../kind-registry.ts';
import { strict, uint32, z } from '../../schema.ts';
import { checkCidr, checkPort, hostProblem } from '../../validators.ts';
import { checkExportTo, checkPortName, checkProtocol, fqdnProblem, isHttpProtocol, isTlsProtocol, UNIX_PREFIX } from './checks.ts';
import { checkWorkloadEntry, workloadEntrySpec } from './workload-entry.ts';
import { checkSelectorLabels, networkingWorkloadSelector } from './workload-selector.ts';
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

/** ValidateServiceEntry. */
export function validateServiceEntry(spec: ServiceEntrySpec, ctx: ValidationContext): void {
  const { diag, path } = ctx;
  const resolution = spec.resolution ?? 'NONE';
  const endpoints = spec.endpoints ?? [];
  if (spec.workloadSelector && spec.endpoints !== undefined) {
    diag.error(path, 'only one of workloadSelector or endpoints is allowed in a service entry');
  }
  if (spec.workloadSelector) checkSelectorLabels(diag, path.key('workloadSelector').key('labels'), spec.workloadSelector.labels);
  if (spec.hosts.length === 0) diag.error(path.key('hosts'), 'service entry must have at least one host');
  spec.hosts.forEach((host, i) => {
    const p = path.key('hosts').index(i);
    if (host === '*') diag.error(p, 'invalid host "*": a service entry cannot claim every host; use a domain such as "*.example.com"');
    else {
      const problem = hostProblem(host);
      if (problem) diag.error(p, problem);
    }
  });

  let cidrFound = false;
  (spec.addresses ?? []).forEach((address, i) => {
    cidrFound ||= address.includes('/');
    checkCidr(diag, path.key('addresses').index(i), address);
  });
  if (cidrFound && resolution !== 'NONE' && resolution !== 'STATIC') {
    diag.error(path.key('addresses'), `CIDR addresses are allowed only when resolution is NONE or STATIC (resolution is ${resolution})`);
  }

  const portNames = new Set<string>();
  const portNumbers = new Set<number>();
  (spec.ports ?? []).forEach((port, i) => {
    const p = path.key('ports').index(i);
    if (port.name !== undefined && port.name !== '') {
      if (portNames.has(port.name)) diag.error(p.key('name'), `service entry port name "${port.name}" already defined`);
      portNames.add(port.name);
      checkPortName(diag, p.key('name'), port.name);
    }
    if (portNumbers.has(port.number)) diag.error(p.key('number'), `service entry port ${port.number} already defined`);
    portNumbers.add(port.number);
    checkPort(diag, p.key('number'), port.number);
    if (port.targetPort) checkPort(diag, p.key('targetPort'), port.targetPort);
    if (port.protocol) checkProtocol(diag, p.key('protocol'), port.protocol);
  });

  switch (resolution) {
    case 'NONE':
      if (endpoints.length > 0) diag.error(path.key('endpoints'), 'no endpoints should be provided for resolution type NONE (the original destination address is used)');
      // Without a virtual address, only the Host header or SNI tells such services apart on a shared port.
      if ((spec.addresses ?? []).length === 0) {
        (spec.ports ?? []).forEach((port, i) => {
          if (!isHttpProtocol(port.protocol) && !isTlsProtocol(port.protocol)) {
            diag.warn(path.key('ports').index(i), `port ${port.number} (${port.protocol || 'no protocol'}) of a service entry with resolution NONE and no addresses matches all traffic to that port; set addresses or use an HTTP/TLS protocol`);
          }
        });
      }
      break;
    case 'STATIC': {
      if (endpoints.length === 0 && !spec.workloadSelector) {
        // Istio accepts this (the entry may decorate a service another registry supplies endpoints for).
        diag.warn(path, 'resolution STATIC without endpoints or a workloadSelector: traffic has no endpoints unless another registry supplies them');
      }
      let unix = false;
      endpoints.forEach((ep, i) => {
        const p = path.key('endpoints').index(i);
        unix ||= (ep.address ?? '').startsWith(UNIX_PREFIX);
        checkWorkloadEntry(diag, p, ep, { allowFqdn: false, servicePorts: portNames });
      });
      if (unix && (spec.ports ?? []).length !== 1) diag.error(path.key('ports'), 'exactly 1 service port required for unix endpoints');
      break;
    }
    case 'DNS':
    case 'DNS_ROUND_ROBIN':
    case 'DYNAMIC_DNS':
      if (endpoints.length === 0) {
        spec.hosts.forEach((host, i) => {
          if (host !== '*' && !hostProblem(host) && fqdnProblem(host)) {
            diag.error(path.key('hosts').index(i), `host "${host}" must be a fully qualified name without wildcards: resolution ${resolution} with no endpoints resolves the hosts themselves`);
          }
        });
      }
      if (resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1) {
        diag.error(path.key('endpoints'), `there must only be 0 or 1 endpoint for resolution mode ${resolution}`);
      }
      endpoints.forEach((ep, i) => {
        const p = path.key('endpoints').index(i);
        if ((ep.address ?? '').startsWith(UNIX_PREFIX)) diag.error(p.key('address'), `unix endpoints are not allowed with resolution ${resolution}; use STATIC`);
        else checkWorkloadEntry(diag, p, ep, { allowFqdn: true, servicePorts: portNames });
      });
      break;
  }
  checkExportTo(diag, path.key('exportTo'), spec.exportTo, { serviceEntry: true });
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
