// Configurations for the benchmark's processes: the origin (nginx serving a
// 1 KiB file), our sidecar pair as Envoy bootstraps (outbound listener ->
// `outbound|80||server...` -> inbound listener -> `inbound|80||` -> origin,
// with istio.stats on both sides, as Istio configures sidecars), and the
// nginx and haproxy pairs, each one worker, plaintext or mTLS.

import type { BenchCerts } from './certs.ts';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const UPSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
const DOWNSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
const SERVICE = 'server.bench.svc.cluster.local';

export interface PairPorts {
  readonly client: number;
  readonly server: number;
  readonly origin: number;
}

export function originNginx(dir: string, port: number): string {
  return `worker_processes 1;
master_process off;
daemon off;
pid ${dir}/origin.pid;
error_log ${dir}/origin.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp-origin;
  proxy_temp_path ${dir}/tmp-origin;
  default_type application/octet-stream;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:${port} reuseport backlog=4096;
    root ${dir}/www;
    location / { }
  }
}
`;
}

const statsFilter = { name: 'istio.stats', typed_config: { '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct', type_url: 'type.googleapis.com/stats.PluginConfig', value: {} } };
const node = (app: string): object => ({ id: `sidecar~127.0.0.1~${app}-v1-0.bench~bench.svc.cluster.local`, cluster: `${app}.bench`, metadata: { NAME: `${app}-v1-0`, NAMESPACE: 'bench', WORKLOAD_NAME: `${app}-v1`, CLUSTER_ID: 'Kubernetes', LABELS: { app, version: 'v1' } } });

function hcm(prefix: string, cluster: string, stats: boolean): object {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': HCM,
      stat_prefix: prefix,
      codec_type: 'AUTO',
      route_config: { name: '80', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster } }] }] },
      http_filters: [...(stats ? [statsFilter] : []), { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
    },
  };
}

const inline = (s: string): object => ({ inline_string: s });

/** The client-side (outbound) sidecar. */
export function clientSidecar(ports: PairPorts, certs: BenchCerts, mtls: boolean, stats: boolean, adminPort: number): object {
  const cluster = `outbound|80||${SERVICE}`;
  return {
    node: node('client'),
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: adminPort } } },
    static_resources: {
      clusters: [
        {
          name: cluster,
          type: 'STATIC',
          connect_timeout: '1s',
          load_assignment: { cluster_name: cluster, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: ports.server } } } }] }] },
          ...(mtls
            ? {
                transport_socket: {
                  name: 'envoy.transport_sockets.tls',
                  typed_config: {
                    '@type': UPSTREAM_TLS,
                    sni: `outbound_.80_._.${SERVICE}`,
                    common_tls_context: {
                      alpn_protocols: ['istio', 'http/1.1'],
                      tls_certificates: [{ certificate_chain: inline(certs.client.cert), private_key: inline(certs.client.key) }],
                      validation_context: { trusted_ca: inline(certs.ca), match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: certs.server.uri } }] },
                    },
                  },
                },
              }
            : {}),
        },
      ],
      listeners: [{ name: '0.0.0.0_80', traffic_direction: 'OUTBOUND', address: { socket_address: { address: '127.0.0.1', port_value: ports.client } }, filter_chains: [{ filters: [hcm('outbound_0.0.0.0_80', cluster, stats)] }] }],
    },
  };
}

/** The server-side (inbound) sidecar. */
export function serverSidecar(ports: PairPorts, certs: BenchCerts, mtls: boolean, stats: boolean, adminPort: number): object {
  const cluster = 'inbound|80||';
  return {
    node: node('server'),
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: adminPort } } },
    static_resources: {
      clusters: [{ name: cluster, type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: cluster, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: ports.origin } } } }] }] } }],
      listeners: [
        {
          name: 'virtualInbound',
          traffic_direction: 'INBOUND',
          address: { socket_address: { address: '127.0.0.1', port_value: ports.server } },
          filter_chains: [
            {
              ...(mtls
                ? {
                    transport_socket: {
                      name: 'envoy.transport_sockets.tls',
                      typed_config: {
                        '@type': DOWNSTREAM_TLS,
                        require_client_certificate: true,
                        common_tls_context: {
                          alpn_protocols: ['istio', 'http/1.1'],
                          tls_certificates: [{ certificate_chain: inline(certs.server.cert), private_key: inline(certs.server.key) }],
                          validation_context: { trusted_ca: inline(certs.ca), match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: certs.client.uri } }] },
                        },
                      },
                    },
                  }
                : {}),
              filters: [hcm('inbound_0.0.0.0_80', cluster, stats)],
            },
          ],
        },
      ],
    },
  };
}

function nginxProxy(dir: string, name: string, listen: string, upstream: string, ssl: string): string {
  return `worker_processes 1;
master_process off;
daemon off;
pid ${dir}/${name}.pid;
error_log ${dir}/${name}.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp-${name};
  proxy_temp_path ${dir}/tmp-${name};
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  upstream up { ${upstream} keepalive 64; keepalive_requests 10000000; }
  server {
    ${listen}
    location / {
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering on;
${ssl}    }
  }
}
`;
}

/** nginx as the client-side and server-side proxy (one worker each). */
export function nginxPair(dir: string, ports: PairPorts, certs: BenchCerts, mtls: boolean): { client: string; server: string } {
  const clientSsl = mtls
    ? `      proxy_pass https://up;
      proxy_ssl_certificate ${certs.client.certFile};
      proxy_ssl_certificate_key ${certs.client.keyFile};
      proxy_ssl_trusted_certificate ${certs.caFile};
      proxy_ssl_verify on;
      proxy_ssl_name server.bench.svc.cluster.local;
      proxy_ssl_server_name on;
      proxy_ssl_session_reuse on;
`
    : '      proxy_pass http://up;\n';
  const serverListen = mtls
    ? `listen 127.0.0.1:${ports.server} ssl reuseport backlog=4096;
    ssl_certificate ${certs.server.certFile};
    ssl_certificate_key ${certs.server.keyFile};
    ssl_client_certificate ${certs.caFile};
    ssl_verify_client on;`
    : `listen 127.0.0.1:${ports.server} reuseport backlog=4096;`;
  return {
    client: nginxProxy(dir, 'nginx-client', `listen 127.0.0.1:${ports.client} reuseport backlog=4096;`, `server 127.0.0.1:${ports.server};`, clientSsl),
    server: nginxProxy(dir, 'nginx-server', serverListen, `server 127.0.0.1:${ports.origin};`, '      proxy_pass http://up;\n'),
  };
}

const HAPROXY_DEFAULTS = `global
  nbthread 1
  maxconn 4000
  tune.ssl.default-dh-param 2048
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-keep-alive 300s
`;

/** haproxy as the client-side and server-side proxy (one thread each). */
export function haproxyPair(ports: PairPorts, certs: BenchCerts, mtls: boolean): { client: string; server: string } {
  const upSsl = mtls ? ` ssl crt ${certs.client.bundleFile} ca-file ${certs.caFile} verify required verifyhost server.bench.svc.cluster.local sni str(server.bench.svc.cluster.local) alpn http/1.1` : '';
  const bindSsl = mtls ? ` ssl crt ${certs.server.bundleFile} ca-file ${certs.caFile} verify required alpn http/1.1` : '';
  return {
    client: `${HAPROXY_DEFAULTS}frontend fe
  bind 127.0.0.1:${ports.client}
  default_backend be
backend be
  server s1 127.0.0.1:${ports.server}${upSsl}
`,
    server: `${HAPROXY_DEFAULTS}frontend fe
  bind 127.0.0.1:${ports.server}${bindSsl}
  default_backend be
backend be
  server s1 127.0.0.1:${ports.origin}
`,
  };
}
