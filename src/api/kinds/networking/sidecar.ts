// Sidecar: narrows what a workload's proxy listens on (ingress) and which
// services it can reach (egress), replacing the mesh-wide defaults.

import type { Diagnostics, FieldPath } from '../../diagnostics.ts';
import type { KindDefinition, ValidationContext } from '../../kind-registry.ts';
import { strict, uint32, z } from '../../schema.ts';
import { checkPort } from '../../validators.ts';
import {
  checkIpAddress,
  checkNamespaceHost,
  checkPortName,
  checkProtocol,
  checkSelectorLabels,
  checkUnixAddress,
  fqdnProblem,
  isHttpProtocol,
  isTlsProtocol,
  UNIX_PREFIX,
} from './checks.ts';
import { checkSubsetName, destination } from './destination.ts';
import { checkConnectionPool, connectionPoolSettings } from './traffic-policy.ts';
import { checkServerTls, serverTlsSettings } from './tls-settings.ts';
import { networkingWorkloadSelector } from './workload-selector.ts';
import { NETWORKING_GROUP, NETWORKING_VERSIONS } from './versions.ts';

const sidecarPort = strict({
  number: uint32,
  protocol: z.string().optional(),
  name: z.string().optional(),
  targetPort: uint32.optional(),
});

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
const DEFAULT_ENDPOINT_FORMS = '127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:<port>, [::]:<port>, :<port>, unix://filepath or unset';

/** ValidateSidecar. */
export function validateSidecar(spec: SidecarSpec, ctx: ValidationContext): void {
  const { diag, path } = ctx;
  if (spec.workloadSelector && !checkSelectorLabels(diag, path.key('workloadSelector').key('labels'), spec.workloadSelector.labels)) {
    diag.warn(path.key('workloadSelector'), 'sidecar: workload selector specified without labels, will be applied to all services in namespace');
  }
  if ((spec.egress?.length ?? 0) === 0 && (spec.ingress?.length ?? 0) === 0 && !spec.outboundTrafficPolicy && !spec.inboundConnectionPool) {
    diag.error(path, 'sidecar: empty configuration provided; set ingress, egress, outboundTrafficPolicy or inboundConnectionPool');
    return;
  }
  checkIngress(diag, path.key('ingress'), spec.ingress ?? []);
  checkConnectionPool(diag, path.key('inboundConnectionPool'), spec.inboundConnectionPool);
  checkEgress(diag, path.key('egress'), spec.egress ?? [], ctx.object.metadata.namespace ?? '');
  checkOutboundTrafficPolicy(diag, path.key('outboundTrafficPolicy'), spec.outboundTrafficPolicy);
}

function checkIngress(diag: Diagnostics, path: FieldPath, ingress: NonNullable<SidecarSpec['ingress']>): void {
  const ports = new Set<number>();
  ingress.forEach((l, i) => {
    const p = path.index(i);
    if (!l.port) {
      diag.error(p.key('port'), 'sidecar: port is required for ingress listeners');
      return;
    }
    const pp = p.key('port');
    if (l.port.targetPort) diag.error(pp.key('targetPort'), 'targetPort has no impact on Sidecars; use defaultEndpoint to pick the application port');
    if (l.port.name) checkPortName(diag, pp.key('name'), l.port.name);
    checkProtocol(diag, pp.key('protocol'), l.port.protocol);
    checkPort(diag, pp.key('number'), l.port.number);
    if (l.bind) checkIpAddress(diag, p.key('bind'), l.bind);
    if (ports.has(l.port.number)) diag.error(pp.key('number'), `sidecar: ports on IP bound listeners must be unique (port ${l.port.number} repeats)`);
    ports.add(l.port.number);
    if (l.defaultEndpoint) checkDefaultEndpoint(diag, p.key('defaultEndpoint'), l.defaultEndpoint);
    if (l.tls) {
      const tp = p.key('tls');
      if ((l.tls.subjectAltNames?.length ?? 0) > 0) diag.error(tp.key('subjectAltNames'), 'sidecar: subjectAltNames is not supported in ingress tls');
      if (l.tls.httpsRedirect) diag.error(tp.key('httpsRedirect'), 'sidecar: httpsRedirect is not supported');
      if (l.tls.credentialName) diag.error(tp.key('credentialName'), 'sidecar: credentialName is not currently supported');
      if ((l.tls.credentialNames?.length ?? 0) > 0) diag.error(tp.key('credentialNames'), 'sidecar: credentialNames is not currently supported');
      if ((l.tls.tlsCertificates?.length ?? 0) > 0) diag.error(tp.key('tlsCertificates'), 'sidecar: tlsCertificates is not currently supported');
      if (l.tls.mode === 'ISTIO_MUTUAL' || l.tls.mode === 'AUTO_PASSTHROUGH') {
        diag.error(tp.key('mode'), `cannot set mode to ${l.tls.mode} in sidecar ingress tls; use SIMPLE, MUTUAL or OPTIONAL_MUTUAL`);
      }
      if (!isTlsProtocol(l.port.protocol)) diag.error(tp, 'server cannot have TLS settings for non HTTPS/TLS ports');
      checkServerTls(diag, tp, l.tls);
    }
    checkConnectionPool(diag, p.key('connectionPool'), l.connectionPool);
    if (l.connectionPool?.http && !isHttpProtocol(l.port.protocol)) {
      diag.warn(p.key('connectionPool').key('http'), `sidecar: HTTP connection pool settings are configured for port ${l.port.number} ("${l.port.name ?? ''}") but its protocol is not HTTP (${l.port.protocol ?? ''}); only TCP settings will apply`);
    }
  });
}

/** The application address behind an ingress listener: loopback, any-address or a unix socket. */
function checkDefaultEndpoint(diag: Diagnostics, path: FieldPath, endpoint: string): void {
  if (endpoint.startsWith(UNIX_PREFIX)) {
    checkUnixAddress(diag, path, endpoint);
    return;
  }
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):([^:]*)$/.exec(endpoint);
  if (!m) {
    diag.error(path, `sidecar: defaultEndpoint "${endpoint}" must be of form ${DEFAULT_ENDPOINT_FORMS}`);
    return;
  }
  const host = m[1] ?? m[2] ?? '';
  const port = m[3]!;
  if (host !== '' && !LOCAL_HOSTS.has(host)) diag.error(path, `sidecar: defaultEndpoint "${endpoint}" must be of form ${DEFAULT_ENDPOINT_FORMS}`);
  if (!/^\d+$/.test(port)) diag.error(path, `sidecar: defaultEndpoint port (${port}) is not a number`);
  else checkPort(diag, path, Number(port));
}

/**
 * Egress listeners: at most one without a port (the catch-all), and it comes
 * last; port 0 means a unix socket bind; hosts are `namespace/dnsName`.
 */
function checkEgress(diag: Diagnostics, path: FieldPath, egress: NonNullable<SidecarSpec['egress']>, namespace: string): void {
  const ports = new Set<number>();
  const sockets = new Set<string>();
  let catchAll = false;
  egress.forEach((l, i) => {
    const p = path.index(i);
    if (!l.port) {
      if (catchAll) {
        diag.error(p, 'sidecar: egress can have only one listener with empty port');
        return;
      }
      if (i === egress.length - 1) catchAll = true;
      else diag.error(p, 'sidecar: the egress listener with empty port should be the last listener in the list');
    } else {
      const pp = p.key('port');
      if (l.port.targetPort) diag.error(pp.key('targetPort'), 'targetPort has no impact on Sidecars');
      if (l.port.name) checkPortName(diag, pp.key('name'), l.port.name);
      checkProtocol(diag, pp.key('protocol'), l.port.protocol);
      const bind = l.bind ?? '';
      if (l.port.number === 0) {
        if (!bind.startsWith(UNIX_PREFIX)) diag.error(p.key('bind'), 'sidecar: ports with 0 value must have a unix domain socket bind address');
        else checkUnixAddress(diag, p.key('bind'), bind);
        const mode = l.captureMode ?? 'DEFAULT';
        if (mode !== 'DEFAULT' && mode !== 'NONE') diag.error(p.key('captureMode'), 'sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners');
        if (sockets.has(bind)) diag.error(p.key('bind'), 'sidecar: unix domain socket values for listeners must be unique');
        sockets.add(bind);
      } else {
        checkPort(diag, pp.key('number'), l.port.number);
        if (bind !== '') checkIpAddress(diag, p.key('bind'), bind);
        if (ports.has(l.port.number)) diag.error(pp.key('number'), `sidecar: ports on IP bound listeners must be unique (port ${l.port.number} repeats)`);
        ports.add(l.port.number);
      }
    }
    checkEgressHosts(diag, p.key('hosts'), l.hosts ?? [], namespace);
  });
}

// Duplicates are warned, not rejected, as Istio does for compatibility.
function checkEgressHosts(diag: Diagnostics, path: FieldPath, hosts: readonly string[], namespace: string): void {
  if (hosts.length === 0) {
    diag.error(path, 'sidecar: egress listener must contain at least one host');
    return;
  }
  const byNamespace = new Map<string, Set<string>>();
  hosts.forEach((h, j) => {
    const hp = path.index(j);
    const slash = h.indexOf('/');
    if (slash >= 0) {
      const ns = h.slice(0, slash) === '.' ? namespace : h.slice(0, slash);
      const svc = h.slice(slash + 1);
      const services = byNamespace.get(ns) ?? new Set<string>();
      byNamespace.set(ns, services);
      const duplicate = svc === '*' ? services.size > 0 : services.has(svc) || services.has('*');
      if (duplicate) diag.warn(hp, `duplicated egress host: ${h}`);
      services.add(svc);
    }
    checkNamespaceHost(diag, hp, h, 'sidecar');
  });
  if (byNamespace.get('*')?.has('*') && byNamespace.size !== 1) {
    diag.warn(path, '`*/*` host select all resources, no other hosts can be added');
  }
}

function checkOutboundTrafficPolicy(diag: Diagnostics, path: FieldPath, otp: SidecarSpec['outboundTrafficPolicy']): void {
  if (!otp?.egressProxy) return;
  const p = path.key('egressProxy');
  if ((otp.mode ?? 'REGISTRY_ONLY') !== 'ALLOW_ANY') {
    diag.error(p, 'sidecar: egressProxy must be set only with ALLOW_ANY outboundTrafficPolicy mode');
    return;
  }
  const problem = fqdnProblem(otp.egressProxy.host);
  if (problem) diag.error(p.key('host'), problem);
  if (!otp.egressProxy.port) {
    diag.error(p.key('port'), 'sidecar: egressProxy port must be non-nil');
    return;
  }
  // The host was checked (more strictly) above; the subset and port are checked as for any destination.
  if (otp.egressProxy.subset) checkSubsetName(diag, p.key('subset'), otp.egressProxy.subset);
  checkPort(diag, p.key('port').key('number'), otp.egressProxy.port.number);
}

export const sidecarKind: KindDefinition<SidecarSpec> = {
  group: NETWORKING_GROUP,
  kind: 'Sidecar',
  versions: NETWORKING_VERSIONS,
  plural: 'sidecars',
  spec: sidecarSpec,
  validate: validateSidecar,
};
