// Gateway semantic rules (Istio's ValidateGateway, validateServer and
// validateTLSOptions): exact paths and messages.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { istioKinds, validateObject } from '../../src/api/index.ts';
import { runCases } from './networking-helpers.ts';
import type { RuleCase } from './networking-helpers.ts';

const server = (extra: Record<string, unknown>) => ({ port: { number: 80, protocol: 'HTTP', name: 'http' }, hosts: ['*'], ...extra });
const gw = (...servers: unknown[]) => ({ selector: { istio: 'ingressgateway' }, servers });
const https = (tls: unknown) => gw(server({ port: { number: 443, protocol: 'HTTPS', name: 'https' }, tls }));
const T = 'spec.servers[0].tls';

describe('Gateway: name, servers, ports, hosts', () => {
  it('the gateway name is a DNS-1123 label (it is referenced as namespace/name)', () => {
    const result = validateObject({ apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name: 'my.gateway' }, spec: gw(server({})) }, istioKinds);
    assert.deepEqual(result.diagnostics.map((d) => [d.severity, d.path, d.message]), [
      ['error', 'metadata.name', 'invalid gateway name: "my.gateway": must be a DNS-1123 label (lower case alphanumerics and "-", at most 63 characters) (no dots)'],
    ]);
  });

  const cases: RuleCase[] = [
    { name: 'no servers', spec: { selector: { istio: 'ingressgateway' } }, errors: [['spec.servers', 'gateway must have at least one server']] },
    {
      name: 'port names unique across servers',
      spec: gw(server({}), server({ port: { number: 81, protocol: 'HTTP', name: 'http' } })),
      errors: [['spec.servers[1].port.name', 'port names in servers must be unique: duplicate name http']],
    },
    {
      name: 'port number, name, protocol, targetPort',
      spec: gw(server({ port: { number: 0, protocol: 'SMTP', name: 'mail', targetPort: 8080 } }), server({ port: { number: 8080, protocol: 'http', name: '' } })),
      errors: [
        ['spec.servers[0].port.protocol', 'invalid protocol "SMTP", supported protocols are HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TCP, TLS, MONGO, REDIS, MYSQL'],
        ['spec.servers[0].port.number', 'port number 0 must be in the range 1..65535'],
        ['spec.servers[0].port.targetPort', 'targetPort has no impact on Gateways; the gateway listens on port.number'],
        ['spec.servers[1].port.name', 'port name must be set'],
      ],
    },
    {
      name: 'hosts: none, bad namespace, bad name, empty parts',
      spec: gw(server({ hosts: [] }), server({ port: { number: 81, protocol: 'HTTP', name: 'h2' }, hosts: ['Bad/a.com', 'ns/a..com', '/a.com', '~/a.com', 'a!.com'] })),
      errors: [
        ['spec.servers[0].hosts', 'server config must contain at least one host'],
        ['spec.servers[1].hosts[0]', 'invalid namespace value "Bad" in gateway host "Bad/a.com": use "*", "." or a namespace name'],
        ['spec.servers[1].hosts[1]', 'domain name "a..com" invalid (label "" invalid)'],
        ['spec.servers[1].hosts[2]', 'host "/a.com": config namespace and dnsName in host entry cannot be empty'],
        ['spec.servers[1].hosts[3]', 'invalid namespace value "~" in gateway host "~/a.com": use "*", "." or a namespace name'],
        ['spec.servers[1].hosts[4]', 'domain name "a!.com" invalid (label "a!" invalid)'],
      ],
    },
    {
      name: 'hosts: short names and partial wildcards; IPs are fine',
      spec: gw(server({ hosts: ['reviews', 'ns/*foo.com', '10.0.0.1', './*'] })),
      errors: [
        ['spec.servers[0].hosts[0]', 'short names (non FQDN) are not allowed: "reviews"; use a fully qualified name such as "reviews.<namespace>.svc.cluster.local"'],
        ['spec.servers[0].hosts[1]', 'partial wildcard "*foo.com" not allowed; use "*" or "*.<domain>"'],
      ],
    },
    {
      name: 'bind address and unix sockets',
      spec: gw(
        server({ bind: 'localhost' }),
        server({ port: { number: 81, protocol: 'HTTP', name: 'uds' }, bind: 'unix://relative.sock' }),
        server({ port: { number: 0, protocol: 'HTTP', name: 'uds2' }, bind: 'unix:///ok.sock' }),
        server({ port: { number: 0, protocol: 'HTTP', name: 'uds3' }, bind: 'unix://@abstract' }),
      ),
      errors: [
        ['spec.servers[0].bind', 'localhost is not a valid IP'],
        ['spec.servers[1].bind', 'relative.sock is not an absolute path to a file; use unix:///path/to/socket or unix://@abstract-name'],
        ['spec.servers[1].port.number', 'port number must be 0 for unix domain socket (got 81)'],
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
      errors: [['spec.servers[0].tls', 'server must have TLS settings for HTTPS/TLS protocols']],
    },
    {
      name: 'plain HTTP may only redirect',
      spec: gw(server({ tls: { httpsRedirect: true, mode: 'SIMPLE', credentialName: 'c' } })),
      errors: [[T, 'server cannot have TLS settings for plain text HTTP ports (only tls.httpsRedirect is allowed)']],
    },
    { name: 'plain HTTP with httpsRedirect', spec: gw(server({ tls: { httpsRedirect: true } })), errors: [] },
    {
      name: 'TCP server with TLS settings, and httpsRedirect off HTTP',
      spec: gw(server({ port: { number: 31400, protocol: 'TCP', name: 'tcp' }, tls: { httpsRedirect: true } })),
      errors: [[T, 'server cannot have TLS settings for non HTTPS/TLS ports']],
      warnings: [['spec.servers[0].tls.httpsRedirect', 'tls.httpsRedirect should only be used with http servers']],
    },
    {
      name: 'SIMPLE needs a certificate and key or a credential',
      spec: https({ mode: 'SIMPLE' }),
      errors: [
        [`${T}.serverCertificate`, 'SIMPLE TLS requires a server certificate (or use credentialName)'],
        [`${T}.privateKey`, 'SIMPLE TLS requires a private key (or use credentialName)'],
      ],
    },
    {
      name: 'MUTUAL also needs a client CA bundle',
      spec: https({ mode: 'MUTUAL', serverCertificate: '/s.pem', privateKey: '/k.pem' }),
      errors: [[`${T}.caCertificates`, 'MUTUAL TLS requires a client CA bundle (caCertificates, or use credentialName)']],
    },
    { name: 'MUTUAL with a credential', spec: https({ mode: 'MUTUAL', credentialName: 'cred' }), errors: [] },
    {
      name: 'OPTIONAL_MUTUAL with tlsCertificates checks each of them',
      spec: https({ mode: 'OPTIONAL_MUTUAL', tlsCertificates: [{ serverCertificate: '/s.pem', privateKey: '/k.pem' }, { serverCertificate: '/e.pem' }, {}] }),
      errors: [
        [`${T}.caCertificates`, 'MUTUAL TLS requires a client CA bundle (caCertificates, or use credentialName)'],
        [`${T}.tlsCertificates[1].privateKey`, 'MUTUAL TLS requires a private key (or use credentialName)'],
        [`${T}.tlsCertificates[2].serverCertificate`, 'MUTUAL TLS requires a server certificate (or use credentialName)'],
        [`${T}.tlsCertificates[2].privateKey`, 'MUTUAL TLS requires a private key (or use credentialName)'],
      ],
      warnings: [[`${T}.tlsCertificates`, 'MUTUAL TLS can support up to 2 server certificates']],
    },
    {
      name: 'ISTIO_MUTUAL takes no certificates',
      spec: https({ mode: 'ISTIO_MUTUAL', serverCertificate: '/s.pem', privateKey: '/k.pem', caCertificates: '/ca.pem', credentialName: 'c', credentialNames: ['d'], tlsCertificates: [{}] }),
      errors: [
        [`${T}.serverCertificate`, 'ISTIO_MUTUAL TLS cannot have associated server certificate'],
        [`${T}.privateKey`, 'ISTIO_MUTUAL TLS cannot have associated private key'],
        [`${T}.caCertificates`, 'ISTIO_MUTUAL TLS cannot have associated CA bundle'],
        [`${T}.tlsCertificates`, 'ISTIO_MUTUAL TLS cannot have associated tlsCertificates'],
        [`${T}.credentialName`, 'ISTIO_MUTUAL TLS cannot have associated credentialName'],
        [`${T}.credentialNames`, 'ISTIO_MUTUAL TLS cannot have associated credentialNames'],
      ],
    },
    {
      name: 'passthrough ignores certificates (warning)',
      spec: gw(server({ port: { number: 443, protocol: 'TLS', name: 'tls' }, tls: { mode: 'PASSTHROUGH', credentialName: 'c' } })),
      errors: [],
      warnings: [[T, 'PASSTHROUGH mode does not use certificates, they will be ignored']],
    },
    {
      name: 'one certificate source, protocol versions in order',
      spec: https({ mode: 'SIMPLE', credentialName: 'a', credentialNames: ['b'], minProtocolVersion: 'TLSV1_3', maxProtocolVersion: 'TLSV1_2' }),
      errors: [
        [`${T}.maxProtocolVersion`, 'maxProtocolVersion TLSV1_2 must not be lower than minProtocolVersion TLSV1_3'],
        [T, 'only one of credentialName, credentialNames, serverCertificate/privateKey, tlsCertificates should be specified'],
      ],
    },
    {
      name: 'CRL with a credential or with SIMPLE',
      spec: gw(
        server({ port: { number: 443, protocol: 'HTTPS', name: 'a' }, tls: { mode: 'SIMPLE', serverCertificate: '/s', privateKey: '/k', caCrl: '/crl' } }),
        server({ port: { number: 444, protocol: 'HTTPS', name: 'b' }, tls: { mode: 'OPTIONAL_MUTUAL', credentialName: 'c', caCrl: '/crl' } }),
      ),
      errors: [['spec.servers[0].tls.caCrl', 'CRL is not supported with SIMPLE TLS']],
    },
    {
      name: 'cipher suites and old TLS versions (warnings)',
      spec: gw(
        server({ port: { number: 443, protocol: 'HTTPS', name: 'a' }, tls: { mode: 'SIMPLE', credentialName: 'c', cipherSuites: ['ECDHE-RSA-AES128-GCM-SHA256', 'NOT-A-CIPHER', 'ECDHE-RSA-AES128-GCM-SHA256'] } }),
        server({ port: { number: 444, protocol: 'HTTPS', name: 'b' }, tls: { mode: 'SIMPLE', credentialName: 'c', minProtocolVersion: 'TLSV1_1' } }),
      ),
      errors: [],
      warnings: [
        [`${T}.cipherSuites`, 'ignoring invalid cipher suites: [NOT-A-CIPHER]'],
        [`${T}.cipherSuites`, 'ignoring duplicate cipher suites: [ECDHE-RSA-AES128-GCM-SHA256]'],
        ['spec.servers[1].tls.minProtocolVersion', 'TLS version below TLSV1_2 require setting compatible ciphers as by default they no longer include compatible ciphers'],
      ],
    },
  ];
  runCases('Gateway', cases);
});
