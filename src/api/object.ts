// The shape every config object has: Kubernetes-style apiVersion/kind/metadata/spec.

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Set by the store; an apply that carries one must match the stored one (optimistic concurrency). */
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  uid?: string;
}

export interface ConfigObject<Spec = unknown> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: Spec;
  status?: unknown;
}

/** Where an object came from, for error messages. */
export interface SourceLocation {
  readonly file?: string;
  /** 1-based line of the object's first line in the file. */
  readonly line?: number;
}

/** The identity of an object inside the mesh: its group/kind, namespace and name. */
export interface ObjectKey {
  readonly group: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

export function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

export function versionOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
}

export function keyOf(obj: ConfigObject): ObjectKey {
  return {
    group: groupOf(obj.apiVersion),
    kind: obj.kind,
    namespace: obj.metadata.namespace ?? '',
    name: obj.metadata.name,
  };
}

/** `VirtualService default/reviews`: how messages name an object. */
export function describeObject(obj: Pick<ConfigObject, 'kind' | 'metadata'>): string {
  const kind = obj.kind || '<no kind>';
  const ns = obj.metadata?.namespace;
  const name = obj.metadata?.name || '<unnamed>';
  return ns ? `${kind} ${ns}/${name}` : `${kind} ${name}`;
}

export function keyString(key: ObjectKey): string {
  return `${key.group}/${key.kind}/${key.namespace}/${key.name}`;
}
