// Validation of one config object: envelope (apiVersion, kind, metadata), then the
// kind's structural schema, then its semantic rules. Every problem is collected;
// nothing throws on bad input.

import { at, Diagnostics } from './diagnostics.ts';
import { reportSchemaIssue } from './schema-issues.ts';
import type { Diagnostic } from './diagnostics.ts';
import type { KindDefinition, KindRegistry } from './kind-registry.ts';
import type { ConfigObject, SourceLocation } from './object.ts';
import { describeObject, groupOf } from './object.ts';
import { isDns1123Label, isDns1123Subdomain, checkLabels } from './validators.ts';

/** The outcome for one object. `ignored` is set for Kubernetes kinds that are passed over. */
export interface ValidationResult {
  readonly object: ConfigObject;
  readonly kind?: KindDefinition;
  readonly diagnostics: readonly Diagnostic[];
  readonly source?: SourceLocation;
  /** Why the object was passed over (a Kubernetes kind); not an error. */
  readonly ignored?: string;
  /** The line of a field path in the source text, for objects read from text. */
  readonly lineOf?: (path: string) => number | undefined;
}

export function hasErrors(result: ValidationResult): boolean {
  return result.diagnostics.some((d) => d.severity === 'error');
}

export interface ValidateOptions {
  /** Namespace for objects that name none, as `kubectl -n`. Default `default`. */
  readonly defaultNamespace?: string;
}

// Kubernetes' own API groups: objects of these are recognised and passed over.
const KUBERNETES_GROUPS = new Set(['', 'apps', 'batch', 'autoscaling', 'policy', 'rbac.authorization.k8s.io', 'networking.k8s.io', 'discovery.k8s.io', 'apiextensions.k8s.io', 'admissionregistration.k8s.io', 'cert-manager.io', 'gateway.networking.k8s.io']);

/**
 * Validates an object (already parsed from YAML/JSON) and fills in its namespace.
 * The object is copied; the input is left untouched.
 */
export function validateObject(input: unknown, registry: KindRegistry, options: ValidateOptions = {}, source?: SourceLocation): ValidationResult {
  const diag = new Diagnostics();
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    diag.error('', 'a config object must be a YAML/JSON mapping with apiVersion, kind, metadata and spec');
    return { object: { apiVersion: '', kind: '', metadata: { name: '' }, spec: undefined }, diagnostics: diag.items, source };
  }
  const raw = input as Record<string, unknown>;
  const object = structuredClone(raw) as unknown as ConfigObject;
  if (typeof object.apiVersion !== 'string' || object.apiVersion === '') diag.error('apiVersion', 'apiVersion is required');
  if (typeof object.kind !== 'string' || object.kind === '') diag.error('kind', 'kind is required');
  if (object.metadata === undefined || object.metadata === null || typeof object.metadata !== 'object') {
    diag.error('metadata', 'metadata is required (with at least metadata.name)');
    object.metadata = { name: '' };
  }
  if (diag.hasErrors) return { object, diagnostics: diag.items, source };

  const group = groupOf(object.apiVersion);
  const kind = registry.forObject(object.apiVersion, object.kind);
  if (!kind) {
    if (KUBERNETES_GROUPS.has(group)) {
      return { object, diagnostics: [], source, ignored: `${object.kind} (${object.apiVersion}) is a Kubernetes kind; passed over` };
    }
    const known = registry.get(group, object.kind);
    if (known) {
      diag.error('apiVersion', `${object.kind} does not support apiVersion "${object.apiVersion}"; supported: ${known.versions.map((v) => `${group}/${v}`).join(', ')}`);
    } else {
      const sameGroup = registry.all().filter((d) => d.group === group).map((d) => d.kind);
      const hint = sameGroup.length > 0 ? `; kinds of ${group}: ${sameGroup.sort().join(', ')}` : '';
      diag.error('kind', `unknown kind "${object.kind}" in apiVersion "${object.apiVersion}"${hint}`);
    }
    return { object, diagnostics: diag.items, source };
  }

  const passedOver = kind.passOver?.(raw);
  if (passedOver !== undefined) return { object, diagnostics: [], source, ignored: passedOver };

  checkMetadata(object, kind, diag, options);
  const root = kind.topLevelFields ? at('') : at('spec');
  if (kind.topLevelFields) moveTopLevelFieldsIntoSpec(object, kind.topLevelFields, diag);
  const parsed = kind.spec.safeParse(object.spec ?? {}, { reportInput: true });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) reportSchemaIssue(diag, root, issue);
  } else {
    kind.validate?.(parsed.data, { object, diag, path: root });
    if (kind.normalize && !diag.hasErrors) object.spec = kind.normalize(parsed.data);
  }
  return { object, kind, diagnostics: diag.items, source };
}

/** A Kubernetes core object (Secret) written as Kubernetes has it: its content fields become the spec the store keeps. */
function moveTopLevelFieldsIntoSpec(object: ConfigObject, fields: readonly string[], diag: Diagnostics): void {
  const record = object as unknown as Record<string, unknown>;
  if (record.spec !== undefined) diag.error('spec', `${object.kind} has no spec; its fields are ${fields.join(', ')} beside metadata`);
  const spec: Record<string, unknown> = {};
  for (const f of fields) {
    if (record[f] !== undefined) spec[f] = record[f];
    delete record[f];
  }
  object.spec = spec;
}

function checkMetadata(object: ConfigObject, kind: KindDefinition, diag: Diagnostics, options: ValidateOptions): void {
  const meta = object.metadata;
  const path = at('metadata');
  if (typeof meta.name !== 'string' || meta.name === '') diag.error(path.key('name'), 'metadata.name is required');
  else if (!isDns1123Subdomain(meta.name)) {
    diag.error(path.key('name'), `invalid name "${meta.name}": must be lower case alphanumerics, "-" or ".", starting and ending alphanumeric, at most 253 characters`);
  }
  if (kind.clusterScoped) {
    delete meta.namespace;
  } else {
    if (meta.namespace === undefined || meta.namespace === '') meta.namespace = options.defaultNamespace ?? 'default';
    if (typeof meta.namespace !== 'string' || !isDns1123Label(meta.namespace)) {
      diag.error(path.key('namespace'), `invalid namespace "${String(meta.namespace)}": must be a DNS-1123 label (lower case alphanumerics and "-", at most 63)`);
    }
  }
  if (meta.labels !== undefined) checkLabels(diag, path.key('labels'), meta.labels);
}

/** `error: VirtualService default/reviews (bookinfo.yaml:12): spec.http[0].timeout: ...` */
export function formatDiagnostic(result: ValidationResult, d: Diagnostic): string {
  const where = result.source?.file ? ` (${result.source.file}${d.line ?? result.source.line ? `:${d.line ?? result.source.line}` : ''})` : '';
  const field = d.path ? `${d.path}: ` : '';
  return `${d.severity}: ${describeObject(result.object)}${where}: ${field}${d.message}`;
}
