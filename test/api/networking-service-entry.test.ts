// ServiceEntry semantic rules (Istio's ValidateServiceEntry): hosts,
// addresses, ports, resolution and endpoint forms, exportTo.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { istioKinds, validateObject } from '../../src/api/index.ts';
import { runCases } from './networking-helpers.ts';
import type { RuleCase } from './networking-helpers.ts';

const http = { number: 80, protocol: 'HTTP', name: 'http' };
const PROTOCOLS = 'HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, HTTP_PROXY, TCP, TLS, UDP, MONGO, REDIS, MYSQL, THRIFT';
const NO_VIP = 'addresses are required for ports serving TCP (or unset) protocol when IP Autoallocation is not enabled';

describe('ServiceEntry: hosts, addresses, ports', () => {
  const cases: RuleCase[] = [
    { name: 'no hosts', spec: { hosts: [], ports: [http] }, errors: [['spec.hosts', 'service entry must have at least one host']] },
    {
      name: 'full wildcard and malformed hosts',
      spec: { hosts: ['*', 'a_b.com', '*.ok.com'], ports: [http] },
      errors: [
        ['spec.hosts[0]', 'invalid host *: a service entry cannot claim every host; use a domain such as "*.example.com"'],
        ['spec.hosts[1]', 'domain name "a_b.com" invalid (label "a_b" invalid)'],
      ],
    },
    {
      name: 'partial wildcard (warning)',
      spec: { hosts: ['*api.example.com'], ports: [http] },
      errors: [],
      warnings: [['spec.hosts[0]', 'partial wildcard "*api.example.com" not allowed; use "*" or "*.<domain>"']],
    },
    {
      name: 'addresses are IPs or CIDRs',
      spec: { hosts: ['a.com'], addresses: ['1.2.3', '10.0.0.0/40', '2001:db8::/64'], ports: [http] },
      errors: [
        ['spec.addresses[0]', '1.2.3 is not a valid IP'],
        ['spec.addresses[1]', '10.0.0.0/40 is not a valid CIDR block'],
      ],
    },
    {
      name: 'CIDR addresses only with NONE or STATIC',
      spec: { hosts: ['a.com'], addresses: ['10.0.0.0/8'], ports: [http], resolution: 'DNS' },
      errors: [['spec.addresses', 'CIDR addresses are allowed only for NONE/STATIC resolution types (resolution is DNS)']],
    },
    {
      name: 'ports unique by number and name, valid names, numbers and protocols',
      spec: { hosts: ['a.com'], resolution: 'DNS', ports: [http, { number: 80, protocol: 'HTTP', name: 'http' }, { number: 0, protocol: 'FTP', name: 'Bad_Name', targetPort: 70000 }] },
      errors: [
        ['spec.ports[1].name', 'service entry port name "http" already defined'],
        ['spec.ports[1].number', 'service entry port 80 already defined'],
        ['spec.ports[2].targetPort', 'port number 70000 must be in the range 1..65535'],
        ['spec.ports[2].name', 'invalid port name: "Bad_Name": must be a DNS-1123 label (lower case alphanumerics and "-", at most 63 characters)'],
        ['spec.ports[2].protocol', `unsupported protocol: "FTP"; supported protocols: ${PROTOCOLS}`],
        ['spec.ports[2].number', 'port number 0 must be in the range 1..65535'],
      ],
    },
    {
      name: 'port names are required',
      spec: { hosts: ['a.com'], resolution: 'DNS', ports: [{ number: 80, protocol: 'HTTP' }] },
      errors: [['spec.ports[0].name', 'invalid port name: "": must be a DNS-1123 label (lower case alphanumerics and "-", at most 63 characters)']],
    },
    {
      name: 'several hosts cannot share a plain TCP port',
      spec: { hosts: ['a.com', 'b.com'], resolution: 'DNS', ports: [http, { number: 5432, protocol: 'TCP', name: 'pg' }] },
      errors: [['spec.ports[1]', 'multiple hosts provided with non-HTTP, non-TLS ports']],
    },
    {
      name: 'DNS with addresses, several hosts and a TLS port (warning)',
      spec: { hosts: ['a.com', 'b.com'], addresses: ['240.0.0.1'], resolution: 'DNS', ports: [{ number: 443, protocol: 'TLS', name: 'tls' }] },
      errors: [],
      warnings: [['spec.hosts', 'service entry can not have more than one host specified simultaneously with address and tcp port']],
    },
    { name: 'exportTo "~" alone is fine for ServiceEntry', spec: { hosts: ['a.com'], ports: [http], exportTo: ['~'] }, errors: [] },
    {
      name: 'exportTo "~" with someone',
      spec: { hosts: ['a.com'], ports: [http], exportTo: ['~', 'foo'] },
      errors: [['spec.exportTo', 'cannot export service entry to no one (~) and someone']],
    },
    {
      name: 'workloadSelector and endpoints together',
      spec: { hosts: ['a.com'], ports: [http], resolution: 'STATIC', workloadSelector: { labels: { app: 'x' } }, endpoints: [{ address: '1.1.1.1' }] },
      errors: [['spec', 'only one of workloadSelector or endpoints is allowed in a service entry']],
    },
    {
      name: 'workloadSelector with wildcard',
      spec: { hosts: ['a.com'], ports: [http], resolution: 'STATIC', workloadSelector: { labels: { app: '*' } } },
      errors: [['spec.workloadSelector.labels.app', 'wildcard is not supported in selector: "app=*"; labels match exact values']],
    },
    {
      name: 'workloadSelector without labels (warning)',
      spec: { hosts: ['a.com'], ports: [http], resolution: 'STATIC', workloadSelector: {} },
      errors: [],
      warnings: [['spec.workloadSelector', 'service entry: workload selector specified without labels, will be applied to all services in namespace']],
    },
  ];
  runCases('ServiceEntry', cases);
});

describe('ServiceEntry: resolution', () => {
  const cases: RuleCase[] = [
    {
      name: 'NONE takes no endpoints, and a selector is pointless',
      spec: { hosts: ['*.a.com'], addresses: ['10.0.0.1'], ports: [http], resolution: 'NONE', endpoints: [{ address: '1.1.1.1' }], workloadSelector: { labels: { a: 'b' } } },
      errors: [
        ['spec', 'only one of workloadSelector or endpoints is allowed in a service entry'],
        ['spec.endpoints', 'no endpoints should be provided for resolution type NONE (traffic goes to the address the client asked for)'],
      ],
      warnings: [['spec.workloadSelector', 'workloadSelector should not be set when resolution mode is NONE']],
    },
    {
      name: 'NONE, no addresses: TCP and unset protocols need a VIP (warning)',
      spec: { hosts: ['*.a.com'], ports: [{ number: 5432, protocol: 'TCP', name: 'tcp' }, { number: 443, protocol: 'TLS', name: 'tls' }, { number: 9000, name: 'sniffed' }] },
      errors: [],
      warnings: [['spec.ports[0]', NO_VIP], ['spec.ports[2]', NO_VIP]],
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
        ['spec.endpoints[0].address', 'endpoint address "db.a.com" is not a valid IP address (resolution STATIC needs IPs or unix:// sockets)'],
        ['spec.endpoints[1].ports.grpc', 'endpoint port 9090 ("grpc") is not defined by the service entry; its ports are: http'],
        ['spec.endpoints[1].ports.http', 'port number 0 must be in the range 1..65535'],
        ['spec.endpoints[3].address', 'address is required (an IP, a DNS name or unix:///path), unless network is set'],
      ],
      warnings: [['spec.endpoints[2].address', 'address is unset with network "n1"']],
    },
    {
      name: 'STATIC unix endpoint needs exactly one service port and no endpoint ports',
      spec: {
        hosts: ['a.com'],
        ports: [http, { number: 81, protocol: 'HTTP', name: 'h2' }],
        resolution: 'STATIC',
        endpoints: [{ address: 'unix:///var/run/a.sock', ports: { http: 80 } }, { address: 'unix://' }],
      },
      errors: [
        ['spec.endpoints[0].ports', 'unix endpoint unix:///var/run/a.sock must not include ports'],
        ['spec.endpoints[0].address', 'exactly 1 service port required for unix endpoints'],
        ['spec.endpoints[1].address', 'unix address must not be empty; use unix:///path/to/socket or unix://@abstract-name'],
        ['spec.endpoints[1].address', 'exactly 1 service port required for unix endpoints'],
      ],
    },
    {
      name: 'DNS without endpoints resolves the hosts: no wildcards',
      spec: { hosts: ['*.a.com', 'b.com'], ports: [http], resolution: 'DNS' },
      errors: [['spec.hosts[0]', 'hosts must be FQDN if no endpoints are provided for resolution mode DNS ("*.a.com" is not)']],
    },
    { name: 'DYNAMIC_DNS takes wildcard hosts', spec: { hosts: ['*.a.com'], ports: [http], resolution: 'DYNAMIC_DNS' }, errors: [] },
    {
      name: 'DNS endpoints are names or IPs, not sockets',
      spec: { hosts: ['*.a.com'], ports: [http], resolution: 'DNS', endpoints: [{ address: 'x_y.com' }, { address: 'unix:///s.sock' }, { address: 'ok.a.com' }, { address: '1.2.3.4' }] },
      errors: [
        ['spec.endpoints[0].address', 'endpoint address "x_y.com" is not a valid FQDN or an IP address'],
        ['spec.endpoints[1].address', 'endpoint address "unix:///s.sock" is not a valid FQDN or an IP address (unix sockets need resolution STATIC)'],
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

  it('a DNS entry without addresses gets a VIP, unless it opts out by label', () => {
    const spec = { hosts: ['db.example.com'], ports: [{ number: 5432, protocol: 'TCP', name: 'pg' }], resolution: 'DNS' };
    const check = (labels?: Record<string, string>) =>
      validateObject({ apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'db', labels }, spec }, istioKinds).diagnostics.map((d) => [d.severity, d.path, d.message]);
    assert.deepEqual(check(), []);
    assert.deepEqual(check({ 'networking.istio.io/enable-autoallocate-ip': 'false' }), [['warning', 'spec.ports[0]', NO_VIP]]);
  });
});
