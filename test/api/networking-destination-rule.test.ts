// DestinationRule semantic rules (Istio's ValidateDestinationRule and
// validateTrafficPolicy): exact paths and messages.

import { describe } from 'node:test';
import { runCases } from './networking-helpers.ts';
import type { RuleCase } from './networking-helpers.ts';

const dr = (trafficPolicy: unknown) => ({ host: 'reviews', trafficPolicy });
const LABEL = 'must be a DNS-1123 label (lower case alphanumerics and "-", at most 63 characters)';
const BAD_DURATION = (d: string) => `invalid duration "${d}" (use a number with a unit: ns, us, ms, s, m, h, such as "1.5s")`;
const LB = 'spec.trafficPolicy.loadBalancer';
const LLB = `${LB}.localityLbSetting`;

describe('DestinationRule: host, subsets, exportTo, selector', () => {
  const cases: RuleCase[] = [
    { name: 'host invalid', spec: { host: 'a_b' }, errors: [['spec.host', 'domain name "a_b" invalid (label "a_b" invalid)']] },
    { name: 'host missing', spec: {}, errors: [['spec.host', 'required field is missing (expected string)']] },
    { name: 'wildcard host', spec: { host: '*.example.com' }, errors: [] },
    {
      name: 'subset names unique and DNS-1123 labels',
      spec: { host: 'reviews', subsets: [{ name: 'v1' }, { name: 'v1' }, { name: 'V2' }, { name: '' }, { name: 'v3', labels: { version: 'v 3' } }] },
      errors: [
        ['spec.subsets[1].name', 'duplicate subset names: v1'],
        ['spec.subsets[2].name', `subset name is invalid: "V2": ${LABEL}`],
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
      name: 'workloadSelector: wildcard label, exported beyond its namespace',
      spec: { host: 'reviews', workloadSelector: { matchLabels: { app: 'a*' } }, exportTo: ['other'] },
      errors: [
        ['spec.exportTo', 'destination rule with workload selector cannot have exportTo beyond current namespace'],
        ['spec.workloadSelector.matchLabels.app', 'wildcard is not supported in selector: "app=a*"; labels match exact values'],
      ],
    },
    {
      name: 'workloadSelector: several exportTo entries, no labels (warning)',
      spec: { host: 'reviews', workloadSelector: {}, exportTo: ['.', 'other'] },
      errors: [['spec.exportTo', 'destination rule with workload selector cannot have multiple entries in exportTo']],
      warnings: [['spec.workloadSelector', 'workload selector specified without labels']],
    },
    {
      name: 'workloadSelector exported to its own namespace by name',
      spec: { host: 'reviews', workloadSelector: { matchLabels: { app: 'a' } }, exportTo: ['bookinfo'] },
      namespace: 'bookinfo',
      errors: [],
    },
  ];
  runCases('DestinationRule', cases);
});

describe('DestinationRule: load balancer', () => {
  const cases: RuleCase[] = [
    {
      name: 'simple and consistentHash are exclusive',
      spec: dr({ loadBalancer: { simple: 'RANDOM', consistentHash: { useSourceIp: true } } }),
      errors: [[LB, 'only one of simple or consistentHash may be set']],
    },
    {
      name: 'hash key and algorithm are oneofs',
      spec: dr({ loadBalancer: { consistentHash: { httpHeaderName: 'x', useSourceIp: true, ringHash: {}, maglev: { tableSize: 7 } } } }),
      errors: [
        [`${LB}.consistentHash`, 'only one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName may be set (found: httpHeaderName, useSourceIp)'],
        [`${LB}.consistentHash`, 'only one of ringHash, maglev may be set (found: ringHash, maglev)'],
      ],
    },
    {
      name: 'maglev table size',
      spec: { host: 'r', subsets: [
        { name: 'a', trafficPolicy: { loadBalancer: { consistentHash: { useSourceIp: true, maglev: {} } } } },
        { name: 'b', trafficPolicy: { loadBalancer: { consistentHash: { useSourceIp: true, maglev: { tableSize: 65536 } } } } },
        { name: 'c', trafficPolicy: { loadBalancer: { consistentHash: { useSourceIp: true, maglev: { tableSize: 5000011 } } } } },
      ] },
      errors: [
        ['spec.subsets[0].trafficPolicy.loadBalancer.consistentHash.maglev.tableSize', 'tableSize must be set for maglev'],
        ['spec.subsets[1].trafficPolicy.loadBalancer.consistentHash.maglev.tableSize', 'tableSize must be a prime number for maglev (got 65536), such as 65537'],
        ['spec.subsets[2].trafficPolicy.loadBalancer.consistentHash.maglev.tableSize', 'tableSize must be less than 5000011 for maglev'],
      ],
    },
    {
      name: 'httpCookie needs a name',
      spec: dr({ loadBalancer: { consistentHash: { httpCookie: { name: '', ttl: '0s' } } } }),
      errors: [[`${LB}.consistentHash.httpCookie.name`, 'name required for httpCookie']],
    },
    {
      name: 'deprecated minimumRingSize, and with ringHash',
      spec: dr({ loadBalancer: { consistentHash: { useSourceIp: true, minimumRingSize: 1024, ringHash: { minimumRingSize: 10 } } } }),
      errors: [[`${LB}.consistentHash.minimumRingSize`, 'only one of minimumRingSize or maglev/ringHash can be specified']],
      warnings: [[`${LB}.consistentHash.minimumRingSize`, "consistent hash minimumRingSize is deprecated, use ConsistentHashLB's ringHash configuration instead"]],
    },
    {
      name: 'warmup',
      spec: dr({ loadBalancer: { warmupDurationSecs: '10s', warmup: { duration: '0s', minimumPercent: 120, aggression: 0.5 } } }),
      errors: [
        [`${LB}.warmup.duration`, 'duration "0s" must be greater than 1ms'],
        [`${LB}.warmup.minimumPercent`, 'minimumPercent value should be less than or equal to 100 (got 120)'],
        [`${LB}.warmup.aggression`, 'aggression should be greater than or equal to 1 (got 0.5)'],
      ],
      warnings: [[`${LB}.warmupDurationSecs`, 'warmupDurationSecs is deprecated and ignored when warmup is set; use warmup.duration']],
    },
    { name: 'warmup needs a duration', spec: dr({ loadBalancer: { warmup: {} } }), errors: [[`${LB}.warmup.duration`, 'duration is required']] },
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
        [`${LLB}.distribute[0].to["us/a"]`, 'locality weight must be in range [1, 100] (got 0)'],
        [`${LLB}.distribute[0].to`, 'total locality weight 90 != 100'],
        [`${LLB}.distribute[0].from`, "locality us/*/z wildcard '*' number can not exceed 1 and must be in the end"],
      ],
    },
    {
      name: 'overlapping and empty localities',
      spec: dr({ loadBalancer: { localityLbSetting: { distribute: [
        { from: 'us/*', to: { 'us/a': 100 } },
        { from: 'us/a/b', to: { 'us/a': 50, 'us/a/c': 50 } },
      ] } } }),
      errors: [
        [`${LLB}.distribute[1].to["us/a/c"]`, 'locality us/a/c overlap with previous specified ones'],
        [`${LLB}.distribute[1].from`, 'locality us/a/b overlap with previous specified ones'],
      ],
    },
    {
      name: 'empty locality parts',
      spec: dr({ loadBalancer: { localityLbSetting: { distribute: [{ from: 'us//z', to: { eu: 100 } }] } } }),
      errors: [[`${LLB}.distribute[0].from`, 'locality us//z must not contain empty region/zone/subzone info']],
    },
    {
      name: 'distribute and failover together',
      spec: dr({ loadBalancer: { localityLbSetting: { distribute: [{ from: 'us', to: { eu: 100 } }], failover: [{ from: 'us', to: 'eu' }] } } }),
      errors: [[LLB, "can not simultaneously specify 'distribute' and 'failover'"]],
    },
    {
      name: 'failover rules',
      spec: dr({ loadBalancer: { localityLbSetting: {
        failover: [{ from: 'us', to: 'us' }, { from: 'us/a', to: 'eu*' }],
        failoverPriority: ['topology.istio.io/network', 'topology.kubernetes.io/region'],
      } } }),
      errors: [
        [`${LLB}.failoverPriority[1]`, "can not simultaneously set 'failover' and topology label 'topology.kubernetes.io/region' in 'failoverPriority'"],
        [`${LLB}.failover[0]`, 'locality lb failover settings must specify different regions'],
        [`${LLB}.failover[1]`, 'locality lb failover only specify region (no zone or subzone)'],
        [`${LLB}.failover[1]`, "locality lb failover region should not contain '*' wildcard"],
      ],
      warnings: [[LLB, 'outlier detection policy must be provided for failover']],
    },
  ];
  runCases('DestinationRule', cases);
});

describe('DestinationRule: traffic policy, connection pool, outlier detection', () => {
  const cases: RuleCase[] = [
    { name: 'empty traffic policy', spec: dr({}), errors: [['spec.trafficPolicy', 'traffic policy must have at least one field']] },
    {
      name: 'tunnel with proxyProtocol',
      spec: dr({ tunnel: { targetHost: 'a.com', targetPort: 80 }, proxyProtocol: { version: 'V1' } }),
      errors: [['spec.trafficPolicy', 'tunnel and proxyProtocol must not be set together']],
    },
    { name: 'empty connection pool', spec: dr({ connectionPool: {} }), errors: [['spec.trafficPolicy.connectionPool', 'connection pool must have at least one field (tcp or http)']] },
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
        ['spec.trafficPolicy.connectionPool.http.idleTimeout', 'duration "1us" must be greater than 1ms'],
        ['spec.trafficPolicy.connectionPool.http.useClientProtocol', 'use client protocol must not be true when h2UpgradePolicy is UPGRADE'],
        ['spec.trafficPolicy.connectionPool.tcp.maxConnections', 'max connections must be non-negative (got -1)'],
        ['spec.trafficPolicy.connectionPool.tcp.connectTimeout', 'duration "0ms" must be greater than 1ms'],
        ['spec.trafficPolicy.connectionPool.tcp.idleTimeout', BAD_DURATION('2')],
        ['spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.time', BAD_DURATION('x')],
      ],
    },
    { name: 'a TCP idle timeout of 0s disables it', spec: dr({ connectionPool: { tcp: { idleTimeout: '0s' } } }), errors: [] },
    {
      name: 'outlier detection',
      spec: dr({ outlierDetection: { consecutiveErrors: 5, interval: '0s', baseEjectionTime: '1.0001s', maxEjectionPercent: 101, minHealthPercent: -1, consecutiveLocalOriginFailures: 3 } }),
      errors: [
        ['spec.trafficPolicy.outlierDetection.baseEjectionTime', 'duration "1.0001s": only durations to ms precision are supported'],
        ['spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures', 'outlier detection consecutive local origin failures is specified, but split external local origin errors is set to false'],
        ['spec.trafficPolicy.outlierDetection.interval', 'duration "0s" must be greater than 1ms'],
        ['spec.trafficPolicy.outlierDetection.maxEjectionPercent', 'percentage 101 is not in range 0..100'],
        ['spec.trafficPolicy.outlierDetection.minHealthPercent', 'percentage -1 is not in range 0..100'],
      ],
      warnings: [['spec.trafficPolicy.outlierDetection.consecutiveErrors', 'outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or consecutive5xxErrors instead']],
    },
    {
      name: 'port level settings',
      spec: dr({ portLevelSettings: [{ port: { number: 0 }, tls: { mode: 'SIMPLE' } }, { loadBalancer: { simple: 'RANDOM' } }, { port: { number: 80 } }] }),
      errors: [
        ['spec.trafficPolicy.portLevelSettings[0].port.number', 'port number 0 must be in the range 1..65535'],
        ['spec.trafficPolicy.portLevelSettings[1].port', 'portTrafficPolicy must have valid port'],
        ['spec.trafficPolicy.portLevelSettings[2]', 'port traffic policy must have at least one field (loadBalancer, connectionPool, outlierDetection or tls)'],
      ],
    },
    {
      name: 'tunnel and retry budget',
      spec: dr({ tunnel: { protocol: 'GET', targetHost: '*.proxy', targetPort: 0 }, retryBudget: { percent: { value: 120 } } }),
      errors: [
        ['spec.trafficPolicy.tunnel.protocol', 'tunnel protocol must be "CONNECT" or "POST" (got "GET")'],
        ['spec.trafficPolicy.tunnel.targetHost', 'tunnel target host must be valid FQDN or IP address: domain name "*.proxy" invalid (wildcards are not allowed here)'],
        ['spec.trafficPolicy.tunnel.targetPort', 'tunnel target port is invalid: port number 0 must be in the range 1..65535'],
        ['spec.trafficPolicy.retryBudget.percent.value', 'percentage 120 is neither 0.0, nor in range [0.0001, 100.0]'],
      ],
    },
    { name: 'tunnel to an IP', spec: dr({ tunnel: { targetHost: '10.0.0.1', targetPort: 3128 } }), errors: [] },
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
      errors: [['spec.trafficPolicy.tls', 'cannot specify client certificates or CA certificate or CA CRL if credentialName is set: the credential supplies them']],
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
      name: 'insecureSkipVerify with verification settings (SIMPLE)',
      spec: dr({ tls: { mode: 'SIMPLE', insecureSkipVerify: true, subjectAltNames: ['a'] } }),
      errors: [['spec.trafficPolicy.tls', 'cannot specify caCertificates or credentialName or subjectAltNames when insecureSkipVerify is set true']],
    },
    {
      name: 'insecureSkipVerify with verification settings (MUTUAL)',
      spec: dr({ tls: { mode: 'MUTUAL', insecureSkipVerify: true, caCertificates: '/ca.pem', credentialName: 'c' } }),
      errors: [
        ['spec.trafficPolicy.tls', 'cannot specify caCertificates or subjectAltNames when insecureSkipVerify is set true'],
        ['spec.trafficPolicy.tls', 'cannot specify client certificates or CA certificate or CA CRL if credentialName is set: the credential supplies them'],
      ],
    },
    {
      name: 'configmap:// credentials live in the rule namespace',
      spec: { host: 'r', trafficPolicy: { tls: { mode: 'SIMPLE', credentialName: 'configmap://other/ca' } }, subsets: [{ name: 'a', trafficPolicy: { tls: { mode: 'SIMPLE', credentialName: 'configmap://' } } }] },
      namespace: 'bookinfo',
      errors: [
        ['spec.trafficPolicy.tls.credentialName', 'invalid configmap:// credentialName: namespace must match the configuration namespace "bookinfo"'],
        ['spec.subsets[0].trafficPolicy.tls.credentialName', 'invalid configmap:// credentialName "configmap://": use configmap://<name> or configmap://<namespace>/<name>'],
      ],
    },
    {
      name: 'unknown TLS mode',
      spec: dr({ tls: { mode: 'STRICT' } }),
      errors: [['spec.trafficPolicy.tls.mode', 'invalid value string "STRICT"; allowed: "DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"']],
    },
  ];
  runCases('DestinationRule', cases);
});
