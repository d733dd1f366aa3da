// Sidecar: narrows what a workload's proxy listens on (ingress) and which
// services it can reach (egress), replacing the mesh-wide defaults.

import type { Diagnostics, FieldPath } from '../../diagnostics.ts';
import type { KindDefinition, ValidationContext } from '../../kind-registry.ts';
import { strict, uint32, z } from '../../schema.ts';
import { checkPort } from '../../validators.ts';
import { checkIpAddress, checkNamespaceHost, checkPortName, checkProtocol, checkUnixAddress, UNIX_PREFIX } from './checks.ts';
import { checkDestination, destination } from './destination.ts';
import { checkConnectionPool, connectionPoolSettings } from './traffic-policy.ts';
import { checkServerTls, serverTlsSettings } from './tls-settings.ts';
import { checkSelectorLabels, networkingWorkloadSelector } from './workload-selector.ts';
import { NETWORKING_GROUP, NETWORKING_VERSIONS } from './versions.ts';

const sidecarPort = strict({
  number: uint32,
  protocol: z.string().optional(),
  name: z.string().optional(),
  targetPort: uint32.optional(),
});
type SidecarPort = z.infer<typeof sidecarPort>;

const captureMode = z.enum(['DEFAULT', 'IPTABLES', 'NONE']);

export const sidecarSpec = strict({
  workloadSelector: networkingWorkloadSelector.optional(),
  ingress: z.array(strict({
    port: sidecarPort.optional(),
    bind: z.string().optional(),
    captureMode: captureMode.optional(),
    defaultEndpoint: z.string().optional(),
    tls: serverTlsSettings.optional(),
    connectionPool: connectionPoolSettings.optional(),
  })).optional(),
  egress: z.array(strict({
    port: sidecarPort.optional(),
    bind: z.string().optional(),
    captureMode: captureMode.optional(),
    hosts: z.array(z.string()).optional(),
  })).optional(),
  inboundConnectionPool: connectionPoolSettings.optional(),
  outboundTrafficPolicy: strict({
    mode: z.enum(['REGISTRY_ONLY', 'ALLOW_ANY']).optional(),
    egressProxy: destination.optional(),
  }).optional(),
});
export type SidecarSpec = z.infer<typeof sidecarSpec>;

const LOCAL_HOSTS = new Set(['127.0.0.1', '0.0.0.0', '::1', '::']);

/** ValidateSidecar. */
export function validateSidecar(spec: SidecarSpec, ctx: ValidationContext): void {
  const { diag, path } = ctx;
  if (spec.workloadSelector) {
    const labels = spec.workloadSelector.labels ?? {};
    if (Object.keys(labels).length === 0) diag.warn(path.key('workloadSelector'), 'workloadSelector has no labels: the sidecar applies to every workload of the namespace');
    checkSelectorLabels(diag, path.key('workloadSelector').key('labels'), labels);
  }
  if ((spec.egress?.length ?? 0) === 0 && (spec.ingress?.length ?? 0) === 0 && !spec.outboundTrafficPolicy && !spec.inboundConnectionPool) {
    diag.error(path, 'sidecar: empty configuration provided; set ingress, egress, outboundTrafficPolicy or inboundConnectionPool');
  }
  checkIngress(diag, path.key('ingress'), spec.ingress ?? []);
  checkEgress(diag, path.key('egress'), spec.egress ?? []);
  const otp = spec.outboundTrafficPolicy;
  if (otp?.egressProxy) {
    const p = path.key('outboundTrafficPolicy').key('egressProxy');
    if ((otp.mode ?? 'REGISTRY_ONLY') !== 'ALLOW_ANY') diag.error(p, 'sidecar: egressProxy must be set only with outboundTrafficPolicy mode ALLOW_ANY');
    checkDestination(diag, p, otp.egressProxy);
    if (!otp.egressProxy.port) diag.error(p.key('port'), 'sidecar: egressProxy port must be set');
  }
  checkConnectionPool(diag, path.key('inboundConnectionPool'), spec.inboundConnectionPool);
}

function checkIngress(diag: Diagnostics, path: FieldPath, ingress: NonNullable<SidecarSpec['ingress']>): void {
  const ports = new Set<number>();
  ingress.forEach((l, i) => {
    const p = path.index(i);
    if (!l.port) {
      diag.error(p.key('port'), 'sidecar: port is required for ingress listeners');
    } else {
      checkListenerPort(diag, p.key('port'), l.port);
      checkPort(diag, p.key('port').key('number'), l.port.number);
      if (ports.has(l.port.number)) diag.error(p.key('port').key('number'), `sidecar: ports on IP bound listeners must be unique (port ${l.port.number} repeats)`);
      ports.add(l.port.number);
    }
    if (l.bind) checkIpAddress(diag, p.key('bind'), l.bind);
    if (l.defaultEndpoint) checkDefaultEndpoint(diag, p.key('defaultEndpoint'), l.defaultEndpoint);
    if (l.tls) {
      const tp = p.key('tls');
      if ((l.tls.subjectAltNames?.length ?? 0) > 0) diag.error(tp.key('subjectAltNames'), 'sidecar: subjectAltNames is not supported in ingress tls');
      if (l.tls.httpsRedirect) diag.error(tp.key('httpsRedirect'), 'sidecar: httpsRedirect is not supported');
      if (l.tls.credentialName) diag.error(tp.key('credentialName'), 'sidecar: credentialName is not currently supported');
      checkServerTls(diag, tp, l.tls);
    }
    checkConnectionPool(diag, p.key('connectionPool'), l.connectionPool);
  });
}

/** 127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:<port>, [::]:<port>, :<port> or unix://path. */
function checkDefaultEndpoint(diag: Diagnostics, path: FieldPath, endpoint: string): void {
  if (endpoint.startsWith(UNIX_PREFIX)) {
    checkUnixAddress(diag, path, endpoint);
    return;
  }
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):([^:]*)$/.exec(endpoint);
  if (!m) {
    diag.error(path, `sidecar: defaultEndpoint "${endpoint}" must be of form 127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:<port>, [::]:<port>, unix://filepath, or unset`);
    return;
  }
  const host = m[1] ?? m[2] ?? '';
  const port = m[3]!;
  if (host !== '' && !LOCAL_HOSTS.has(host)) {
    diag.error(path, `sidecar: defaultEndpoint "${endpoint}" must be of form 127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:<port>, [::]:<port>, unix://filepath, or unset`);
  }
  if (!/^\d+$/.test(port)) diag.error(path, `sidecar: defaultEndpoint port "${port}" is not a number`);
  else checkPort(diag, path, Number(port));
}

function checkListenerPort(diag: Diagnostics, path: FieldPath, port: SidecarPort): void {
  if (port.name) checkPortName(diag, path.key('name'), port.name);
  if (port.protocol) checkProtocol(diag, path.key('protocol'), port.protocol);
  if (port.targetPort) diag.warn(path.key('targetPort'), 'targetPort has no effect on Sidecar listeners');
}

/**
 * Egress listeners: at most one without a port (the catch-all), and it comes
 * last; port 0 means a unix socket bind; hosts are `namespace/dnsName`.
 */
function checkEgress(diag: Diagnostics, path: FieldPath, egress: NonNullable<SidecarSpec['egress']>): void {
  const ports = new Set<number>();
  const sockets = new Set<string>();
  let catchAll = false;
  egress.forEach((l, i) => {
    const p = path.index(i);
    if (!l.port) {
      if (catchAll) diag.error(p, 'sidecar: egress can have only one listener with empty port');
      else if (i !== egress.length - 1) diag.error(p, 'sidecar: the egress listener with empty port should be the last listener in the list');
      catchAll = true;
    } else {
      const pp = p.key('port');
      checkListenerPort(diag, pp, l.port);
      const bind = l.bind ?? '';
      if (l.port.number === 0) {
        if (!bind.startsWith(UNIX_PREFIX)) diag.error(p.key('bind'), 'sidecar: ports with 0 value must have a unix domain socket bind address');
        else checkUnixAddress(diag, p.key('bind'), bind);
        const mode = l.captureMode ?? 'DEFAULT';
        if (mode !== 'DEFAULT' && mode !== 'NONE') diag.error(p.key('captureMode'), 'sidecar: captureMode must be DEFAULT or NONE for unix domain socket listeners');
        if (sockets.has(bind)) diag.error(p.key('bind'), 'sidecar: unix domain socket values for listeners must be unique');
        sockets.add(bind);
      } else {
        checkPort(diag, pp.key('number'), l.port.number);
        if (bind !== '') checkIpAddress(diag, p.key('bind'), bind);
        if (ports.has(l.port.number)) diag.error(pp.key('number'), `sidecar: ports on IP bound listeners must be unique (port ${l.port.number} repeats)`);
        ports.add(l.port.number);
      }
    }
    const hosts = l.hosts ?? [];
    if (hosts.length === 0) diag.error(p.key('hosts'), 'sidecar: egress listener must contain at least one host');
    const seen = new Set<string>();
    hosts.forEach((h, j) => {
      const hp = p.key('hosts').index(j);
      if (seen.has(h)) diag.warn(hp, `duplicated egress host: ${h}`);
      seen.add(h);
      checkNamespaceHost(diag, hp, h, 'sidecar');
    });
  });
}

export const sidecarKind: KindDefinition<SidecarSpec> = {
  group: NETWORKING_GROUP,
  kind: 'Sidecar',
  versions: NETWORKING_VERSIONS,
  plural: 'sidecars',
  spec: sidecarSpec,
  validate: validateSidecar,
};
