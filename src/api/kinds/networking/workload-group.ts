// WorkloadGroup: the template from which WorkloadEntries are made when
// workloads (VMs) register themselves, and the readiness probe they run.

import type { Diagnostics, FieldPath } from '../../diagnostics.ts';
import type { KindDefinition, ValidationContext } from '../../kind-registry.ts';
import { int32, strict, stringMap, uint32, z } from '../../schema.ts';
import { checkLabels, checkPort } from '../../validators.ts';
import { checkOneOf, checkPortName, checkProbeHeaderName } from './checks.ts';
import { workloadEntrySpec } from './workload-entry.ts';
import { NETWORKING_GROUP, NETWORKING_VERSIONS } from './versions.ts';

const readinessProbe = strict({
  initialDelaySeconds: int32.optional(),
  timeoutSeconds: int32.optional(),
  periodSeconds: int32.optional(),
  successThreshold: int32.optional(),
  failureThreshold: int32.optional(),
  httpGet: strict({
    path: z.string().optional(),
    port: uint32,
    host: z.string().optional(),
    scheme: z.string().optional(),
    httpHeaders: z.array(strict({ name: z.string(), value: z.string().optional() })).optional(),
  }).optional(),
  tcpSocket: strict({ host: z.string().optional(), port: uint32 }).optional(),
  exec: strict({ command: z.array(z.string()).optional() }).optional(),
  grpc: strict({ port: uint32, service: z.string().optional() }).optional(),
});
type ReadinessProbe = z.infer<typeof readinessProbe>;

export const workloadGroupSpec = strict({
  metadata: strict({ labels: stringMap.optional(), annotations: stringMap.optional() }).optional(),
  template: workloadEntrySpec,
  probe: readinessProbe.optional(),
});
export type WorkloadGroupSpec = z.infer<typeof workloadGroupSpec>;

/**
 * ValidateWorkloadGroup. Istio leaves the template unchecked (its address is
 * filled in at registration); the mesh also checks the template's port names,
 * ports and labels, which every generated WorkloadEntry inherits.
 */
export function validateWorkloadGroup(spec: WorkloadGroupSpec, ctx: ValidationContext): void {
  const { diag, path } = ctx;
  if (spec.metadata) checkLabels(diag, path.key('metadata').key('labels'), spec.metadata.labels);
  const t = path.key('template');
  if (spec.template.address) {
    diag.warn(t.key('address'), 'address should not be set in a WorkloadGroup template: each registering workload supplies its own');
  }
  for (const [name, port] of Object.entries(spec.template.ports ?? {})) {
    checkPortName(diag, t.key('ports').key(name), name);
    checkPort(diag, t.key('ports').key(name), port);
  }
  checkLabels(diag, t.key('labels'), spec.template.labels);
  checkProbe(diag, path.key('probe'), spec.probe);
}

const PROBE_COUNTS = ['initialDelaySeconds', 'timeoutSeconds', 'periodSeconds', 'successThreshold', 'failureThreshold'] as const;

/** validateReadinessProbe. */
function checkProbe(diag: Diagnostics, path: FieldPath, probe: ReadinessProbe | undefined): void {
  if (!probe) return;
  for (const field of PROBE_COUNTS) {
    const v = probe[field];
    if (v !== undefined && v < 0) diag.error(path.key(field), `${field} must be non-negative (got ${v})`);
  }
  const method = checkOneOf(diag, path, probe, ['httpGet', 'tcpSocket', 'exec', 'grpc'], { required: true });
  if (method === 'httpGet' && probe.httpGet) {
    const p = path.key('httpGet');
    checkPort(diag, p.key('port'), probe.httpGet.port);
    const scheme = probe.httpGet.scheme;
    if (scheme && scheme !== 'HTTP' && scheme !== 'HTTPS') diag.error(p.key('scheme'), `httpGet.scheme must be one of "HTTPS", "HTTP" (got "${scheme}")`);
    (probe.httpGet.httpHeaders ?? []).forEach((h, i) => checkProbeHeaderName(diag, p.key('httpHeaders').index(i).key('name'), h.name));
  }
  if (method === 'tcpSocket' && probe.tcpSocket) checkPort(diag, path.key('tcpSocket').key('port'), probe.tcpSocket.port);
  if (method === 'grpc' && probe.grpc) checkPort(diag, path.key('grpc').key('port'), probe.grpc.port);
  if (method === 'exec' && probe.exec && (probe.exec.command?.length ?? 0) === 0) diag.error(path.key('exec').key('command'), 'exec.command is required');
}

export const workloadGroupKind: KindDefinition<WorkloadGroupSpec> = {
  group: NETWORKING_GROUP,
  kind: 'WorkloadGroup',
  versions: NETWORKING_VERSIONS,
  plural: 'workloadgroups',
  shortNames: ['wg'],
  spec: workloadGroupSpec,
  validate: validateWorkloadGroup,
};
