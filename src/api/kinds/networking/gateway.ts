// Gateway: the servers (port, protocol, hosts, TLS) of a load balancer at the
// edge of the mesh, bound to gateway workloads by label selector.

import type { Diagnostics, FieldPath } from '../../diagnostics.ts';
import type { KindDefinition, ValidationContext } from '../../kind-registry.ts';
import { strict, stringMap, uint32, z } from '../../schema.ts';
import { checkLabels, checkPort, isDns1123Label } from '../../validators.ts';
import { checkIpAddress, checkNamespaceHost, checkUnixAddress, DNS1123_LABEL_RULE, isHttpProtocol, isTlsProtocol, parseProtocol, UNIX_PREFIX } from './checks.ts';
import { checkServerTls, serverTlsSettings } from './tls-settings.ts';
import type { ServerTlsSettings } from './tls-settings.ts';
import { NETWORKING_GROUP, NETWORKING_VERSIONS } from './versions.ts';

const serverPort = strict({
  number: uint32,
  protocol: z.string(),
  name: z.string(),
  targetPort: uint32.optional(),
});

const server = strict({
  port: serverPort,
  bind: z.string().optional(),
  hosts: z.array(z.string()),
  tls: serverTlsSettings.optional(),
  defaultEndpoint: z.string().optional(),
  name: z.string().optional(),
});
type Server = z.infer<typeof server>;

export const gatewaySpec = strict({
  servers: z.array(server).optional(),
  selector: stringMap.optional(),
});
export type GatewaySpec = z.infer<typeof gatewaySpec>;

const GATEWAY_PROTOCOLS = 'HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TCP, TLS, MONGO, REDIS, MYSQL';

/** ValidateGateway: name a DNS label, every server valid, port names unique across servers. */
export function validateGateway(spec: GatewaySpec, ctx: ValidationContext): void {
  const { diag, path } = ctx;
  const name = ctx.object.metadata.name;
  // Gateways are referenced as `<namespace>/<name>`, so a dot in the name would be ambiguous.
  if (typeof name === 'string' && name !== '' && !isDns1123Label(name)) {
    diag.error('metadata.name', `invalid gateway name: "${name}": ${DNS1123_LABEL_RULE} (no dots)`);
  }
  const servers = spec.servers ?? [];
  if (servers.length === 0) diag.error(path.key('servers'), 'gateway must have at least one server');
  const portNames = new Set<string>();
  servers.forEach((s, i) => {
    const p = path.key('servers').index(i);
    checkServer(diag, p, s);
    if (portNames.has(s.port.name)) diag.error(p.key('port').key('name'), `port names in servers must be unique: duplicate name ${s.port.name}`);
    portNames.add(s.port.name);
    if (!isHttpProtocol(s.port.protocol) && s.tls?.httpsRedirect) {
      diag.warn(p.key('tls').key('httpsRedirect'), 'tls.httpsRedirect should only be used with http servers');
    }
  });
  checkLabels(diag, path.key('selector'), spec.selector);
}

/** validateServer. */
function checkServer(diag: Diagnostics, path: FieldPath, s: Server): void {
  if (s.hosts.length === 0) diag.error(path.key('hosts'), 'server config must contain at least one host');
  s.hosts.forEach((h, i) => checkNamespaceHost(diag, path.key('hosts').index(i), h, 'gateway'));
  const pp = path.key('port');
  const bind = s.bind ?? '';
  const portErrors = diag.errors.length;
  const protocol = parseProtocol(s.port.protocol);
  if (protocol === undefined) diag.error(pp.key('protocol'), `invalid protocol "${s.port.protocol}", supported protocols are ${GATEWAY_PROTOCOLS}`);
  if (s.port.number > 0 || !bind.startsWith(UNIX_PREFIX)) checkPort(diag, pp.key('number'), s.port.number);
  if (s.port.targetPort) diag.error(pp.key('targetPort'), 'targetPort has no impact on Gateways; the gateway listens on port.number');
  if (s.port.name === '') diag.error(pp.key('name'), 'port name must be set');
  const portOk = diag.errors.length === portErrors;
  if (bind.startsWith(UNIX_PREFIX)) {
    checkUnixAddress(diag, path.key('bind'), bind);
    if (s.port.number !== 0) diag.error(pp.key('number'), `port number must be 0 for unix domain socket (got ${s.port.number})`);
  } else if (bind !== '') {
    checkIpAddress(diag, path.key('bind'), bind);
  }
  checkServerTls(diag, path.key('tls'), s.tls);
  if (!portOk) return;
  if (isTlsProtocol(protocol) && !s.tls) {
    diag.error(path.key('tls'), 'server must have TLS settings for HTTPS/TLS protocols');
  } else if (!isTlsProtocol(protocol) && s.tls) {
    if (isHttpProtocol(protocol)) {
      if (!redirectOnly(s.tls)) diag.error(path.key('tls'), 'server cannot have TLS settings for plain text HTTP ports (only tls.httpsRedirect is allowed)');
    } else {
      diag.error(path.key('tls'), 'server cannot have TLS settings for non HTTPS/TLS ports');
    }
  }
}

// A plain HTTP server may carry `tls: {httpsRedirect: true}`: a passthrough-mode
// TLS block without certificates, which only asks for the redirect.
function redirectOnly(tls: ServerTlsSettings): boolean {
  const mode = tls.mode ?? 'PASSTHROUGH';
  return (mode === 'PASSTHROUGH' || mode === 'AUTO_PASSTHROUGH') && !tls.caCertificates && !tls.privateKey && !tls.serverCertificate;
}

export const gatewayKind: KindDefinition<GatewaySpec> = {
  group: NETWORKING_GROUP,
  kind: 'Gateway',
  versions: NETWORKING_VERSIONS,
  plural: 'gateways',
  shortNames: ['gw'],
  spec: gatewaySpec,
  validate: validateGateway,
};
