// destinationrule.SubsetSelectPodAnalyzer: a DestinationRule's host must be a
// service of the mesh, and each subset must select at least one workload of
// that service (its selector plus the subset's labels).

import type { Analyzer } from '../analyzer.ts';
import type { AnalysisContext, MeshService, Workload } from '../context.ts';
import { NETWORKING, namespaceOf } from '../context.ts';
import { list, record, specOf, str } from '../fields.ts';
import { wildcardCovers } from '../hosts.ts';
import type { Labels } from '../labels.ts';
import { asLabels, selectorMatches } from '../labels.ts';
import { MessageTypes } from '../messages.ts';

export const destinationRuleSubsets: Analyzer = {
  name: 'destinationrule.SubsetSelectPodAnalyzer',
  description: 'Checks that the host of each destination rule is a known service and that its subsets select workloads',
  messages: [MessageTypes.UnknownDestinationRuleHost, MessageTypes.DestinationRuleSubsetNotSelectPods],
  analyze(ctx, report) {
    for (const dr of ctx.list(NETWORKING, 'DestinationRule')) {
      const ns = namespaceOf(dr);
      const host = str(specOf(dr).host);
      if (!host) continue;
      const service = ctx.findService(ns, host);
      if (!service) {
        // A wildcard rule (`*.example.com`) is fine as long as it covers some service.
        if (host.startsWith('*') && ctx.services.some((s) => s.hosts.some((h) => wildcardCovers(host, h)))) continue;
        report(MessageTypes.UnknownDestinationRuleHost, dr, `The host ${host} defined in the DestinationRule does not match any services in the mesh.`, 'spec.host');
        continue;
      }
      const candidates = workloadsOf(ctx, service);
      if (candidates === undefined) continue;
      list(specOf(dr).subsets).forEach((s, i) => {
        const subset = record(s);
        const name = str(subset?.name);
        if (!subset || !name) return;
        const labels = asLabels(subset.labels) ?? {};
        if (!candidates.some((w) => selectorMatches(labels, w.labels))) {
          report(MessageTypes.DestinationRuleSubsetNotSelectPods, dr, `The Subset ${name} defined in the DestinationRule does not select any pods. Which may lead to 503 UH (NoHealthyUpstream).`, `spec.subsets[${i}]`);
        }
      });
    }
  },
};

/**
 * The workloads behind a service, or undefined when they cannot be known
 * (a Service without selector, a ServiceEntry resolved by DNS), in which
 * case subsets are not checked.
 */
function workloadsOf(ctx: AnalysisContext, service: MeshService): Workload[] | undefined {
  if (service.kind === 'ServiceEntry') {
    const endpoints = ctx.workloads.filter((w) => w.kind === 'ServiceEntry endpoint' && w.object === service.object);
    if (endpoints.length > 0) return endpoints;
    if (service.selector === undefined) return undefined;
    return select(ctx, service.selector, service.namespace);
  }
  if (service.selector === undefined) return undefined;
  return select(ctx, service.selector, service.namespace);
}

function select(ctx: AnalysisContext, selector: Labels, namespace: string): Workload[] {
  return ctx.selectWorkloads(selector, namespace).filter((w) => w.kind !== 'ServiceEntry endpoint');
}
