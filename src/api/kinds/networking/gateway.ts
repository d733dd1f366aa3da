// Gateway: the servers (port, protocol, hosts, TLS) of a load balancer at the
// edge of the mesh, bound to gateway workloads by label selector.

import type { Diagnostics, FieldPath } from '../../diagnostics.ts';
import type { KindDefinition, ValidationContext } from '../../kind-registry.ts';
import { strict, stringMap, uint32, z } from '../../schema.ts';
import { checkLabels, checkPort, isIpAddress } from '../../validators.ts';
import { checkNamespaceHost, checkPortName, checkProtocol, checkUnixAddress, isHttpProtocol, isTlsProtocol, parseProtocol, UNIX_PREFIX } from './checks.ts';
import { checkServerTls, serverTlsSettings } from './tls-settings.ts';
import type { ServerTlsSettings } from './tls-settings.ts';
import { NETWORKING_GROUP, NETWORKING_VERSIONS } from './versions.ts';

export const serverPort = strict({
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

/** ValidateGateway: every server valid, port names unique across servers. */
export function validateGateway(spec: GatewaySpec, ctx: ValidationContext): void {
  const { diag, path } = ctx;
  const servers = spec.servers ?? [];
  if (servers.length === 0) diag.error(path.key('servers'), 'gateway must have at least one server');
  const portNames = new Set<string>();
  servers.forEach((s, i) => {
    const p = path.key('servers').index(i);
    checkServer(diag, p, s);
    if (portNames.has(s.port.name)) diag.error(p.key('port').key('name'), `port names in servers must be unique: duplicate name "${s.port.name}"`);
    portNames.add(s.port.name);
    if (!isHttpProtocol(s.port.protocol) && s.tls?.httpsRedirect) {
      diag.warn(p.key('tls').key('httpsRedirect'), 'tls.httpsRedirect should only be used with HTTP servers');
    }
  });
  checkLabels(diag, path.key('selector'), spec.selector);
}

function checkServer(diag: Diagnostics, path: FieldPath, s: Server): void {
  if (s.hosts.length === 0) diag.error(path.key('hosts'), 'server config must contain at least one host');
  s.hosts.forEach((h, i) => checkNamespaceHost(diag, path.key('hosts').index(i), h, 'gateway'));
  const pp = path.key('port');
  const bind = s.bind ?? '';
  const protocolOk = checkProtocol(diag, pp.key('protocol'), s.port.protocol);
  if (s.port.number > 0 || !bind.startsWith(UNIX_PREFIX)) checkPort(diag, pp.key('number'), s.port.number);
  if (s.port.targetPort) checkPort(diag, pp.key('targetPort'), s.port.targetPort);
  if (s.port.name === '') diag.error(pp.key('name'), 'port name must be set');
  else checkPortName(diag, pp.key('name'), s.port.name);
  if (bind.startsWith(UNIX_PREFIX)) {
    if (s.port.number !== 0) diag.error(pp.key('number'), `port number must be 0 for a unix domain socket bind (got ${s.port.number})`);
    checkUnixAddress(diag, path.key('bind'), bind);
  } else if (bind !== '' && !isIpAddress(bind)) {
    diag.error(path.key('bind'), `"${bind}" is not a valid IP address or unix:// socket`);
  }
  checkServerTls(diag, path.key('tls'), s.tls);
  if (!protocolOk) return;
  const protocol = parseProtocol(s.port.protocol);
  if (isTlsProtocol(protocol) && !s.tls) {
    diag.error(path.key('tls'), `server must have TLS settings for ${protocol} protocol`);
  } else if (!isTlsProtocol(protocol) && s.tls) {
    if (isHttpProtocol(protocol)) {
      if (!onlyHttpsRedirect(s.tls)) diag.error(path.key('tls'), 'server cannot have TLS settings for plain text HTTP ports (only httpsRedirect is allowed)');
    } else {
      diag.error(path.key('tls'), 'server cannot have TLS settings for non HTTPS/TLS ports');
    }
  }
}

// A plain HTTP server may carry `tls: {httpsRedirect: true}` to send clients to HTTPS.
function onlyHttpsRedirect(tls: ServerTlsSettings): boolean {
  return Object.entries(tls).every(([k, v]) => v === undefined || k === 'httpsRedirect' || (k === 'mode' && v === 'PASSTHROUGH'));
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
