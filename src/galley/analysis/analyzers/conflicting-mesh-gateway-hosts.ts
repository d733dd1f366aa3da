// virtualservice.ConflictingMeshGatewayHostsAnalyzer: two VirtualServices bound
// to the mesh gateway for the same host (in the same export scope) leave it
// undefined which one a sidecar uses. Gateways are not checked: Istio merges
// the VirtualServices bound to one gateway.

import type { ConfigObject } from '../../../api/index.ts';
import type { Analyzer } from '../analyzer.ts';
import { NETWORKING, namespaceOf } from '../context.ts';
import { gatewaysOf } from '../destinations.ts';
import { specOf, strings } from '../fields.ts';
import { shortToFqdn } from '../hosts.ts';
import { MessageTypes } from '../messages.ts';

export const conflictingMeshGatewayHosts: Analyzer = {
  name: 'virtualservice.ConflictingMeshGatewayHostsAnalyzer',
  description: 'Checks if multiple virtual services associated with the mesh gateway have conflicting hosts',
  messages: [MessageTypes.ConflictingMeshGatewayVirtualServiceHosts],
  analyze(ctx, report) {
    // scope + "/" + fqdn -> the VirtualServices on the mesh gateway for it.
    const byHost = new Map<string, { fqdn: string; list: ConfigObject[] }>();
    for (const vs of ctx.list(NETWORKING, 'VirtualService')) {
      if (!gatewaysOf(vs).includes('mesh')) continue;
      const ns = namespaceOf(vs);
      const exportTo = strings(specOf(vs).exportTo);
      const scopes = exportTo.length === 0 || exportTo.includes('*') ? ['*'] : [...new Set(exportTo.map((e) => (e === '.' ? ns : e)))];
      for (const scope of scopes) {
        for (const host of new Set(strings(specOf(vs).hosts))) {
          const fqdn = shortToFqdn(ns, host);
          const key = `${scope}/${fqdn}`;
          let entry = byHost.get(key);
          if (!entry) byHost.set(key, (entry = { fqdn, list: [] }));
          if (!entry.list.includes(vs)) entry.list.push(vs);
        }
      }
    }
    for (const { fqdn, list } of byHost.values()) {
      if (list.length < 2) continue;
      const names = list.map((v) => `${namespaceOf(v)}/${v.metadata.name}`).sort().join(',');
      for (const vs of list) {
        report(
          MessageTypes.ConflictingMeshGatewayVirtualServiceHosts,
          vs,
          `The VirtualServices ${names} associated with mesh gateway define the same host ${fqdn} which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.`,
          'spec.hosts',
        );
      }
    }
  },
};
