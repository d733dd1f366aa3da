// WorkloadEntry and WorkloadGroup semantic rules (Istio's ValidateWorkloadEntry
// and ValidateWorkloadGroup): address forms, ports, labels, probes.

import { describe } from 'node:test';
import { runCases } from './networking-helpers.ts';
import type { RuleCase } from './networking-helpers.ts';

describe('WorkloadEntry', () => {
  const cases: RuleCase[] = [
    {
      name: 'address required without network (and nothing else is checked)',
      spec: { labels: { 'a b': 'c' } },
      errors: [['spec.address', 'address is required (an IP, a DNS name or unix:///path), unless network is set']],
    },
    { name: 'no address but a network (warning)', spec: { network: 'remote' }, errors: [], warnings: [['spec.address', 'address is unset with network "remote"']] },
    { name: 'a DNS name is an address', spec: { address: 'vm1.example.com' }, errors: [] },
    { name: 'IPv6 address', spec: { address: '2001:db8::7' }, errors: [] },
    {
      name: 'malformed address',
      spec: { address: 'vm_1.example.com' },
      errors: [['spec.address', 'endpoint address "vm_1.example.com" is not a valid FQDN or an IP address']],
    },
    {
      name: 'unix socket endpoint takes no ports',
      spec: { address: 'unix:///var/run/app.sock', ports: { http: 80 } },
      errors: [['spec.ports', 'unix endpoint unix:///var/run/app.sock must not include ports']],
    },
    {
      name: 'port names and numbers, labels',
      spec: { address: '10.0.0.1', ports: { HTTP: 80, grpc: 70000 }, labels: { 'app/': 'x' } },
      errors: [
        ['spec.ports.HTTP', 'invalid port name: "HTTP": must be a DNS-1123 label (lower case alphanumerics and "-", at most 63 characters)'],
        ['spec.ports.grpc', 'port number 70000 must be in the range 1..65535'],
        ['spec.labels["app/"]', 'invalid label key "app/": name must be 1-63 characters of [A-Za-z0-9_.-], starting and ending alphanumeric'],
      ],
    },
    {
      name: 'structure: negative weight, unknown field',
      spec: { address: '10.0.0.1', weight: -1, zone: 'a' },
      errors: [
        ['spec.weight', 'expected number to be >=0'],
        ['spec.zone', 'unknown field "zone"'],
      ],
    },
  ];
  runCases('WorkloadEntry', cases);
});

describe('WorkloadGroup', () => {
  const cases: RuleCase[] = [
    { name: 'template required', spec: {}, errors: [['spec.template', 'required field is missing (expected object)']] },
    { name: 'empty template is fine', spec: { template: {} }, errors: [] },
    {
      name: 'template address (warning), template ports and labels',
      spec: { metadata: { labels: { 'a b': 'c' } }, template: { address: '10.0.0.1', ports: { Bad: 1, ok: 0 }, labels: { 'x/': 'y' } } },
      errors: [
        ['spec.metadata.labels["a b"]', 'invalid label key "a b": name must be 1-63 characters of [A-Za-z0-9_.-], starting and ending alphanumeric'],
        ['spec.template.ports.Bad', 'invalid port name: "Bad": must be a DNS-1123 label (lower case alphanumerics and "-", at most 63 characters)'],
        ['spec.template.ports.ok', 'port number 0 must be in the range 1..65535'],
        ['spec.template.labels["x/"]', 'invalid label key "x/": name must be 1-63 characters of [A-Za-z0-9_.-], starting and ending alphanumeric'],
      ],
      warnings: [['spec.template.address', 'address should not be set in a WorkloadGroup template: each registering workload supplies its own']],
    },
    {
      name: 'probe needs exactly one method',
      spec: { template: {}, probe: { periodSeconds: -1, timeoutSeconds: -2 } },
      errors: [
        ['spec.probe.timeoutSeconds', 'timeoutSeconds must be non-negative (got -2)'],
        ['spec.probe.periodSeconds', 'periodSeconds must be non-negative (got -1)'],
        ['spec.probe', 'one of httpGet, tcpSocket, exec, grpc must be set'],
      ],
    },
    {
      name: 'probe with two methods',
      spec: { template: {}, probe: { tcpSocket: { port: 80 }, exec: { command: ['true'] } } },
      errors: [['spec.probe', 'only one of httpGet, tcpSocket, exec, grpc may be set (found: tcpSocket, exec)']],
    },
    {
      name: 'httpGet port, scheme and headers',
      spec: { template: {}, probe: { httpGet: { port: 0, scheme: 'ftp', httpHeaders: [{ name: 'bad name', value: 'x' }] } } },
      errors: [
        ['spec.probe.httpGet.port', 'port number 0 must be in the range 1..65535'],
        ['spec.probe.httpGet.scheme', 'httpGet.scheme must be one of "HTTPS", "HTTP" (got "ftp")'],
        ['spec.probe.httpGet.httpHeaders[0].name', 'header name bad name is not a valid header name: use letters, digits and "-"'],
      ],
    },
    { name: 'exec needs a command', spec: { template: {}, probe: { exec: {} } }, errors: [['spec.probe.exec.command', 'exec.command is required']] },
    { name: 'tcpSocket port', spec: { template: {}, probe: { tcpSocket: { port: 70000 } } }, errors: [['spec.probe.tcpSocket.port', 'port number 70000 must be in the range 1..65535']] },
    { name: 'grpc port', spec: { template: {}, probe: { grpc: { port: 0, service: 'health' } } }, errors: [['spec.probe.grpc.port', 'port number 0 must be in the range 1..65535']] },
  ];
  runCases('WorkloadGroup', cases);
});
