// Runs the analyzers over a set of objects and returns their messages in a
// stable order (by object, then field path), without duplicates.

import type { ConfigObject } from '../../api/index.ts';
import { describeObject } from '../../api/index.ts';
import type { AnalysisMessage, Analyzer, Report } from './analyzer.ts';
import { allAnalyzers } from './analyzers/index.ts';
import { AnalysisContext, namespaceOf } from './context.ts';

export interface AnalyzeOptions {
  /** Istio's root namespace (meshConfig.rootNamespace). Default `istio-system`. */
  readonly rootNamespace?: string;
  /** Analyzers to run instead of all of them. */
  readonly analyzers?: readonly Analyzer[];
  /** Where an object (or a field of it) is in its file, so messages can point there. */
  readonly locate?: (object: ConfigObject, path: string | undefined) => { file?: string; line?: number } | undefined;
}

/**
 * Analyzes objects the way `istioctl analyze` does: references between them,
 * selectors against workloads, conflicts. Objects are plain ConfigObjects
 * (Istio kinds and the Kubernetes kinds Service, Pod, Deployment, Namespace,
 * ...); they need not be validated. A missing metadata.namespace reads as
 * `default`.
 */
export function analyze(objects: readonly ConfigObject[], options: AnalyzeOptions = {}): AnalysisMessage[] {
  const ctx = new AnalysisContext(objects, { rootNamespace: options.rootNamespace });
  const out: AnalysisMessage[] = [];
  const seen = new Set<string>();
  const report: Report = (type, object, message, path) => {
    const name = describeObject({ kind: object.kind, metadata: { ...object.metadata, namespace: object.kind === 'Namespace' ? undefined : namespaceOf(object) } });
    const key = `${type.code}\n${name}\n${path ?? ''}\n${message}`;
    if (seen.has(key)) return;
    seen.add(key);
    const source = options.locate?.(object, path);
    out.push({ code: type.code, name: type.name, level: type.level, message, object: name, ref: object, ...(path !== undefined ? { path } : {}), ...(source ? { source } : {}) });
  };
  for (const analyzer of options.analyzers ?? allAnalyzers()) analyzer.analyze(ctx, report);
  return out.sort(compareMessages);
}

function compareMessages(a: AnalysisMessage, b: AnalysisMessage): number {
  return cmp(a.object, b.object) || comparePaths(a.path ?? '', b.path ?? '') || cmp(a.code, b.code) || cmp(a.message, b.message);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// `spec.http[2]` before `spec.http[10]`: indexes compare as numbers.
function comparePaths(a: string, b: string): number {
  const pa = a.split(/(\d+)/);
  const pb = b.split(/(\d+)/);
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i]!;
    const y = pb[i]!;
    if (x === y) continue;
    return i % 2 === 1 ? Number(x) - Number(y) : cmp(x, y);
  }
  return pa.length - pb.length;
}
