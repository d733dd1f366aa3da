// auth.AuthorizationPoliciesAnalyzer: an AuthorizationPolicy must apply to some
// workload, name only namespaces that exist, and (the mesh's own check) name
// only ports that a workload or service it applies to exposes.

import type { ConfigObject } from '../../../api/index.ts';
import type { Analyzer } from '../analyzer.ts';
import type { AnalysisContext, Workload } from '../context.ts';
import { SECURITY, namespaceOf } from '../context.ts';
import { int, list, record, specOf, strings } from '../fields.ts';
import { asLabels, selectorMatches, selectorString } from '../labels.ts';
import { MessageTypes, quote } from '../messages.ts';

export const authorizationPolicies: Analyzer = {
  name: 'auth.AuthorizationPoliciesAnalyzer',
  description: 'Checks the validity of authorization policies',
  messages: [MessageTypes.NoMatchingWorkloadsFound, MessageTypes.ReferencedResourceNotFound, MessageTypes.AuthorizationPolicyPortNotFound],
  analyze(ctx, report) {
    for (const ap of ctx.list(SECURITY, 'AuthorizationPolicy')) {
      const spec = specOf(ap);
      // Policies attached by targetRef apply to a Gateway or Service, not by labels.
      const targeted = spec.targetRef !== undefined || list(spec.targetRefs).length > 0;
      const workloads = targeted ? undefined : checkWorkloads(ctx, ap, report);
      checkNamespaces(ctx, ap, report);
      if (workloads && workloads.length > 0) checkPorts(ctx, ap, workloads, report);
    }
  },
};

/** Reports a policy that selects nothing; returns the workloads it applies to. */
function checkWorkloads(ctx: AnalysisContext, ap: ConfigObject, report: Parameters<Analyzer['analyze']>[1]): Workload[] {
  const ns = namespaceOf(ap);
  const selector = asLabels(record(specOf(ap).selector)?.matchLabels);
  const hasSelector = selector !== undefined && Object.keys(selector).length > 0;
  if (ns === ctx.rootNamespace) {
    // Mesh-wide: without a selector it applies everywhere, nothing to check.
    if (!hasSelector) return ctx.workloads.slice();
    const selected = ctx.selectWorkloads(selector, undefined);
    if (selected.length === 0) report(MessageTypes.NoMatchingWorkloadsFound, ap, `No matching workloads for this resource with the following labels: ${selectorString(selector)}`, 'spec.selector.matchLabels');
    return selected;
  }
  if (!hasSelector) {
    const inNamespace = ctx.workloads.filter((w) => w.namespace === ns);
    if (inNamespace.length === 0) report(MessageTypes.NoMatchingWorkloadsFound, ap, 'No matching workloads for this resource with the following labels: ');
    return inNamespace;
  }
  const selected = ctx.selectWorkloads(selector, ns);
  if (selected.length === 0) report(MessageTypes.NoMatchingWorkloadsFound, ap, `No matching workloads for this resource with the following labels: ${selectorString(selector)}`, 'spec.selector.matchLabels');
  return selected;
}

function checkNamespaces(ctx: AnalysisContext, ap: ConfigObject, report: Parameters<Analyzer['analyze']>[1]): void {
  list(specOf(ap).rules).forEach((rule, i) => {
    list(record(rule)?.from).forEach((from, j) => {
      const source = record(record(from)?.source);
      for (const field of ['namespaces', 'notNamespaces'] as const) {
        list(source?.[field]).forEach((value, k) => {
          if (typeof value !== 'string') return;
          if (![...ctx.namespaces].some((ns) => namespaceMatches(ns, value))) {
            report(MessageTypes.ReferencedResourceNotFound, ap, `Referenced namespace not found: ${quote(value)}`, `spec.rules[${i}].from[${j}].source.${field}[${k}]`);
          }
        });
      }
    });
  });
}

/** Istio's namespace patterns: `*`, `prefix*`, `*suffix` or an exact name. */
export function namespaceMatches(ns: string, pattern: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*')) return ns.endsWith(pattern.slice(1));
  if (pattern.endsWith('*')) return ns.startsWith(pattern.slice(0, -1));
  return ns.toLowerCase() === pattern.toLowerCase();
}

function checkPorts(ctx: AnalysisContext, ap: ConfigObject, workloads: Workload[], report: Parameters<Analyzer['analyze']>[1]): void {
  const exposed = new Set<number>();
  for (const w of workloads) for (const p of w.ports) exposed.add(p);
  // Ports of the services in front of those workloads count too: a policy
  // written against a Service's port or targetPort is a reasonable reading.
  for (const s of ctx.services) {
    if (s.selector === undefined) continue;
    const selector = s.selector;
    if (!workloads.some((w) => w.namespace === s.namespace && selectorMatches(selector, w.labels))) continue;
    for (const p of s.ports) {
      exposed.add(p.number);
      const target = int(p.targetPort);
      if (target !== undefined) exposed.add(target);
    }
  }
  // Nothing known about ports: no basis to judge.
  if (exposed.size === 0) return;
  list(specOf(ap).rules).forEach((rule, i) => {
    list(record(rule)?.to).forEach((to, j) => {
      const operation = record(record(to)?.operation);
      for (const field of ['ports', 'notPorts'] as const) {
        strings(operation?.[field]).forEach((value, k) => {
          const port = int(value);
          if (port === undefined || exposed.has(port)) return;
          report(MessageTypes.AuthorizationPolicyPortNotFound, ap, `Port ${value} is not exposed by any workload or service this policy applies to.`, `spec.rules[${i}].to[${j}].operation.${field}[${k}]`);
        });
      }
    });
  });
}
