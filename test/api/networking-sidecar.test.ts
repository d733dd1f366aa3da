// Sidecar semantic rules (Istio's ValidateSidecar): ingress ports and default
// endpoints, egress listeners and hosts, outbound traffic policy.

import { describe } from 'node:test';
import { runCases } from './networking-helpers.ts';
import type { RuleCase } from './networking-helpers.ts';

const http = { number: 9080, protocol: 'HTTP', name: 'http' };

describe('Sidecar: general', () => {
  const cases: RuleCase[] = [
    { name: 'empty configuration', spec: {}, errors: [['spec', 'sidecar: empty configuration provided; set ingress, egress, outboundTrafficPolicy or inboundConnectionPool']] },
    {
      name: 'selector without labels (warning)',
      spec: { workloadSelector: {}, egress: [{ hosts: ['./*'] }] },
      errors: [],
      warnings: [['spec.workloadSelector', 'sidecar: workload selector specified without labels, will be applied to all services in namespace']],
    },
    {
      name: 'selector labels: empty key, wildcard',
      spec: { workloadSelector: { labels: { '': 'x', app: 'a*' } }, egress: [{ hosts: ['./*'] }] },
      errors: [
        ['spec.workloadSelector.labels', 'empty key is not supported in selector: "=x"'],
        ['spec.workloadSelector.labels.app', 'wildcard is not supported in selector: "app=a*"; labels match exact values'],
      ],
    },
    {
      name: 'egressProxy only with ALLOW_ANY',
      spec: { outboundTrafficPolicy: { mode: 'REGISTRY_ONLY', egressProxy: { host: 'proxy.example.com' } } },
      errors: [['spec.outboundTrafficPolicy.egressProxy', 'sidecar: egressProxy must be set only with ALLOW_ANY outboundTrafficPolicy mode']],
    },
    {
      name: 'egressProxy host is an FQDN, with a port',
      spec: { outboundTrafficPolicy: { mode: 'ALLOW_ANY', egressProxy: { host: '*.proxy.com' } } },
      errors: [
        ['spec.outboundTrafficPolicy.egressProxy.host', 'domain name "*.proxy.com" invalid (wildcards are not allowed here)'],
        ['spec.outboundTrafficPolicy.egressProxy.port', 'sidecar: egressProxy port must be non-nil'],
      ],
    },
    {
      name: 'egressProxy subset and port number',
      spec: { outboundTrafficPolicy: { mode: 'ALLOW_ANY', egressProxy: { host: 'proxy.com', subset: 'V1', port: { number: 0 } } } },
      errors: [
        ['spec.outboundTrafficPolicy.egressProxy.subset', 'subset name is invalid: "V1": must be a DNS-1123 label (lower case alphanumerics and "-", at most 63 characters)'],
        ['spec.outboundTrafficPolicy.egressProxy.port.number', 'port number 0 must be in the range 1..65535'],
      ],
    },
    {
      name: 'inbound connection pool',
      spec: { inboundConnectionPool: { http: { maxRetries: -1 } } },
      errors: [['spec.inboundConnectionPool.http.maxRetries', 'max retries must be non-negative (got -1)']],
    },
  ];
  runCases('Sidecar', cases);
});

describe('Sidecar: ingress', () => {
  const cases: RuleCase[] = [
    {
      name: 'port required, unique, valid',
      spec: { ingress: [{ defaultEndpoint: '127.0.0.1:8080' }, { port: http }, { port: { ...http, name: 'http2' } }, { port: { number: 0, protocol: 'XX', name: 'A', targetPort: 1 } }] },
      errors: [
        ['spec.ingress[0].port', 'sidecar: port is required for ingress listeners'],
        ['spec.ingress[2].port.number', 'sidecar: ports on IP bound listeners must be unique (port 9080 repeats)'],
        ['spec.ingress[3].port.targetPort', 'targetPort has no impact on Sidecars; use defaultEndpoint to pick the application port'],
        ['spec.ingress[3].port.name', 'invalid port name: "A": must be a DNS-1123 label (lower case alphanumerics and "-", at most 63 characters)'],
        ['spec.ingress[3].port.protocol', 'unsupported protocol: "XX"; supported protocols: HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, HTTP_PROXY, TCP, TLS, UDP, MONGO, REDIS, MYSQL, THRIFT'],
        ['spec.ingress[3].port.number', 'port number 0 must be in the range 1..65535'],
      ],
    },
    {
      name: 'default endpoint forms',
      spec: { ingress: [
        { port: { number: 1 }, defaultEndpoint: '10.0.0.1:8080' },
        { port: { number: 2 }, defaultEndpoint: '127.0.0.1:http' },
        { port: { number: 3 }, defaultEndpoint: 'unix://sock' },
        { port: { number: 4 }, defaultEndpoint: '[::1]:0' },
        { port: { number: 5 }, defaultEndpoint: 'localhost' },
        { port: { number: 6 }, defaultEndpoint: ':8080' },
        { port: { number: 7 }, defaultEndpoint: '[::]:9090' },
        { port: { number: 8 }, defaultEndpoint: 'unix://@abstract' },
      ] },
      errors: [
        ['spec.ingress[0].defaultEndpoint', 'sidecar: defaultEndpoint "10.0.0.1:8080" must be of form 127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:<port>, [::]:<port>, :<port>, unix://filepath or unset'],
        ['spec.ingress[1].defaultEndpoint', 'sidecar: defaultEndpoint port (http) is not a number'],
        ['spec.ingress[2].defaultEndpoint', 'sock is not an absolute path to a file; use unix:///path/to/socket or unix://@abstract-name'],
        ['spec.ingress[3].defaultEndpoint', 'port number 0 must be in the range 1..65535'],
        ['spec.ingress[4].defaultEndpoint', 'sidecar: defaultEndpoint "localhost" must be of form 127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:<port>, [::]:<port>, :<port>, unix://filepath or unset'],
      ],
    },
    {
      name: 'ingress bind and TLS restrictions',
      spec: { ingress: [{ port: { number: 443, protocol: 'HTTPS', name: 'https' }, bind: 'nope', tls: { mode: 'SIMPLE', credentialName: 'c', httpsRedirect: true, subjectAltNames: ['a'] } }] },
      errors: [
        ['spec.ingress[0].bind', 'nope is not a valid IP'],
        ['spec.ingress[0].tls.subjectAltNames', 'sidecar: subjectAltNames is not supported in ingress tls'],
        ['spec.ingress[0].tls.httpsRedirect', 'sidecar: httpsRedirect is not supported'],
        ['spec.ingress[0].tls.credentialName', 'sidecar: credentialName is not currently supported'],
      ],
    },
    {
      name: 'ingress TLS: unsupported modes and sources, non-TLS port',
      spec: { ingress: [{ port: { number: 8080, protocol: 'HTTP', name: 'http' }, tls: { mode: 'ISTIO_MUTUAL', credentialNames: ['a'], tlsCertificates: [{}] } }] },
      errors: [
        ['spec.ingress[0].tls.credentialNames', 'sidecar: credentialNames is not currently supported'],
        ['spec.ingress[0].tls.tlsCertificates', 'sidecar: tlsCertificates is not currently supported'],
        ['spec.ingress[0].tls.mode', 'cannot set mode to ISTIO_MUTUAL in sidecar ingress tls; use SIMPLE, MUTUAL or OPTIONAL_MUTUAL'],
        ['spec.ingress[0].tls', 'server cannot have TLS settings for non HTTPS/TLS ports'],
        ['spec.ingress[0].tls.tlsCertificates', 'ISTIO_MUTUAL TLS cannot have associated tlsCertificates'],
        ['spec.ingress[0].tls.credentialNames', 'ISTIO_MUTUAL TLS cannot have associated credentialNames'],
      ],
    },
    {
      name: 'HTTP pool settings on a TCP port (warning)',
      spec: { ingress: [{ port: { number: 5432, protocol: 'TCP', name: 'pg' }, connectionPool: { http: { maxRetries: 1 } } }] },
      errors: [],
      warnings: [['spec.ingress[0].connectionPool.http', 'sidecar: HTTP connection pool settings are configured for port 5432 ("pg") but its protocol is not HTTP (TCP); only TCP settings will apply']],
    },
    {
      name: 'ingress TLS certificate rules',
      spec: { ingress: [{ port: { number: 443, protocol: 'HTTPS', name: 'https' }, tls: { mode: 'MUTUAL', serverCertificate: '/s.pem', privateKey: '/k.pem' } }] },
      errors: [['spec.ingress[0].tls.caCertificates', 'MUTUAL TLS requires a client CA bundle (caCertificates, or use credentialName)']],
    },
  ];
  runCases('Sidecar', cases);
});

describe('Sidecar: egress', () => {
  const cases: RuleCase[] = [
    {
      name: 'the catch-all listener (no port) must be last',
      spec: { egress: [{ hosts: ['./*'] }, { port: http, hosts: ['./*'] }, { hosts: ['*/*'] }, { hosts: ['*/*'] }] },
      errors: [
        ['spec.egress[0]', 'sidecar: the egress listener with empty port should be the last listener in the list'],
        ['spec.egress[2]', 'sidecar: the egress listener with empty port should be the last listener in the list'],
      ],
    },
    {
      name: 'hosts must be namespace/dnsName',
      spec: { egress: [{ hosts: [] }, { port: http, hosts: ['reviews', 'Bad/a.com', '~/*', './a..b', 'ns/*x.com', 'ns/svc'] }] },
      errors: [
        ['spec.egress[0]', 'sidecar: the egress listener with empty port should be the last listener in the list'],
        ['spec.egress[0].hosts', 'sidecar: egress listener must contain at least one host'],
        ['spec.egress[1].hosts[0]', 'host "reviews" must be of form namespace/dnsName, such as "*/reviews" or "./reviews"'],
        ['spec.egress[1].hosts[1]', 'invalid namespace value "Bad" in sidecar host "Bad/a.com": use "*", ".", "~" or a namespace name'],
        ['spec.egress[1].hosts[3]', 'domain name "a..b" invalid (label "" invalid)'],
        ['spec.egress[1].hosts[4]', 'partial wildcard "*x.com" not allowed; use "*" or "*.<domain>"'],
        ['spec.egress[1].hosts[5]', 'short names (non FQDN) are not allowed: "svc"; use a fully qualified name such as "svc.<namespace>.svc.cluster.local"'],
      ],
    },
    {
      name: 'duplicated and shadowed hosts (warnings)',
      namespace: 'bookinfo',
      spec: { egress: [{ hosts: ['./a.example.com', 'bookinfo/a.example.com', 'bookinfo/*', 'istio-system/*', 'istio-system/b.example.com', '*/*'] }] },
      errors: [],
      warnings: [
        ['spec.egress[0].hosts[1]', 'duplicated egress host: bookinfo/a.example.com'],
        ['spec.egress[0].hosts[2]', 'duplicated egress host: bookinfo/*'],
        ['spec.egress[0].hosts[4]', 'duplicated egress host: istio-system/b.example.com'],
        ['spec.egress[0].hosts', '`*/*` host select all resources, no other hosts can be added'],
      ],
    },
    {
      name: 'ports unique, unix sockets with port 0',
      spec: { egress: [
        { port: http, bind: '127.0.0.1', hosts: ['./*'] },
        { port: http, bind: 'not-an-ip', hosts: ['./*'] },
        { port: { number: 0 }, hosts: ['./*'] },
        { port: { number: 0 }, bind: 'unix:///a.sock', captureMode: 'IPTABLES', hosts: ['./*'] },
        { port: { number: 0 }, bind: 'unix:///a.sock', hosts: ['./*'] },
      ] },
      errors: [
        ['spec.egress[1].bind', 'not-an-ip is not a valid IP'],
        ['spec.egress[1].port.number', 'sidecar: ports on IP bound listeners must be unique (port 9080 repeats)'],
        ['spec.egress[2].bind', 'sidecar: ports with 0 value must have a unix domain socket bind address'],
        ['spec.egress[3].captureMode', 'sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners'],
        ['spec.egress[4].bind', 'sidecar: unix domain socket values for listeners must be unique'],
      ],
    },
    {
      name: 'unknown capture mode',
      spec: { egress: [{ captureMode: 'EBPF', hosts: ['./*'] }] },
      errors: [['spec.egress[0].captureMode', 'invalid value string "EBPF"; allowed: "DEFAULT", "IPTABLES", "NONE"']],
    },
  ];
  runCases('Sidecar', cases);
});
