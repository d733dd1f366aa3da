// config.istio.io/v1alpha2 `handler`: a configured instance of a Mixer adapter
// (compiled in, or out of process at connection.address).

import type { KindDefinition, ValidationContext } from '../../kind-registry.ts';
import { duration, strict, z } from '../../schema.ts';
import { checkDuration } from '../../validators.ts';

const tls = strict({
  caCertificates: z.string().optional(),
  tokenPath: z.string().optional(),
  oauth: strict({
    clientId: z.string(),
    clientSecret: z.string(),
    tokenUrl: z.string(),
    scopes: z.array(z.string()).optional(),
    endpointParams: z.record(z.string(), z.string()).optional(),
  }).optional(),
  authHeader: z.enum(['PLAIN', 'BEARER']).optional(),
  customHeader: z.string().optional(),
  serverName: z.string().optional(),
});
const mutual = strict({
  privateKey: z.string(),
  clientCertificate: z.string(),
  caCertificates: z.string().optional(),
  serverName: z.string().optional(),
});

export const handlerSpec = strict({
  name: z.string().optional(),
  compiledAdapter: z.string().optional(),
  adapter: z.string().optional(),
  params: z.record(z.string(), z.unknown()).optional(),
  connection: strict({
    address: z.string().optional(),
    timeout: duration.optional(),
    authentication: strict({ tls: tls.optional(), mutual: mutual.optional() }).optional(),
  }).optional(),
});
export type HandlerSpec = z.infer<typeof handlerSpec>;

// host:port, [v6]:port or a unix socket path: how Mixer dialled an out-of-process adapter.
const ADDRESS = /^(unix:\/\/\/?.+|\[[0-9a-fA-F:.]+\]:\d{1,5}|[A-Za-z0-9.-]+:\d{1,5})$/;

function validateHandler(spec: HandlerSpec, ctx: ValidationContext): void {
  const { diag, path } = ctx;
  const compiled = spec.compiledAdapter ?? '';
  const adapter = spec.adapter ?? '';
  if (compiled === '' && adapter === '') diag.error(path, 'a handler needs compiledAdapter (built-in adapter) or adapter (out-of-process adapter)');
  if (compiled !== '' && adapter !== '') diag.error(path, 'only one of compiledAdapter or adapter may be set');
  const conn = spec.connection;
  if (conn) {
    if (compiled !== '') diag.error(path.key('connection'), 'connection is only for out-of-process adapters (adapter), not compiledAdapter');
    if (conn.address === undefined || conn.address === '') diag.error(path.key('connection').key('address'), 'connection.address must be set (host:port)');
    else if (!ADDRESS.test(conn.address)) diag.error(path.key('connection').key('address'), `invalid address "${conn.address}": use host:port`);
    if (conn.timeout !== undefined) checkDuration(diag, path.key('connection').key('timeout'), conn.timeout);
    const auth = conn.authentication;
    if (auth && (auth.tls === undefined) === (auth.mutual === undefined)) {
      diag.error(path.key('connection').key('authentication'), 'exactly one of tls or mutual must be set');
    }
  } else if (adapter !== '') {
    diag.error(path.key('connection'), 'an out-of-process adapter needs connection.address');
  }
}

export const handlerKind: KindDefinition<HandlerSpec> = {
  group: 'config.istio.io',
  kind: 'handler',
  versions: ['v1alpha2'],
  plural: 'handlers',
  spec: handlerSpec,
  validate: validateHandler,
};
