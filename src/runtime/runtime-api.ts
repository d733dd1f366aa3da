// The runtime's trusted path into the control plane, on the config API port:
// what `mesh run`, `mesh gateway` and `mesh up` need to start a workload.
//
//   GET  /runtime/v1/info              xDS and CA addresses, trust domain, trust bundle
//   GET  /runtime/v1/services          every service Pilot knows (hostname, namespace, addresses, ports)
//   POST /runtime/v1/bootstrap-token   {"namespace","serviceAccount"} -> {"token","spiffeId"}
//
// A bootstrap token lets its holder get a certificate for the identity, so
// this API answers loopback callers only: on one host, whoever can start
// processes there is the runtime (the role the kubelet plays for service
// account tokens). Requests from any other address get 403.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Citadel } from '../citadel/index.ts';
import { spiffeId } from '../common/index.ts';
import type { Pilot } from '../pilot/index.ts';

export interface RuntimeApiOptions {
  readonly pilot: Pilot;
  readonly citadel: Citadel;
  /** Filled in once the ports are bound. */
  readonly ports: () => { xds: number; ca: number; api: number };
  /** Address the ports listen on; a wildcard is given to workloads as 127.0.0.1. */
  readonly listenAddress: string;
}

const NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function isLoopback(address: string | undefined): boolean {
  return !!address && (address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.'));
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  let text = '';
  for await (const chunk of req) {
    text += String(chunk);
    if (text.length > 16 * 1024) throw new Error('body too large');
  }
  return JSON.parse(text || '{}');
}

/** An extra handler for the config API server; returns false for paths it does not own. */
export function createRuntimeApiHandler(options: RuntimeApiOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (!path.startsWith('/runtime/v1/')) return false;
    if (!isLoopback(req.socket.remoteAddress)) {
      send(res, 403, { code: 'MESH_ERR_RUNTIME_FORBIDDEN', error: 'the runtime API answers loopback callers only' });
      return true;
    }
    const host = options.listenAddress === '0.0.0.0' || options.listenAddress === '::' ? '127.0.0.1' : options.listenAddress;
    if (path === '/runtime/v1/info' && req.method === 'GET') {
      const ports = options.ports();
      send(res, 200, {
        xdsAddress: `${host}:${ports.xds}`,
        caAddress: `${host}:${ports.ca}`,
        trustDomain: options.citadel.trustDomain,
        trustBundlePem: options.citadel.trustBundlePem().join(''),
      });
      return true;
    }
    if (path === '/runtime/v1/services' && req.method === 'GET') {
      const services = options.pilot.registry.services().map((s) => ({ hostname: s.hostname, namespace: s.namespace, addresses: s.addresses, ports: s.ports.map((p) => ({ name: p.name, port: p.port, protocol: p.protocol })) }));
      send(res, 200, { services });
      return true;
    }
    if (path === '/runtime/v1/bootstrap-token' && req.method === 'POST') {
      readBody(req)
        .then(async (body) => {
          const { namespace, serviceAccount } = (body ?? {}) as { namespace?: unknown; serviceAccount?: unknown };
          if (typeof namespace !== 'string' || !NAME.test(namespace)) return send(res, 400, { code: 'MESH_ERR_RUNTIME_BAD_REQUEST', error: 'namespace: a DNS label is required' });
          if (typeof serviceAccount !== 'string' || !NAME.test(serviceAccount)) return send(res, 400, { code: 'MESH_ERR_RUNTIME_BAD_REQUEST', error: 'serviceAccount: a DNS label is required' });
          const token = await options.citadel.issueBootstrapToken(namespace, serviceAccount);
          send(res, 200, { token, spiffeId: spiffeId({ trustDomain: options.citadel.trustDomain, namespace, serviceAccount }) });
        })
        .catch((err: unknown) => send(res, 400, { code: 'MESH_ERR_RUNTIME_BAD_REQUEST', error: (err as Error).message }));
      return true;
    }
    send(res, 404, { code: 'MESH_ERR_RUNTIME_NOT_FOUND', error: `no such runtime endpoint: ${req.method} ${path}` });
    return true;
  };
}
