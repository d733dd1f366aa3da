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
      warnings: [['spec.workloadSelector', 'workloadSelector has no labels: the sidecar applies to every workload of the namespace']],
    },
    {
      name: 'egressProxy only with ALLOW_ANY, and with a port',
      spec: { outboundTrafficPolicy: { mode: 'REGISTRY_ONLY', egressProxy: { host: 'proxy.example.com' } } },
      errors: [
        ['spec.outboundTrafficPolicy.egressProxy', 'sidecar: egressProxy must be set only with outboundTrafficPolicy mode ALLOW_ANY'],
        ['spec.outboundTrafficPolicy.egressProxy.port', 'sidecar: egressProxy port must be set'],
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
        ['spec.ingress[3].port.name', 'invalid port name "A": must be a DNS-1123 label (lower case alphanumerics and "-", at most 63 characters)'],
        ['spec.ingress[3].port.protocol', 'invalid protocol "XX"; supported protocols: HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, HTTP_PROXY, TCP, TLS, UDP, MONGO, REDIS, MYSQL, THRIFT'],
        ['spec.ingress[3].port.number', 'port number 0 must be in the range 1..65535'],
      ],
      warnings: [['spec.ingress[3].port.targetPort', 'targetPort has no effect on Sidecar listeners']],
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
        ['spec.ingress[0].defaultEndpoint', 'sidecar: defaultEndpoint "10.0.0.1:8080" must be of form 127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:<port>, [::]:<port>, unix://filepath, or unset'],
        ['spec.ingress[1].defaultEndpoint', 'sidecar: defaultEndpoint port "http" is not a number'],
        ['spec.ingress[2].defaultEndpoint', 'unix address "unix://sock" must be an absolute path or an abstract socket "@name", such as "unix:///var/run/app.sock"'],
        ['spec.ingress[3].defaultEndpoint', 'port number 0 must be in the range 1..65535'],
        ['spec.ingress[4].defaultEndpoint', 'sidecar: defaultEndpoint "localhost" must be of form 127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:<port>, [::]:<port>, unix://filepath, or unset'],
      ],
    },
    {
      name: 'ingress bind and TLS restrictions',
      spec: { ingress: [{ port: { number: 443, protocol: 'HTTPS', name: 'https' }, bind: 'nope', tls: { mode: 'SIMPLE', credentialName: 'c', httpsRedirect: true, subjectAltNames: ['a'] } }] },
      errors: [
        ['spec.ingress[0].bind', '"nope" is not a valid IP address'],
        ['spec.ingress[0].tls.subjectAltNames', 'sidecar: subjectAltNames is not supported in ingress tls'],
        ['spec.ingress[0].tls.httpsRedirect', 'sidecar: httpsRedirect is not supported'],
        ['spec.ingress[0].tls.credentialName', 'sidecar: credentialName is not currently supported'],
      ],
    },
    {
      name: 'ingress TLS certificate rules',
      spec: { ingress: [{ port: { number: 443, protocol: 'HTTPS', name: 'https' }, tls: { mode: 'MUTUAL', serverCertificate: '/s.pem', privateKey: '/k.pem' } }] },
      errors: [['spec.ingress[0].tls.caCertificates', 'MUTUAL TLS requires a client CA bundle in caCertificates (or credentialName)']],
    },
  ];
  runCases('Sidecar', cases);
});

describe('Sidecar: egress', () => {
  const cases: RuleCase[] = [
    {
      name: 'catch-all listener must be last and alone',
      spec: { egress: [{ hosts: ['./*'] }, { port: http, hosts: ['./*'] }, { hosts: ['*/*'] }, { hosts: ['*/*'] }] },
      errors: [
        ['spec.egress[0]', 'sidecar: the egress listener with empty port should be the last listener in the list'],
        ['spec.egress[2]', 'sidecar: egress can have only one listener with empty port'],
        ['spec.egress[3]', 'sidecar: egress can have only one listener with empty port'],
      ],
    },
    {
      name: 'hosts must be namespace/dnsName',
      spec: { egress: [{ hosts: [] }, { port: http, hosts: ['reviews', 'Bad/a', '~/*', './a..b', './*', './*'] }] },
      errors: [
        ['spec.egress[0]', 'sidecar: the egress listener with empty port should be the last listener in the list'],
        ['spec.egress[0].hosts', 'sidecar: egress listener must contain at least one host'],
        ['spec.egress[1].hosts[0]', 'host "reviews" must be of the form namespace/dnsName, such as "*/reviews" or "./reviews"'],
        ['spec.egress[1].hosts[1]', 'invalid namespace "Bad" in sidecar host "Bad/a": use "*", ".", "~" or a namespace name'],
        ['spec.egress[1].hosts[3]', 'domain name "a..b" invalid (label "" invalid)'],
      ],
      warnings: [['spec.egress[1].hosts[5]', 'duplicated egress host: ./*']],
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
        ['spec.egress[1].bind', '"not-an-ip" is not a valid IP address'],
        ['spec.egress[1].port.number', 'sidecar: ports on IP bound listeners must be unique (port 9080 repeats)'],
        ['spec.egress[2].bind', 'sidecar: ports with 0 value must have a unix domain socket bind address'],
        ['spec.egress[3].captureMode', 'sidecar: captureMode must be DEFAULT or NONE for unix domain socket listeners'],
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
