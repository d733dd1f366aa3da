// ServiceEntry and WorkloadEntry conversion, table-driven against what
// Istio's conversion.go produces: hosts as written, ports and protocols,
// resolutions, location, addresses, exportTo, SANs, inline endpoints with
// port maps, DNS hosts as their own endpoints.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ServiceEntrySpec } from '../../src/api/index.ts';
import type { Service, ServiceEndpoint } from '../../src/pilot/model/index.ts';
import { convertServiceEntry, convertWorkloadEntry, endpointPortFor, parseProtocol } from '../../src/pilot/registry/index.ts';
import { serviceEntry, workloadEntry } from './fixtures/registry-objects.ts';

const ctx = { registry: 'local', trustDomain: 'example.org' };

function convert(spec: ServiceEntrySpec, meta: { labels?: Record<string, string> } = {}) {
  return convertServiceEntry(serviceEntry('shop', 'ext', spec, meta), ctx);
}

const HTTP = { number: 80, name: 'http', protocol: 'HTTP' };

describe('ServiceEntry -> services', () => {
  const cases: { name: string; spec: ServiceEntrySpec; expect: Partial<Service>[] }[] = [
    {
      name: 'one service per host, hosts as written (short names are not expanded)',
      spec: { hosts: ['api.example.com', 'reviews'], ports: [HTTP], resolution: 'DNS' },
      expect: [{ hostname: 'api.example.com', namespace: 'shop' }, { hostname: 'reviews', namespace: 'shop' }],
    },
    {
      name: 'resolution NONE is the default',
      spec: { hosts: ['a.example.com'], ports: [HTTP] },
      expect: [{ resolution: 'NONE' }],
    },
    { name: 'resolution STATIC', spec: { hosts: ['a.example.com'], ports: [HTTP], resolution: 'STATIC' }, expect: [{ resolution: 'STATIC' }] },
    { name: 'resolution DNS', spec: { hosts: ['a.example.com'], ports: [HTTP], resolution: 'DNS' }, expect: [{ resolution: 'DNS' }] },
    { name: 'resolution DNS_ROUND_ROBIN', spec: { hosts: ['a.example.com'], ports: [HTTP], resolution: 'DNS_ROUND_ROBIN' }, expect: [{ resolution: 'DNS_ROUND_ROBIN' }] },
    { name: 'resolution DYNAMIC_DNS resolves by DNS', spec: { hosts: ['*.example.com'], ports: [HTTP], resolution: 'DYNAMIC_DNS' }, expect: [{ resolution: 'DNS' }] },
    {
      name: 'MESH_EXTERNAL is mesh-external; MESH_INTERNAL and unset are not',
      spec: { hosts: ['a.example.com'], ports: [HTTP], location: 'MESH_EXTERNAL' },
      expect: [{ meshExternal: true }],
    },
    { name: 'MESH_INTERNAL', spec: { hosts: ['a.example.com'], ports: [HTTP], location: 'MESH_INTERNAL' }, expect: [{ meshExternal: false }] },
    { name: 'location unset', spec: { hosts: ['a.example.com'], ports: [HTTP] }, expect: [{ meshExternal: false }] },
    {
      name: 'ports keep name, number, protocol and targetPort; unknown or missing protocol is UNSUPPORTED',
      spec: {
        hosts: ['a.example.com'],
        ports: [
          { number: 80, name: 'http', protocol: 'http' },
          { number: 443, name: 'tls', protocol: 'TLS', targetPort: 8443 },
          { number: 9000, name: 'grpc-web', protocol: 'GRPC-WEB' },
          { number: 27017, protocol: 'MONGO' },
          { number: 1, name: 'odd', protocol: 'http-web' },
          { number: 2, name: 'none' },
        ],
      },
      expect: [{
        ports: [
          { name: 'http', port: 80, protocol: 'HTTP' },
          { name: 'tls', port: 443, protocol: 'TLS', targetPort: 8443 },
          { name: 'grpc-web', port: 9000, protocol: 'GRPC-WEB' },
          { name: '', port: 27017, protocol: 'MONGO' },
          { name: 'odd', port: 1, protocol: 'UNSUPPORTED' },
          { name: 'none', port: 2, protocol: 'UNSUPPORTED' },
        ],
      }],
    },
    {
      name: 'addresses: IPs as written, single-address CIDRs become IPs, other CIDRs stay',
      spec: { hosts: ['a.example.com'], ports: [HTTP], addresses: ['240.0.0.1', '10.1.0.0/16', '10.2.3.4/32', '2001:db8::1/128', '240.0.0.1'] },
      expect: [{ addresses: ['240.0.0.1', '10.1.0.0/16', '10.2.3.4', '2001:db8::1'] }],
    },
    { name: 'no addresses', spec: { hosts: ['a.example.com'], ports: [HTTP] }, expect: [{ addresses: [] }] },
    {
      name: 'exportTo as written; unset is the mesh default (empty)',
      spec: { hosts: ['a.example.com', 'b.example.com'], ports: [HTTP], exportTo: ['.', 'istio-system'] },
      expect: [{ exportTo: ['.', 'istio-system'] }, { exportTo: ['.', 'istio-system'] }],
    },
    { name: 'exportTo unset', spec: { hosts: ['a.example.com'], ports: [HTTP] }, expect: [{ exportTo: [] }] },
    {
      name: 'subjectAltNames are the service accounts, then the endpoints\' SPIFFE identities',
      spec: {
        hosts: ['a.example.com'], ports: [HTTP], resolution: 'STATIC', subjectAltNames: ['spiffe://other/ns/x/sa/y'],
        endpoints: [{ address: '10.0.0.1', serviceAccount: 'api' }, { address: '10.0.0.2', serviceAccount: 'api' }, { address: '10.0.0.3' }],
      },
      expect: [{ serviceAccounts: ['spiffe://other/ns/x/sa/y', 'spiffe://example.org/ns/shop/sa/api'] }],
    },
    {
      name: 'workloadSelector is kept for the selector-based endpoints',
      spec: { hosts: ['a.example.com'], ports: [HTTP], resolution: 'STATIC', workloadSelector: { labels: { app: 'api' } } },
      expect: [{ workloadSelector: { app: 'api' } }],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const { services } = convert(c.spec);
      assert.equal(services.length, c.expect.length);
      c.expect.forEach((want, i) => {
        const got = services[i]!;
        for (const [field, value] of Object.entries(want)) assert.deepEqual(got[field as keyof Service], value, field);
      });
    });
  }

  test('labels, registry and origin come from the object', () => {
    const [s] = convert({ hosts: ['a.example.com'], ports: [HTTP] }, { labels: { team: 'x' } }).services;
    assert.deepEqual(s!.labels, { team: 'x' });
    assert.equal(s!.registry, 'local');
    assert.equal(s!.origin, 'ServiceEntry shop/ext');
    assert.equal(s!.workloadSelector, undefined);
  });
});

function summary(eps: readonly ServiceEndpoint[] | undefined) {
  return (eps ?? []).map((e) => `${e.servicePort.name}:${e.servicePort.port} -> ${e.workload.address}:${e.endpointPort}`);
}

describe('ServiceEntry -> endpoints', () => {
  const cases: { name: string; spec: ServiceEntrySpec; host: string; expect: string[] }[] = [
    {
      name: 'inline endpoints: ports outer, endpoints inner; the port map by port name wins, then targetPort, then the port',
      spec: {
        hosts: ['db.internal'], resolution: 'STATIC',
        ports: [{ number: 80, name: 'http', protocol: 'HTTP' }, { number: 443, name: 'https', protocol: 'HTTPS', targetPort: 8443 }, { number: 9090, name: 'metrics', protocol: 'HTTP' }],
        endpoints: [{ address: '10.0.0.1', ports: { http: 8080 } }, { address: '10.0.0.2', ports: { https: 9443 } }],
      },
      host: 'db.internal',
      expect: [
        'http:80 -> 10.0.0.1:8080', 'http:80 -> 10.0.0.2:80',
        'https:443 -> 10.0.0.1:8443', 'https:443 -> 10.0.0.2:9443',
        'metrics:9090 -> 10.0.0.1:9090', 'metrics:9090 -> 10.0.0.2:9090',
      ],
    },
    {
      name: 'a unix socket endpoint has no port',
      spec: { hosts: ['local.sock'], resolution: 'STATIC', ports: [HTTP], endpoints: [{ address: 'unix:///var/run/app.sock' }] },
      host: 'local.sock',
      expect: ['http:80 -> unix:///var/run/app.sock:0'],
    },
    {
      name: 'DNS without endpoints: each host is its own endpoint (on targetPort or the port)',
      spec: { hosts: ['a.example.com', 'b.example.com'], resolution: 'DNS', ports: [HTTP, { number: 443, name: 'tls', protocol: 'TLS', targetPort: 8443 }] },
      host: 'b.example.com',
      expect: ['http:80 -> b.example.com:80', 'tls:443 -> b.example.com:8443'],
    },
    {
      name: 'DNS_ROUND_ROBIN without endpoints: the host itself',
      spec: { hosts: ['a.example.com'], resolution: 'DNS_ROUND_ROBIN', ports: [HTTP] },
      host: 'a.example.com',
      expect: ['http:80 -> a.example.com:80'],
    },
    {
      name: 'DNS with endpoints: the endpoints (hostnames allowed)',
      spec: { hosts: ['a.example.com'], resolution: 'DNS', ports: [HTTP], endpoints: [{ address: 'us.a.example.com' }, { address: 'eu.a.example.com', ports: { http: 8080 } }] },
      host: 'a.example.com',
      expect: ['http:80 -> us.a.example.com:80', 'http:80 -> eu.a.example.com:8080'],
    },
    { name: 'NONE: no endpoints', spec: { hosts: ['a.example.com'], ports: [HTTP] }, host: 'a.example.com', expect: [] },
    { name: 'STATIC without endpoints: none (another registry may supply them)', spec: { hosts: ['a.example.com'], resolution: 'STATIC', ports: [HTTP] }, host: 'a.example.com', expect: [] },
    {
      name: 'a workloadSelector: no inline endpoints (the selected workloads are added by the registry)',
      spec: { hosts: ['a.example.com'], resolution: 'DNS', ports: [HTTP], workloadSelector: { labels: { app: 'a' } } },
      host: 'a.example.com',
      expect: [],
    },
  ];
  for (const c of cases) {
    test(c.name, () => assert.deepEqual(summary(convert(c.spec).endpoints.get(c.host)), c.expect));
  }

  test('inline endpoint workloads carry labels, locality, weight, network and identity', () => {
    const { endpoints } = convert({
      hosts: ['a.internal'], resolution: 'STATIC', ports: [HTTP],
      endpoints: [
        { address: '10.0.0.1', labels: { version: 'v1' }, locality: 'us-east/zone-a/rack1', weight: 3, network: 'n1', serviceAccount: 'api' },
        { address: '10.0.0.2', labels: { 'istio-locality': 'eu.zone-b' } },
      ],
    });
    const [a, b] = endpoints.get('a.internal')!;
    assert.deepEqual(a!.workload, {
      name: 'ext/0', namespace: 'shop', address: '10.0.0.1', ports: {}, labels: { version: 'v1' },
      locality: { region: 'us-east', zone: 'zone-a', subzone: 'rack1' }, serviceAccount: 'api', network: 'n1',
      health: 'HEALTHY', weight: 3, registry: 'local',
    });
    assert.deepEqual(b!.workload.locality, { region: 'eu', zone: 'zone-b', subzone: '' }, 'locality from the istio-locality label');
    assert.equal(b!.workload.weight, 1, 'weight defaults to 1');
  });
});

describe('WorkloadEntry -> workload', () => {
  test('every field, health HEALTHY', () => {
    const w = convertWorkloadEntry(workloadEntry('shop', 'vm-1', { address: '10.1.1.1', ports: { http: 8080 }, labels: { app: 'api' }, locality: 'r/z', weight: 5, serviceAccount: 'api-sa', network: 'vpc-2' }), 'local');
    assert.deepEqual(w, {
      name: 'vm-1', namespace: 'shop', address: '10.1.1.1', ports: { http: 8080 }, labels: { app: 'api' },
      locality: { region: 'r', zone: 'z', subzone: '' }, serviceAccount: 'api-sa', network: 'vpc-2', health: 'HEALTHY', weight: 5, registry: 'local',
    });
  });

  test('defaults: no labels, no identity, weight 1, empty locality and network', () => {
    const w = convertWorkloadEntry(workloadEntry('shop', 'vm-2', { address: '10.1.1.2' }), 'local');
    assert.deepEqual([w.labels, w.serviceAccount, w.weight, w.locality, w.network], [{}, '', 1, { region: '', zone: '', subzone: '' }, '']);
  });
});

describe('helpers', () => {
  const cases: [string | undefined, string][] = [['HTTP', 'HTTP'], ['grpc', 'GRPC'], ['Grpc-Web', 'GRPC-WEB'], ['http2', 'HTTP2'], ['tcp', 'TCP'], ['udp', 'UDP'], ['', 'UNSUPPORTED'], [undefined, 'UNSUPPORTED'], ['thrift', 'UNSUPPORTED']];
  for (const [input, want] of cases) test(`parseProtocol(${JSON.stringify(input)}) = ${want}`, () => assert.equal(parseProtocol(input), want));

  test('endpointPortFor ignores a zero port override', () => {
    assert.equal(endpointPortFor({ name: 'http', port: 80, protocol: 'HTTP', targetPort: 8080 }, { address: '10.0.0.1', ports: { http: 0 } }), 8080);
  });
});
