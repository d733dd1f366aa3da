// DestinationRule semantic rules (Istio's ValidateDestinationRule and
// validateTrafficPolicy): exact paths and messages.

import { describe } from 'node:test';
import { runCases } from './networking-helpers.ts';
import type { RuleCase } from './networking-helpers.ts';

const dr = (trafficPolicy: unknown) => ({ host: 'reviews', trafficPolicy });

describe('DestinationRule: host, subsets, exportTo, selector', () => {
  const cases: RuleCase[] = [
    { name: 'host invalid', spec: { host: 'a_b' }, errors: [['spec.host', 'domain name "a_b" invalid (label "a_b" invalid)']] },
    { name: 'host missing', spec: {}, errors: [['spec.host', 'required field is missing (expected string)']] },
    {
      name: 'subset names unique and DNS-1123 labels',
      spec: { host: 'reviews', subsets: [{ name: 'v1' }, { name: 'v1' }, { name: 'V2' }, { name: '' }, { name: 'v3', labels: { version: 'v 3' } }] },
      errors: [
        ['spec.subsets[1].name', 'duplicate subset name "v1": subset names must be unique'],
        ['spec.subsets[2].name', 'invalid subset name "V2": must be a DNS-1123 label (lower case alphanumerics and "-", at most 63 characters)'],
        ['spec.subsets[3].name', 'subset name cannot be empty'],
        ['spec.subsets[4].labels.version', 'invalid label value "v 3": at most 63 characters of [A-Za-z0-9_.-], starting and ending alphanumeric'],
      ],
    },
    {
      name: 'subset traffic policy is checked too',
      spec: { host: 'reviews', subsets: [{ name: 'v1', trafficPolicy: {} }] },
      errors: [['spec.subsets[0].trafficPolicy', 'traffic policy must have at least one field']],
    },
    {
      name: 'workloadSelector rule exported elsewhere',
      spec: { host: 'reviews', workloadSelector: { matchLabels: { app: 'a*' } }, exportTo: ['.', 'default', 'other'] },
      errors: [
        ['spec.workloadSelector.matchLabels.app', 'wildcard is not supported in selector: labels match exact values'],
        ['spec.exportTo[2]', 'a destination rule with a workloadSelector can only be exported to its own namespace ("." or "default")'],
      ],
    },
  ];
  runCases('DestinationRule', cases);
});

describe('DestinationRule: load balancer', () => {
  const cases: RuleCase[] = [
    {
      name: 'simple and consistentHash are exclusive',
      spec: dr({ loadBalancer: { simple: 'RANDOM', consistentHash: { useSourceIp: true } } }),
      errors: [['spec.trafficPolicy.loadBalancer', 'only one of simple or consistentHash may be set']],
    },
    {
      name: 'hash key and algorithm are oneofs',
      spec: dr({ loadBalancer: { consistentHash: { httpHeaderName: 'x', useSourceIp: true, ringHash: {}, maglev: { tableSize: 7 } } } }),
      errors: [
        ['spec.trafficPolicy.loadBalancer.consistentHash', 'only one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName may be set (found: httpHeaderName, useSourceIp)'],
        ['spec.trafficPolicy.loadBalancer.consistentHash', 'only one of ringHash, maglev may be set (found: ringHash, maglev)'],
      ],
    },
    {
      name: 'maglev table size',
      spec: { host: 'r', subsets: [
        { name: 'a', trafficPolicy: { loadBalancer: { consistentHash: { useSourceIp: true, maglev: {} } } } },
        { name: 'b', trafficPolicy: { loadBalancer: { consistentHash: { useSourceIp: true, maglev: { tableSize: 65536 } } } } },
      ] },
      errors: [
        ['spec.subsets[0].trafficPolicy.loadBalancer.consistentHash.maglev.tableSize', 'tableSize must be set for maglev'],
        ['spec.subsets[1].trafficPolicy.loadBalancer.consistentHash.maglev.tableSize', 'tableSize 65536 must be a prime number for maglev'],
      ],
    },
    {
      name: 'httpCookie name and ttl',
      spec: dr({ loadBalancer: { consistentHash: { httpCookie: { name: '', ttl: 'forever' } } } }),
      errors: [
        ['spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name', 'name required for httpCookie'],
        ['spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.ttl', 'invalid duration "forever" (use a number with a unit: ns, us, ms, s, m, h, such as "1.5s")'],
      ],
    },
    {
      name: 'deprecated minimumRingSize, and with ringHash',
      spec: dr({ loadBalancer: { consistentHash: { useSourceIp: true, minimumRingSize: 1024, ringHash: { minimumRingSize: 10 } } } }),
      errors: [['spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize', 'only one of minimumRingSize or ringHash/maglev may be set']],
      warnings: [['spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize', 'minimumRingSize is deprecated; use ringHash.minimumRingSize']],
    },
    {
      name: 'warmup',
      spec: dr({ loadBalancer: { warmupDurationSecs: '10s', warmup: { duration: '0s', minimumPercent: 120, aggression: 0.5 } } }),
      errors: [
        ['spec.trafficPolicy.loadBalancer', 'only one of warmupDurationSecs or warmup may be set'],
        ['spec.trafficPolicy.loadBalancer.warmup.duration', 'duration must be >= 1ms'],
        ['spec.trafficPolicy.loadBalancer.warmup.minimumPercent', 'minimumPercent 120 is not in range 0..100'],
        ['spec.trafficPolicy.loadBalancer.warmup.aggression', 'aggression 0.5 must be at least 1'],
      ],
    },
    {
      name: 'locality distribute weights and wildcards',
      spec: dr({
        outlierDetection: { consecutive5xxErrors: 1 },
        loadBalancer: { localityLbSetting: { distribute: [
          { from: 'us/*/z', to: { 'us/a': 0, 'us/b': 90 } },
          { from: 'us/*', to: { 'eu/*': 100 } },
        ] } },
      }),
      errors: [
        ['spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to["us/a"]', 'locality weight 0 must be in range [1, 100]'],
        ['spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to', 'total locality weight 90 != 100'],
        ['spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].from', 'locality "us/*/z": the wildcard "*" may appear once, at the end'],
      ],
    },
    {
      name: 'overlapping source localities',
      spec: dr({ loadBalancer: { localityLbSetting: { distribute: [
        { from: 'us/*', to: { 'us/a': 100 } },
        { from: 'us/a/b', to: { 'us/a': 100 } },
      ] } } }),
      errors: [['spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[1].from', 'locality "us/a/b" overlaps with a previously specified one']],
    },
    {
      name: 'locality failover rules',
      spec: dr({ loadBalancer: { localityLbSetting: {
        distribute: [{ from: 'us', to: { eu: 100 } }],
        failover: [{ from: 'us', to: 'us' }, { from: 'us/a', to: 'eu*' }],
        failoverPriority: ['topology.kubernetes.io/region'],
      } } }),
      errors: [
        ['spec.trafficPolicy.loadBalancer.localityLbSetting', 'can not simultaneously specify "distribute" and "failover"'],
        ['spec.trafficPolicy.loadBalancer.localityLbSetting.failoverPriority[0]', 'can not simultaneously set "failover" and topology label "topology.kubernetes.io/region" in "failoverPriority"'],
        ['spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0]', 'locality lb failover settings must specify different regions'],
        ['spec.trafficPolicy.loadBalancer.localityLbSetting.failover[1]', 'locality lb failover only specifies regions (no "/")'],
        ['spec.trafficPolicy.loadBalancer.localityLbSetting.failover[1]', 'locality lb failover region should not contain the "*" wildcard'],
      ],
      warnings: [['spec.trafficPolicy.loadBalancer.localityLbSetting', 'outlier detection policy must be provided for failover to take effect']],
    },
  ];
  runCases('DestinationRule', cases);
});

describe('DestinationRule: connection pool and outlier detection', () => {
  const cases: RuleCase[] = [
    { name: 'empty traffic policy', spec: dr({}), errors: [['spec.trafficPolicy', 'traffic policy must have at least one field']] },
    { name: 'empty connection pool', spec: dr({ connectionPool: {} }), errors: [['spec.trafficPolicy.connectionPool', 'connection pool must have at least one of tcp or http']] },
    {
      name: 'negative limits and bad durations',
      spec: dr({ connectionPool: {
        tcp: { maxConnections: -1, connectTimeout: '0ms', tcpKeepalive: { time: 'x', interval: '1s' }, maxConnectionDuration: '1h', idleTimeout: '2' },
        http: { http1MaxPendingRequests: -1, http2MaxRequests: -2, maxRequestsPerConnection: -3, maxRetries: -4, maxConcurrentStreams: -5, idleTimeout: '1us', h2UpgradePolicy: 'UPGRADE', useClientProtocol: true },
      } }),
      errors: [
        ['spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests', 'http1 max pending requests must be non-negative (got -1)'],
        ['spec.trafficPolicy.connectionPool.http.http2MaxRequests', 'http2 max requests must be non-negative (got -2)'],
        ['spec.trafficPolicy.connectionPool.http.maxRequestsPerConnection', 'max requests per connection must be non-negative (got -3)'],
        ['spec.trafficPolicy.connectionPool.http.maxRetries', 'max retries must be non-negative (got -4)'],
        ['spec.trafficPolicy.connectionPool.http.maxConcurrentStreams', 'max concurrent streams must be non-negative (got -5)'],
        ['spec.trafficPolicy.connectionPool.http.idleTimeout', 'duration must be >= 1ms'],
        ['spec.trafficPolicy.connectionPool.http.useClientProtocol', 'useClientProtocol must not be true when h2UpgradePolicy is UPGRADE'],
        ['spec.trafficPolicy.connectionPool.tcp.maxConnections', 'max connections must be non-negative (got -1)'],
        ['spec.trafficPolicy.connectionPool.tcp.connectTimeout', 'duration must be >= 1ms'],
        ['spec.trafficPolicy.connectionPool.tcp.idleTimeout', 'invalid duration "2" (use a number with a unit: ns, us, ms, s, m, h, such as "1.5s")'],
        ['spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.time', 'invalid duration "x" (use a number with a unit: ns, us, ms, s, m, h, such as "1.5s")'],
      ],
    },
    {
      name: 'outlier detection',
      spec: dr({ outlierDetection: { consecutiveErrors: 5, interval: '0s', baseEjectionTime: '1.0001s', maxEjectionPercent: 101, minHealthPercent: -1 } }),
      errors: [
        ['spec.trafficPolicy.outlierDetection.baseEjectionTime', 'duration "1.0001s" is finer than 1ms: only durations to millisecond precision are supported'],
        ['spec.trafficPolicy.outlierDetection.interval', 'duration must be >= 1ms'],
        ['spec.trafficPolicy.outlierDetection.maxEjectionPercent', 'percentage 101 is not in range 0..100'],
        ['spec.trafficPolicy.outlierDetection.minHealthPercent', 'percentage -1 is not in range 0..100'],
      ],
      warnings: [['spec.trafficPolicy.outlierDetection.consecutiveErrors', 'consecutiveErrors is deprecated; use consecutiveGatewayErrors or consecutive5xxErrors']],
    },
    {
      name: 'port level settings',
      spec: dr({ portLevelSettings: [{ port: { number: 0 }, tls: { mode: 'SIMPLE' } }, { loadBalancer: { simple: 'RANDOM' } }, { port: { number: 80 } }] }),
      errors: [
        ['spec.trafficPolicy.portLevelSettings[0].port.number', 'port number 0 must be in the range 1..65535'],
        ['spec.trafficPolicy.portLevelSettings[1].port', 'port traffic policy must name a port'],
        ['spec.trafficPolicy.portLevelSettings[2]', 'port traffic policy must have at least one of loadBalancer, connectionPool, outlierDetection or tls'],
      ],
    },
    {
      name: 'tunnel and retry budget',
      spec: dr({ tunnel: { protocol: 'GET', targetHost: '*.proxy', targetPort: 0 }, retryBudget: { percent: { value: 120 } } }),
      errors: [
        ['spec.trafficPolicy.tunnel.protocol', 'invalid tunnel protocol "GET": must be "CONNECT" or "POST"'],
        ['spec.trafficPolicy.tunnel.targetHost', 'tunnel target host "*.proxy" must be a valid FQDN or IP address'],
        ['spec.trafficPolicy.tunnel.targetPort', 'port number 0 must be in the range 1..65535'],
        ['spec.trafficPolicy.retryBudget.percent.value', 'percentage 120 must be in the range 0..100'],
      ],
    },
  ];
  runCases('DestinationRule', cases);
});

describe('DestinationRule: client TLS', () => {
  const cases: RuleCase[] = [
    {
      name: 'MUTUAL needs a certificate and key',
      spec: dr({ tls: { mode: 'MUTUAL', caCertificates: '/ca.pem' } }),
      errors: [
        ['spec.trafficPolicy.tls.clientCertificate', 'client certificate required for mutual tls (or set credentialName)'],
        ['spec.trafficPolicy.tls.privateKey', 'private key required for mutual tls (or set credentialName)'],
      ],
    },
    { name: 'MUTUAL with a credential', spec: dr({ tls: { mode: 'MUTUAL', credentialName: 'client-cred', sni: 'a.com' } }), errors: [] },
    {
      name: 'credentialName excludes files',
      spec: dr({ tls: { mode: 'SIMPLE', credentialName: 'c', caCertificates: '/ca.pem', caCrl: '/crl.pem' } }),
      errors: [
        ['spec.trafficPolicy.tls.caCertificates', 'caCertificates cannot be set together with credentialName: the credential supplies the certificates'],
        ['spec.trafficPolicy.tls.caCrl', 'caCrl cannot be set together with credentialName: the credential supplies the certificates'],
      ],
    },
    {
      name: 'ISTIO_MUTUAL forbids certificates',
      spec: dr({ tls: { mode: 'ISTIO_MUTUAL', clientCertificate: '/c.pem', privateKey: '/k.pem', credentialName: 'x' } }),
      errors: [
        ['spec.trafficPolicy.tls.clientCertificate', 'clientCertificate cannot be set when mode is ISTIO_MUTUAL: the mesh provides the certificates'],
        ['spec.trafficPolicy.tls.privateKey', 'privateKey cannot be set when mode is ISTIO_MUTUAL: the mesh provides the certificates'],
        ['spec.trafficPolicy.tls.credentialName', 'credentialName cannot be set when mode is ISTIO_MUTUAL: the mesh provides the certificates'],
      ],
    },
    {
      name: 'insecureSkipVerify with verification settings',
      spec: dr({ tls: { mode: 'SIMPLE', insecureSkipVerify: true, subjectAltNames: ['a'] } }),
      errors: [['spec.trafficPolicy.tls', 'cannot set caCertificates or subjectAltNames when insecureSkipVerify is true']],
    },
    {
      name: 'unknown TLS mode',
      spec: dr({ tls: { mode: 'STRICT' } }),
      errors: [['spec.trafficPolicy.tls.mode', 'invalid value string "STRICT"; allowed: "DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"']],
    },
  ];
  runCases('DestinationRule', cases);
});
