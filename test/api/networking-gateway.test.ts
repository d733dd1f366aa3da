// Gateway semantic rules (Istio's ValidateGateway, validateServer and
// validateTLSOptions): exact paths and messages.

import { describe } from 'node:test';
import { runCases } from './networking-helpers.ts';
import type { RuleCase } from './networking-helpers.ts';

const server = (extra: Record<string, unknown>) => ({ port: { number: 80, protocol: 'HTTP', name: 'http' }, hosts: ['*'], ...extra });
const gw = (...servers: unknown[]) => ({ selector: { istio: 'ingressgateway' }, servers });
const https = (tls: unknown) => gw(server({ port: { number: 443, protocol: 'HTTPS', name: 'https' }, tls }));

describe('Gateway: servers, ports, hosts', () => {
  const cases: RuleCase[] = [
    { name: 'no servers', spec: { selector: { istio: 'ingressgateway' } }, errors: [['spec.servers', 'gateway must have at least one server']] },
    {
      name: 'port names unique across servers',
      spec: gw(server({}), server({ port: { number: 81, protocol: 'HTTP', name: 'http' } })),
      errors: [['spec.servers[1].port.name', 'port names in servers must be unique: duplicate name "http"']],
    },
    {
      name: 'port number, name, protocol, targetPort',
      spec: gw(server({ port: { number: 0, protocol: 'SMTP', name: 'Mail', targetPort: 70000 } }), server({ port: { number: 8080, protocol: 'http', name: '' } })),
      errors: [
        ['spec.servers[0].port.protocol', 'invalid protocol "SMTP"; supported protocols: HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, HTTP_PROXY, TCP, TLS, UDP, MONGO, REDIS, MYSQL, THRIFT'],
        ['spec.servers[0].port.number', 'port number 0 must be in the range 1..65535'],
        ['spec.servers[0].port.targetPort', 'port number 70000 must be in the range 1..65535'],
        ['spec.servers[0].port.name', 'invalid port name "Mail": must be a DNS-1123 label (lower case alphanumerics and "-", at most 63 characters)'],
        ['spec.servers[1].port.name', 'port name must be set'],
      ],
    },
    {
      name: 'hosts: none, bad namespace, bad name, empty parts',
      spec: gw(server({ hosts: [] }), server({ port: { number: 81, protocol: 'HTTP', name: 'h2' }, hosts: ['Bad/a.com', 'ns/a..com', '/a.com', '~/a.com', 'a!.com'] })),
      errors: [
        ['spec.servers[0].hosts', 'server config must contain at least one host'],
        ['spec.servers[1].hosts[0]', 'invalid namespace "Bad" in gateway host "Bad/a.com": use "*", "." or a namespace name'],
        ['spec.servers[1].hosts[1]', 'domain name "a..com" invalid (label "" invalid)'],
        ['spec.servers[1].hosts[2]', 'host "/a.com": namespace and dnsName cannot be empty; use namespace/dnsName'],
        ['spec.servers[1].hosts[3]', 'invalid namespace "~" in gateway host "~/a.com": use "*", "." or a namespace name'],
        ['spec.servers[1].hosts[4]', 'domain name "a!.com" invalid (label "a!" invalid)'],
      ],
    },
    {
      name: 'bind address and unix sockets',
      spec: gw(
        server({ bind: 'localhost' }),
        server({ port: { number: 81, protocol: 'HTTP', name: 'uds' }, bind: 'unix://relative.sock' }),
        server({ port: { number: 0, protocol: 'HTTP', name: 'uds2' }, bind: 'unix:///ok.sock' }),
      ),
      errors: [
        ['spec.servers[0].bind', '"localhost" is not a valid IP address or unix:// socket'],
        ['spec.servers[1].port.number', 'port number must be 0 for a unix domain socket bind (got 81)'],
        ['spec.servers[1].bind', 'unix address "unix://relative.sock" must be an absolute path or an abstract socket "@name", such as "unix:///var/run/app.sock"'],
      ],
    },
    {
      name: 'selector labels',
      spec: { selector: { 'istio/': 'x' }, servers: [server({})] },
      errors: [['spec.selector["istio/"]', 'invalid label key "istio/": name must be 1-63 characters of [A-Za-z0-9_.-], starting and ending alphanumeric']],
    },
  ];
  runCases('Gateway', cases);
});

describe('Gateway: TLS', () => {
  const cases: RuleCase[] = [
    {
      name: 'HTTPS needs TLS settings',
      spec: gw(server({ port: { number: 443, protocol: 'HTTPS', name: 'https' } })),
      errors: [['spec.servers[0].tls', 'server must have TLS settings for HTTPS protocol']],
    },
    {
      name: 'plain HTTP may only redirect',
      spec: gw(server({ tls: { httpsRedirect: true, mode: 'SIMPLE', credentialName: 'c' } })),
      errors: [['spec.servers[0].tls', 'server cannot have TLS settings for plain text HTTP ports (only httpsRedirect is allowed)']],
    },
    {
      name: 'TCP server with TLS settings, and httpsRedirect off HTTP',
      spec: gw(server({ port: { number: 31400, protocol: 'TCP', name: 'tcp' }, tls: { httpsRedirect: true } })),
      errors: [['spec.servers[0].tls', 'server cannot have TLS settings for non HTTPS/TLS ports']],
      warnings: [['spec.servers[0].tls.httpsRedirect', 'tls.httpsRedirect should only be used with HTTP servers']],
    },
    {
      name: 'SIMPLE needs a certificate and key or a credential',
      spec: https({ mode: 'SIMPLE' }),
      errors: [
        ['spec.servers[0].tls.serverCertificate', 'SIMPLE TLS requires a server certificate (or credentialName)'],
        ['spec.servers[0].tls.privateKey', 'SIMPLE TLS requires a private key (or credentialName)'],
      ],
    },
    {
      name: 'MUTUAL also needs a client CA bundle',
      spec: https({ mode: 'MUTUAL', serverCertificate: '/s.pem', privateKey: '/k.pem' }),
      errors: [['spec.servers[0].tls.caCertificates', 'MUTUAL TLS requires a client CA bundle in caCertificates (or credentialName)']],
    },
    { name: 'MUTUAL with a credential', spec: https({ mode: 'MUTUAL', credentialName: 'cred' }), errors: [] },
    {
      name: 'OPTIONAL_MUTUAL like MUTUAL',
      spec: https({ mode: 'OPTIONAL_MUTUAL', tlsCertificates: [{ serverCertificate: '/s.pem', privateKey: '/k.pem' }] }),
      errors: [['spec.servers[0].tls.caCertificates', 'OPTIONAL_MUTUAL TLS requires a client CA bundle in caCertificates (or credentialName)']],
    },
    {
      name: 'ISTIO_MUTUAL takes no certificates',
      spec: https({ mode: 'ISTIO_MUTUAL', serverCertificate: '/s.pem', privateKey: '/k.pem', caCertificates: '/ca.pem', credentialName: 'c' }),
      errors: [
        ['spec.servers[0].tls.serverCertificate', 'ISTIO_MUTUAL TLS cannot have an associated server certificate'],
        ['spec.servers[0].tls.privateKey', 'ISTIO_MUTUAL TLS cannot have an associated private key'],
        ['spec.servers[0].tls.caCertificates', 'ISTIO_MUTUAL TLS cannot have an associated CA bundle'],
        ['spec.servers[0].tls.credentialName', 'ISTIO_MUTUAL TLS cannot have an associated credentialName'],
      ],
    },
    {
      name: 'passthrough ignores certificates (warning)',
      spec: gw(server({ port: { number: 443, protocol: 'TLS', name: 'tls' }, tls: { mode: 'PASSTHROUGH', credentialName: 'c' } })),
      errors: [],
      warnings: [['spec.servers[0].tls', 'PASSTHROUGH mode does not use certificates, they will be ignored']],
    },
    {
      name: 'credentialName and credentialNames, too many names, versions out of order',
      spec: https({ mode: 'SIMPLE', credentialName: 'a', credentialNames: ['b', 'c', 'd'], minProtocolVersion: 'TLSV1_3', maxProtocolVersion: 'TLSV1_2' }),
      errors: [
        ['spec.servers[0].tls', 'only one of credentialName or credentialNames may be set'],
        ['spec.servers[0].tls.credentialNames', 'credentialNames takes at most 2 entries (one RSA and one ECDSA certificate)'],
        ['spec.servers[0].tls.maxProtocolVersion', 'maxProtocolVersion TLSV1_2 must not be lower than minProtocolVersion TLSV1_3'],
      ],
    },
  ];
  runCases('Gateway', cases);
});
