// ServiceEntry semantic rules (Istio's ValidateServiceEntry): hosts,
// addresses, ports, resolution and endpoint forms, exportTo.

import { describe } from 'node:test';
import { runCases } from './networking-helpers.ts';
import type { RuleCase } from './networking-helpers.ts';

const http = { number: 80, protocol: 'HTTP', name: 'http' };

describe('ServiceEntry: hosts, addresses, ports', () => {
  const cases: RuleCase[] = [
    { name: 'no hosts', spec: { hosts: [], ports: [http] }, errors: [['spec.hosts', 'service entry must have at least one host']] },
    {
      name: 'full wildcard and malformed hosts',
      spec: { hosts: ['*', 'a_b.com', '*.ok.com'], ports: [http] },
      errors: [
        ['spec.hosts[0]', 'invalid host "*": a service entry cannot claim every host; use a domain such as "*.example.com"'],
        ['spec.hosts[1]', 'domain name "a_b.com" invalid (label "a_b" invalid)'],
      ],
    },
    {
      name: 'addresses are IPs or CIDRs',
      spec: { hosts: ['a.com'], addresses: ['1.2.3', '10.0.0.0/40', '2001:db8::/64'], ports: [http] },
      errors: [
        ['spec.addresses[0]', '"1.2.3" is not a valid IP address or CIDR block'],
        ['spec.addresses[1]', '"10.0.0.0/40" has an invalid prefix length (0..32)'],
      ],
    },
    {
      name: 'CIDR addresses only with NONE or STATIC',
      spec: { hosts: ['a.com'], addresses: ['10.0.0.0/8'], ports: [http], resolution: 'DNS' },
      errors: [['spec.addresses', 'CIDR addresses are allowed only when resolution is NONE or STATIC (resolution is DNS)']],
    },
    {
      name: 'ports unique by number and name, valid names, numbers and protocols',
      spec: { hosts: ['a.com'], ports: [http, { number: 80, protocol: 'HTTP', name: 'http' }, { number: 0, protocol: 'FTP', name: 'Bad_Name', targetPort: 70000 }] },
      errors: [
        ['spec.ports[1].name', 'service entry port name "http" already defined'],
        ['spec.ports[1].number', 'service entry port 80 already defined'],
        ['spec.ports[2].name', 'invalid port name "Bad_Name": must be a DNS-1123 label (lower case alphanumerics and "-", at most 63 characters)'],
        ['spec.ports[2].number', 'port number 0 must be in the range 1..65535'],
        ['spec.ports[2].targetPort', 'port number 70000 must be in the range 1..65535'],
        ['spec.ports[2].protocol', 'invalid protocol "FTP"; supported protocols: HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, HTTP_PROXY, TCP, TLS, UDP, MONGO, REDIS, MYSQL, THRIFT'],
      ],
      warnings: [['spec.ports[2]', 'port 0 (FTP) of a service entry with resolution NONE and no addresses matches all traffic to that port; set addresses or use an HTTP/TLS protocol']],
    },
    {
      name: 'exportTo "~" alone is fine for ServiceEntry',
      spec: { hosts: ['a.com'], ports: [http], exportTo: ['~'] },
      errors: [],
    },
    {
      name: 'exportTo "~" with someone',
      spec: { hosts: ['a.com'], ports: [http], exportTo: ['~', 'foo'] },
      errors: [['spec.exportTo', 'exportTo cannot export to no one ("~") and to someone at the same time']],
    },
    {
      name: 'workloadSelector and endpoints together',
      spec: { hosts: ['a.com'], ports: [http], resolution: 'STATIC', workloadSelector: { labels: { app: 'x' } }, endpoints: [{ address: '1.1.1.1' }] },
      errors: [['spec', 'only one of workloadSelector or endpoints is allowed in a service entry']],
    },
    {
      name: 'workloadSelector with wildcard',
      spec: { hosts: ['a.com'], ports: [http], resolution: 'STATIC', workloadSelector: { labels: { app: '*' } } },
      errors: [['spec.workloadSelector.labels.app', 'wildcard is not supported in selector: labels match exact values']],
    },
  ];
  runCases('ServiceEntry', cases);
});

describe('ServiceEntry: resolution', () => {
  const cases: RuleCase[] = [
    {
      name: 'NONE takes no endpoints',
      spec: { hosts: ['*.a.com'], addresses: ['10.0.0.1'], ports: [http], resolution: 'NONE', endpoints: [{ address: '1.1.1.1' }] },
      errors: [['spec.endpoints', 'no endpoints should be provided for resolution type NONE (the original destination address is used)']],
    },
    {
      name: 'NONE, no addresses, wildcard host, TCP port (warning)',
      spec: { hosts: ['*.a.com'], ports: [{ number: 5432, protocol: 'TCP', name: 'tcp' }, { number: 443, protocol: 'TLS', name: 'tls' }], resolution: 'NONE' },
      errors: [],
      warnings: [['spec.ports[0]', 'port 5432 (TCP) of a service entry with resolution NONE and no addresses matches all traffic to that port; set addresses or use an HTTP/TLS protocol']],
    },
    {
      name: 'STATIC without endpoints or selector (warning)',
      spec: { hosts: ['a.com'], ports: [http], resolution: 'STATIC' },
      errors: [],
      warnings: [['spec', 'resolution STATIC without endpoints or a workloadSelector: traffic has no endpoints unless another registry supplies them']],
    },
    {
      name: 'STATIC endpoints must be IPs or unix sockets, ports defined by the entry',
      spec: {
        hosts: ['a.com'],
        ports: [http],
        resolution: 'STATIC',
        endpoints: [{ address: 'db.a.com' }, { address: '10.0.0.1', ports: { grpc: 9090, http: 0 } }, { network: 'n1' }, {}],
      },
      errors: [
        ['spec.endpoints[0].address', 'endpoint address "db.a.com" is not a valid IP address'],
        ['spec.endpoints[1].ports.grpc', 'endpoint port "grpc" is not defined by the service entry; defined: http'],
        ['spec.endpoints[1].ports.http', 'port number 0 must be in the range 1..65535'],
        ['spec.endpoints[3].address', "address is required unless network is set (a workload reached through its network's gateway)"],
      ],
    },
    {
      name: 'STATIC unix endpoint needs exactly one port and no endpoint ports',
      spec: {
        hosts: ['a.com'],
        ports: [http, { number: 81, protocol: 'HTTP', name: 'h2' }],
        resolution: 'STATIC',
        endpoints: [{ address: 'unix:///var/run/a.sock', ports: { http: 80 } }],
      },
      errors: [
        ['spec.endpoints[0].ports', 'unix endpoint unix:///var/run/a.sock must not include ports'],
        ['spec.ports', 'exactly 1 service port required for unix endpoints'],
      ],
    },
    {
      name: 'DNS without endpoints resolves the hosts: no wildcards',
      spec: { hosts: ['*.a.com', 'b.com'], ports: [http], resolution: 'DNS' },
      errors: [['spec.hosts[0]', 'host "*.a.com" must be a fully qualified name without wildcards: resolution DNS with no endpoints resolves the hosts themselves']],
    },
    {
      name: 'DNS endpoints are names or IPs, not sockets',
      spec: { hosts: ['*.a.com'], ports: [http], resolution: 'DNS', endpoints: [{ address: 'x_y.com' }, { address: 'unix:///s.sock' }, { address: 'ok.a.com' }, { address: '1.2.3.4' }] },
      errors: [
        ['spec.endpoints[0].address', 'endpoint address "x_y.com" is not a valid FQDN or an IP address'],
        ['spec.endpoints[1].address', 'unix endpoints are not allowed with resolution DNS; use STATIC'],
      ],
    },
    {
      name: 'DNS_ROUND_ROBIN takes at most one endpoint',
      spec: { hosts: ['a.com'], ports: [http], resolution: 'DNS_ROUND_ROBIN', endpoints: [{ address: 'a1.com' }, { address: 'a2.com' }] },
      errors: [['spec.endpoints', 'there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN']],
    },
    {
      name: 'unknown resolution and location',
      spec: { hosts: ['a.com'], resolution: 'MAGIC', location: 'NEARBY' },
      errors: [
        ['spec.location', 'invalid value string "NEARBY"; allowed: "MESH_EXTERNAL", "MESH_INTERNAL"'],
        ['spec.resolution', 'invalid value string "MAGIC"; allowed: "NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS"'],
      ],
    },
  ];
  runCases('ServiceEntry', cases);
});
