// The indexed view of the config analyzers work on: objects by kind, the
// services (Kubernetes Services and ServiceEntries) with their hosts and
// ports, the workloads (Pods, pod templates of Deployments and the like,
// WorkloadEntries, ServiceEntry endpoints) with their labels, and the known
// namespaces. Built once per analysis; analyzers share it.

import type { ConfigObject } from '../../api/index.ts';
import { groupOf } from '../../api/index.ts';
import { int, list, record, specOf, str, strings } from './fields.ts';
import { CLUSTER_DOMAIN, shortToFqdn, wildcardCovers } from './hosts.ts';
import type { Labels } from './labels.ts';
import { asLabels, selectorMatches } from './labels.ts';

export const NETWORKING = 'networking.istio.io';
export const SECURITY = 'security.istio.io';

export interface ServicePort {
  readonly number: number;
  readonly name?: string;
  readonly protocol?: string;
  readonly targetPort?: number | string;
}

/** A service of the mesh: a Kubernetes Service or a ServiceEntry. */
export interface MeshService {
  readonly kind: 'Service' | 'ServiceEntry';
  readonly namespace: string;
  readonly name: string;
  /** Fully qualified hosts (a ServiceEntry's may be wildcards). */
  readonly hosts: readonly string[];
  readonly ports: readonly ServicePort[];
  /** The labels that pick its workloads; undefined when it picks none (a Service without selector). */
  readonly selector?: Labels;
  /** Namespaces that see it: `*` for all. */
  readonly exportTo: readonly string[];
  readonly object: ConfigObject;
}

/** Something that runs and carries labels: a pod, a pod template, a WorkloadEntry, an endpoint. */
export interface Workload {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly labels: Labels;
  /** Ports the workload listens on (container ports, WorkloadEntry ports). */
  readonly ports: readonly number[];
  readonly object: ConfigObject;
}

export interface AnalysisContextOptions {
  /** Istio's root namespace (meshConfig.rootNamespace). Default `istio-system`. */
  readonly rootNamespace?: string;
}

// Kinds whose pods come from spec.template (CronJob one level deeper).
const POD_TEMPLATE_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'ReplicationController', 'Job']);

/** A namespaced object's namespace; `default` when it names none (as kubectl applies it). */
export function namespaceOf(obj: ConfigObject): string {
  return obj.metadata?.namespace || 'default';
}

export class AnalysisContext {
  readonly rootNamespace: string;
  readonly objects: readonly ConfigObject[];
  readonly services: readonly MeshService[];
  readonly workloads: readonly Workload[];
  /** Namespaces of every object, Namespace objects and the root namespace. */
  readonly namespaces: ReadonlySet<string>;
  private readonly byKind = new Map<string, ConfigObject[]>();
  private readonly kubeServiceNames = new Set<string>();

  constructor(objects: readonly ConfigObject[], options: AnalysisContextOptions = {}) {
    this.rootNamespace = options.rootNamespace ?? 'istio-system';
    this.objects = objects.filter((o) => o && typeof o === 'object' && typeof o.kind === 'string' && o.metadata && typeof o.metadata.name === 'string');
    const namespaces = new Set<string>([this.rootNamespace]);
    for (const obj of this.objects) {
      const key = `${groupOf(obj.apiVersion ?? '')}/${obj.kind}`;
      let bucket = this.byKind.get(key);
      if (!bucket) this.byKind.set(key, (bucket = []));
      bucket.push(obj);
      if (obj.kind === 'Namespace' && groupOf(obj.apiVersion ?? '') === '') namespaces.add(obj.metadata.name);
      else namespaces.add(namespaceOf(obj));
    }
    this.namespaces = namespaces;
    this.services = [...this.list('', 'Service').map(kubeService), ...this.list(NETWORKING, 'ServiceEntry').map(serviceEntry)];
    for (const s of this.services) if (s.kind === 'Service') this.kubeServiceNames.add(`${s.namespace}/${s.name}`);
    this.workloads = this.collectWorkloads();
  }

  /** Objects of one group and kind (`''` for Kubernetes core), in input order. */
  list(group: string, kind: string): readonly ConfigObject[] {
    return this.byKind.get(`${group}/${kind}`) ?? [];
  }

  /** Whether an object of the kind exists. */
  exists(group: string, kind: string, namespace: string, name: string): boolean {
    return this.list(group, kind).some((o) => o.metadata.name === name && namespaceOf(o) === namespace);
  }

  /**
   * The canonical form of a host named from `namespace`: short names and
   * `name.ns` / `name.ns.svc` forms of Kubernetes Services become
   * `name.ns.svc.cluster.local`; anything else is returned as is.
   */
  canonicalHost(namespace: string, host: string): string {
    if (host.startsWith('*')) return host;
    const parts = host.split('.');
    if (parts.length === 1) return shortToFqdn(namespace, host);
    if (parts.length === 2 && this.kubeServiceNames.has(`${parts[1]}/${parts[0]}`)) return `${host}.svc.${CLUSTER_DOMAIN}`;
    if (parts.length === 3 && parts[2] === 'svc') return `${host}.${CLUSTER_DOMAIN}`;
    return host;
  }

  /** The service a host names, as seen from a namespace (exportTo respected), or undefined. */
  findService(fromNamespace: string, host: string): MeshService | undefined {
    const fqdn = this.canonicalHost(fromNamespace, host);
    const visible = this.services.filter((s) => visibleFrom(s, fromNamespace));
    const exact = visible.find((s) => s.hosts.includes(fqdn));
    if (exact) return exact;
    // Wildcards last, as Istio checks them: the more expensive match.
    return visible.find((s) => s.hosts.some((h) => wildcardCovers(h, fqdn)));
  }

  /** Workloads whose labels the selector matches; `namespace` undefined means any namespace. */
  selectWorkloads(selector: Labels, namespace: string | undefined): Workload[] {
    return this.workloads.filter((w) => (namespace === undefined || w.namespace === namespace) && selectorMatches(selector, w.labels));
  }

  /** Selector scope of a policy in `namespace`: the whole mesh for the root namespace. */
  scopeOf(namespace: string): string | undefined {
    return namespace === this.rootNamespace ? undefined : namespace;
  }

  private collectWorkloads(): Workload[] {
    const out: Workload[] = [];
    for (const obj of this.objects) {
      const group = groupOf(obj.apiVersion ?? '');
      const ns = namespaceOf(obj);
      if (group === '' && obj.kind === 'Pod') {
        out.push({ kind: 'Pod', namespace: ns, name: obj.metadata.name, labels: asLabels(obj.metadata.labels) ?? {}, ports: containerPorts(obj.spec), object: obj });
      } else if ((group === 'apps' || group === 'batch' || group === '') && (POD_TEMPLATE_KINDS.has(obj.kind) || obj.kind === 'CronJob')) {
        let template = record(specOf(obj).template);
        if (obj.kind === 'CronJob') template = record(record(record(specOf(obj).jobTemplate)?.spec)?.template);
        if (!template) continue;
        out.push({ kind: obj.kind, namespace: ns, name: obj.metadata.name, labels: asLabels(record(template.metadata)?.labels) ?? {}, ports: containerPorts(template.spec), object: obj });
      } else if (group === NETWORKING && obj.kind === 'WorkloadEntry') {
        const spec = specOf(obj);
        out.push({ kind: 'WorkloadEntry', namespace: ns, name: obj.metadata.name, labels: asLabels(spec.labels) ?? {}, ports: portValues(spec.ports), object: obj });
      } else if (group === NETWORKING && obj.kind === 'ServiceEntry') {
        list(specOf(obj).endpoints).forEach((ep, i) => {
          const e = record(ep);
          if (!e) return;
          out.push({ kind: 'ServiceEntry endpoint', namespace: ns, name: `${obj.metadata.name}[${i}]`, labels: asLabels(e.labels) ?? {}, ports: portValues(e.ports), object: obj });
        });
      }
    }
    return out;
  }
}

function visibleFrom(s: MeshService, namespace: string): boolean {
  return s.exportTo.some((e) => e === '*' || e === namespace || (e === '.' && s.namespace === namespace));
}

function containerPorts(podSpec: unknown): number[] {
  const ports: number[] = [];
  const spec = record(podSpec);
  for (const c of [...list(spec?.containers), ...list(spec?.initContainers)]) {
    for (const p of list(record(c)?.ports)) {
      const n = int(record(p)?.containerPort);
      if (n !== undefined) ports.push(n);
    }
  }
  return ports;
}

function portValues(ports: unknown): number[] {
  const r = record(ports);
  return r ? Object.values(r).map(int).filter((n): n is number => n !== undefined) : [];
}

function kubeService(obj: ConfigObject): MeshService {
  const spec = specOf(obj);
  const ns = namespaceOf(obj);
  const ports: ServicePort[] = [];
  for (const p of list(spec.ports)) {
    const r = record(p);
    const number = int(r?.port);
    if (!r || number === undefined) continue;
    const target = r.targetPort;
    ports.push({ number, name: str(r.name), protocol: str(r.protocol), targetPort: typeof target === 'number' || typeof target === 'string' ? target : undefined });
  }
  const exportAnnotation = obj.metadata.annotations?.['networking.istio.io/exportTo'];
  const exportTo = exportAnnotation ? exportAnnotation.split(',').map((s) => s.trim()).filter(Boolean) : ['*'];
  return { kind: 'Service', namespace: ns, name: obj.metadata.name, hosts: [shortToFqdn(ns, obj.metadata.name)], ports, selector: nonEmpty(asLabels(spec.selector)), exportTo, object: obj };
}

function serviceEntry(obj: ConfigObject): MeshService {
  const spec = specOf(obj);
  const ns = namespaceOf(obj);
  const ports: ServicePort[] = [];
  for (const p of list(spec.ports)) {
    const r = record(p);
    const number = int(r?.number);
    if (!r || number === undefined) continue;
    ports.push({ number, name: str(r.name), protocol: str(r.protocol), targetPort: int(r.targetPort) });
  }
  const exportTo = strings(spec.exportTo);
  return {
    kind: 'ServiceEntry',
    namespace: ns,
    name: obj.metadata.name,
    hosts: strings(spec.hosts).map((h) => shortToFqdn(ns, h)),
    ports,
    selector: nonEmpty(asLabels(record(spec.workloadSelector)?.labels)),
    exportTo: exportTo.length > 0 ? exportTo : ['*'],
    object: obj,
  };
}

// An empty selector selects nothing for a Service (Kubernetes manages no endpoints for it).
function nonEmpty(labels: Labels | undefined): Labels | undefined {
  return labels && Object.keys(labels).length > 0 ? labels : undefined;
}
