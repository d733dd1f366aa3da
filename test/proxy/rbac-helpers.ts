// Helpers for the security filter tests: an mTLS listener whose HCM runs
// given HTTP filters, and an HTTPS client presenting a workload certificate.

import { request } from 'node:https';
import { connect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { once } from 'node:events';
import type { Reply } from './helpers.ts';
import { HCM, ROUTER } from './helpers.ts';
import type { Pem } from './tls-certs.ts';

export const DOWNSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
export const HTTP_RBAC = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
export const NETWORK_RBAC = 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';
export const JWT_AUTHN = 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication';
export const EXT_AUTHZ = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz';

const inline = (s: string): object => ({ inline_string: s });

export function serverTls(ca: Pem, server: Pem, requireClient = true): object {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': DOWNSTREAM_TLS,
      require_client_certificate: requireClient,
      common_tls_context: {
        tls_certificates: [{ certificate_chain: inline(server.cert), private_key: inline(server.key) }],
        validation_context: { trusted_ca: inline(ca.cert) },
      },
    },
  };
}

/** A listener on 127.0.0.1:0 terminating mTLS (when `tls`) and running `httpFilters` before the router to `cluster`. */
export function securedHttpListener(name: string, cluster: string, httpFilters: unknown[], tls: object | undefined): object {
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    filter_chains: [
      {
        ...(tls ? { transport_socket: tls } : {}),
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM,
              stat_prefix: name,
              route_config: { name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster } }] }] },
              http_filters: [...httpFilters, { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
            },
          },
        ],
      },
    ],
  };
}

export function rbacFilter(config: object): object {
  return { name: 'envoy.filters.http.rbac', typed_config: { '@type': HTTP_RBAC, ...config } };
}

export interface TlsRequest {
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly servername?: string;
  readonly body?: string;
}

/** One HTTPS request with a client certificate (no keep-alive, so each request is a new connection). */
export function tlsGet(port: number, path: string, ca: Pem, client: Pem | undefined, init: TlsRequest = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: init.method ?? 'GET',
        headers: init.headers,
        ca: ca.cert,
        cert: client?.cert,
        key: client?.key,
        servername: init.servername ?? 'server.test',
        rejectUnauthorized: false,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString();
          resolve({ status: res.statusCode!, headers: res.headers, body, json: () => JSON.parse(body) });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}

/** Opens mTLS to `port`, writes `data`, returns what came back before the connection closed. */
export async function tlsExchange(port: number, ca: Pem, client: Pem, data: string): Promise<{ reply: string; secure: boolean }> {
  const socket: TLSSocket = connect({ host: '127.0.0.1', port, ca: ca.cert, cert: client.cert, key: client.key, servername: 'server.test', rejectUnauthorized: false });
  const chunks: Buffer[] = [];
  let secure = false;
  socket.on('secureConnect', () => {
    secure = true;
    socket.write(data);
    setTimeout(() => socket.end(), 150);
  });
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => undefined);
  await once(socket, 'close');
  return { reply: Buffer.concat(chunks).toString(), secure };
}

/** CheckResponse.dynamic_metadata with Mixer's caching hints (istio.mixer: valid_duration_ms, valid_use_count, referenced_attributes). */
export function mixerHints(durationMs: number, uses: number, attrs: string[]): object {
  const num = (n: number): object => ({ numberValue: n });
  return { fields: { 'istio.mixer': { structValue: { fields: { valid_duration_ms: num(durationMs), valid_use_count: num(uses), referenced_attributes: { listValue: { values: attrs.map((a) => ({ stringValue: a })) } } } } } } };
}
