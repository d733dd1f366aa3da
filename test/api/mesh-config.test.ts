// MeshConfig: Istio's defaults, overlay of user YAML, freezing, and every
// semantic rule with its exact path and message.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { ApiErrorCode } from '../../src/api/index.ts';
import { defaultMeshConfig, parseMeshConfig, validateMeshConfig } from '../../src/api/mesh-config.ts';

function isDeepFrozen(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return true;
  return Object.isFrozen(value) && Object.values(value).every(isDeepFrozen);
}

const FULL = `
proxyListenPort: 15001
proxyInboundListenPort: 15006
proxyHttpPort: 15080
connectTimeout: 5s
protocolDetectionTimeout: 100ms
tcpKeepalive: { probes: 3, time: 7200s, interval: 75s }
ingressClass: istio
ingressService: istio-ingressgateway
ingressControllerMode: DEFAULT
ingressSelector: ingressgateway
enableTracing: false
accessLogFile: /dev/stdout
accessLogEncoding: JSON
accessLogFormat: '{"start_time":"%START_TIME%","code":"%RESPONSE_CODE%"}'
enableEnvoyAccessLogService: false
outboundTrafficPolicy: { mode: REGISTRY_ONLY }
inboundTrafficPolicy: { mode: LOCALHOST }
enableAutoMtls: false
trustDomain: example.org
trustDomainAliases: [old.example.org]
rootNamespace: mesh-system
defaultServiceExportTo: ["."]
defaultVirtualServiceExportTo: ["*"]
defaultDestinationRuleExportTo: [".", "bookinfo"]
dnsRefreshRate: 30s
h2UpgradePolicy: UPGRADE
enablePrometheusMerge: true
localityLbSetting:
  enabled: true
  distribute:
  - from: us-west/zone1/*
    to: { "us-west/zone1/*": 80, "us-west/zone2/*": 20 }
serviceSettings:
- settings: { clusterLocal: true }
  hosts: ["*.kube-system.svc.cluster.local"]
discoverySelectors:
- matchLabels: { istio-discovery: enabled }
- matchExpressions: [{ key: env, operator: In, values: [prod] }, { key: skip, operator: DoesNotExist }]
pathNormalization: { normalization: MERGE_SLASHES }
defaultHttpRetryPolicy: { attempts: 2, perTryTimeout: 1s, retryOn: "connect-failure,refused-stream" }
meshMTLS: { minProtocolVersion: TLSV1_3 }
mixerCheckServer: istio-policy.istio-system.svc.cluster.local:15004
mixerReportServer: istio-telemetry.istio-system.svc.cluster.local:15004
disablePolicyChecks: false
policyCheckFailOpen: false
reportBatchMaxEntries: 100
reportBatchMaxTime: 1s
defaultConfig:
  discoveryAddress: istiod.mesh-system.svc:15012
  drainDuration: 30s
  terminationDrainDuration: 10s
  proxyMetadata: { ISTIO_META_DNS_CAPTURE: "true" }
  holdApplicationUntilProxyStarts: true
  tracing: { zipkin: { address: zipkin.mesh-system:9411 }, sampling: 10 }
  proxyStatsMatcher: { inclusionRegexps: [".*outlier_detection.*"] }
  gatewayTopology: { numTrustedProxies: 1 }
extensionProviders:
- name: ext-authz-grpc
  envoyExtAuthzGrpc: { service: ext-authz.foo.svc.cluster.local, port: 9000, timeout: 1s }
- name: ext-authz-http
  envoyExtAuthzHttp:
    service: foo/ext-authz.foo.svc.cluster.local
    port: 8000
    pathPrefix: /check
    statusOnError: "503"
    includeRequestHeadersInCheck: [x-ext-authz]
    headersToUpstreamOnAllow: [x-user]
- name: otel
  opentelemetry: { service: opentelemetry-collector.observability.svc.cluster.local, port: 4317 }
- name: zipkin
  zipkin: { service: zipkin.istio-system.svc.cluster.local, port: 9411, maxTagLength: 56 }
- name: otel-als
  envoyOtelAls: { service: otel.observability.svc.cluster.local, port: 4317, logName: als }
- name: json-log
  envoyFileAccessLog: { path: /dev/stdout, logFormat: { labels: { code: "%RESPONSE_CODE%" } } }
defaultProviders:
  tracing: [zipkin]
  metrics: [prometheus]
  accessLogging: [envoy, json-log]
`;

describe('MeshConfig defaults', () => {
  it('has Istio defaults and is deeply frozen', () => {
    const mc = defaultMeshConfig();
    assert.equal(mc.trustDomain, 'cluster.local');
    assert.equal(mc.rootNamespace, 'istio-system');
    assert.equal(mc.outboundTrafficPolicy.mode, 'ALLOW_ANY');
    assert.equal(mc.connectTimeout, '10s');
    assert.equal(mc.protocolDetectionTimeout, '0s');
    assert.equal(mc.enableAutoMtls, true);
    assert.equal(mc.accessLogEncoding, 'TEXT');
    assert.equal(mc.accessLogFile, '');
    assert.equal(mc.enableTracing, true);
    assert.deepEqual(mc.defaultServiceExportTo, ['*']);
    assert.deepEqual(mc.defaultVirtualServiceExportTo, ['*']);
    assert.deepEqual(mc.defaultDestinationRuleExportTo, ['*']);
    assert.equal(mc.ingressClass, 'istio');
    assert.equal(mc.ingressService, 'istio-ingressgateway');
    assert.equal(mc.defaultConfig.discoveryAddress, 'istiod.istio-system.svc:15012');
    assert.equal(mc.defaultConfig.drainDuration, '45s');
    assert.equal(mc.defaultConfig.terminationDrainDuration, '5s');
    assert.equal(mc.defaultConfig.proxyAdminPort, 15000);
    assert.equal(mc.defaultConfig.statusPort, 15020);
    assert.deepEqual(mc.extensionProviders.map((p) => p.name), ['prometheus', 'stackdriver', 'envoy']);
    assert.ok(isDeepFrozen(mc));
    assert.throws(() => {
      (mc as { trustDomain: string }).trustDomain = 'x';
    }, TypeError);
  });

  it('returns independent copies', () => {
    assert.notEqual(defaultMeshConfig(), defaultMeshConfig());
  });

  for (const [name, input] of [['empty text', ''], ['empty object', {}], ['null document', 'null\n']] as const) {
    it(`${name} gives the defaults`, () => assert.deepEqual(parseMeshConfig(input), defaultMeshConfig()));
  }
});

describe('MeshConfig overlay', () => {
  it('merges objects field by field and replaces lists', () => {
    const mc = parseMeshConfig('defaultConfig:\n  drainDuration: 10s\ntrustDomainAliases: [a.example]\noutboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n');
    assert.equal(mc.defaultConfig.drainDuration, '10s');
    assert.equal(mc.defaultConfig.discoveryAddress, 'istiod.istio-system.svc:15012');
    assert.deepEqual(mc.trustDomainAliases, ['a.example']);
    assert.equal(mc.outboundTrafficPolicy.mode, 'REGISTRY_ONLY');
    assert.ok(isDeepFrozen(mc));
  });

  it('appends extension providers; a provider replaces the default of its name', () => {
    const mc = parseMeshConfig({ extensionProviders: [{ name: 'envoy', envoyFileAccessLog: { path: '/var/log/access.log' } }, { name: 'ext', envoyExtAuthzGrpc: { service: 'authz.foo.svc.cluster.local', port: 9000 } }] });
    assert.deepEqual(mc.extensionProviders.map((p) => p.name), ['prometheus', 'stackdriver', 'envoy', 'ext']);
    assert.equal(mc.extensionProviders[2]!.envoyFileAccessLog?.path, '/var/log/access.log');
  });

  it('leaves the input untouched', () => {
    const input = { defaultConfig: { drainDuration: '10s' } };
    parseMeshConfig(input);
    assert.deepEqual(input, { defaultConfig: { drainDuration: '10s' } });
    assert.ok(!Object.isFrozen(input));
  });

  it('accepts a full-featured config', () => {
    const result = validateMeshConfig(parseMeshConfigText(FULL));
    assert.deepEqual(result.diagnostics, []);
    assert.equal(result.config?.defaultConfig.drainDuration, '30s');
    assert.equal(result.config?.defaultConfig.binaryPath, '/usr/local/bin/envoy');
    assert.equal(result.config?.extensionProviders.length, 9);
  });
});

describe('parseMeshConfig errors', () => {
  it('throws MESH_ERR_API_PARSE on bad YAML', () => {
    assert.throws(() => parseMeshConfig('a: [1'), (err: Error & { code?: string }) => err.code === ApiErrorCode.PARSE && /^MeshConfig is not valid YAML: /.test(err.message));
  });
  it('throws MESH_ERR_API_INVALID listing every error', () => {
    assert.throws(() => parseMeshConfig('connectTimeout: 0s\nrootNamespace: Istio\n'), (err: Error & { code?: string }) => {
      assert.equal(err.code, ApiErrorCode.INVALID);
      assert.equal(err.message, 'invalid MeshConfig: connectTimeout: duration must be >= 1ms; rootNamespace: invalid root namespace "Istio": must be a DNS-1123 label');
      return true;
    });
  });
  it('rejects a non-mapping document', () => {
    assert.deepEqual(validateMeshConfig([1]).diagnostics, [{ severity: 'error', path: '', message: 'a MeshConfig must be a YAML/JSON mapping' }]);
  });
});

describe('MeshConfig rules', () => {
  const cases: { name: string; input: Record<string, unknown>; errors: string[][]; warnings?: string[][] }[] = [
    { name: 'unknown field', input: { mixerAdress: 'x' }, errors: [['mixerAdress', 'unknown field "mixerAdress"']] },
    { name: 'bad outbound mode', input: { outboundTrafficPolicy: { mode: 'DENY' } }, errors: [['outboundTrafficPolicy.mode', 'invalid value string "DENY"; allowed: "REGISTRY_ONLY", "ALLOW_ANY"']] },
    { name: 'bad access log encoding', input: { accessLogEncoding: 'XML' }, errors: [['accessLogEncoding', 'invalid value string "XML"; allowed: "TEXT", "JSON"']] },
    { name: 'wrong type', input: { enableAutoMtls: 'yes' }, errors: [['enableAutoMtls', 'expected boolean, got string "yes"']] },
    {
      name: 'ports out of range',
      input: { proxyListenPort: 0, proxyInboundListenPort: 70000, defaultConfig: { proxyAdminPort: 15020 } },
      errors: [
        ['proxyListenPort', 'invalid proxy listen port 0: port number must be in the range 1..65535'],
        ['proxyInboundListenPort', 'invalid proxy inbound listen port 70000: port number must be in the range 1..65535'],
        ['defaultConfig.statusPort', 'status port 15020 must differ from the proxy admin port'],
      ],
    },
    {
      name: 'durations',
      input: { connectTimeout: '10', protocolDetectionTimeout: '-1s', dnsRefreshRate: '0s', defaultConfig: { drainDuration: 'x', terminationDrainDuration: '0s' } },
      errors: [
        ['connectTimeout', 'invalid duration "10" (use a number with a unit: ns, us, ms, s, m, h, such as "1.5s")'],
        ['protocolDetectionTimeout', 'invalid duration "-1s" (use a number with a unit: ns, us, ms, s, m, h, such as "1.5s")'],
        ['dnsRefreshRate', 'duration must be >= 1ms'],
        ['defaultConfig.drainDuration', 'invalid duration "x" (use a number with a unit: ns, us, ms, s, m, h, such as "1.5s")'],
      ],
    },
    {
      name: 'proxy config',
      input: { defaultConfig: { configPath: '', binaryPath: '', discoveryAddress: 'istiod', statNameLength: -1, concurrency: -2, zipkinAddress: 'zipkin:99999', proxyStatsMatcher: { inclusionRegexps: ['(?=x)'] } } },
      errors: [
        ['defaultConfig.configPath', 'config path must be set'],
        ['defaultConfig.binaryPath', 'binary path must be set'],
        ['defaultConfig.discoveryAddress', 'invalid address "istiod": must be host:port'],
        ['defaultConfig.zipkinAddress', 'invalid address "zipkin:99999": port must be in the range 1..65535'],
        ['defaultConfig.statNameLength', 'statNameLength must be set to a positive number'],
        ['defaultConfig.concurrency', 'concurrency must be greater than or equal to 0'],
        ['defaultConfig.proxyStatsMatcher.inclusionRegexps[0]', 'invalid regex "(?=x)" (RE2 syntax): error parsing regexp: invalid or unsupported Perl syntax: `(?=`'],
      ],
    },
    {
      name: 'trust domains and root namespace',
      input: { trustDomain: '', trustDomainAliases: ['*.example.com'], rootNamespace: 'istio.system' },
      errors: [
        ['trustDomain', 'empty trust domain not allowed'],
        ['trustDomainAliases[0]', 'domain name "*.example.com" invalid (wildcards are not allowed here)'],
        ['rootNamespace', 'invalid root namespace "istio.system": must be a DNS-1123 label'],
      ],
    },
    {
      name: 'exportTo defaults',
      input: { defaultServiceExportTo: ['*', 'foo'], defaultVirtualServiceExportTo: ['Bad_NS'] },
      errors: [
        ['defaultServiceExportTo', 'exportTo "*" must be the only entry'],
        ['defaultVirtualServiceExportTo[0]', 'invalid exportTo value "Bad_NS": use "*" (all namespaces), "." (same namespace) or a namespace name'],
      ],
    },
    {
      name: 'JSON access log format',
      input: { accessLogEncoding: 'JSON', accessLogFormat: '[START_TIME]' },
      errors: [['accessLogFormat', 'with accessLogEncoding JSON, accessLogFormat must be a JSON object of field name to format string']],
    },
    {
      name: 'locality load balancing',
      input: { localityLbSetting: { distribute: [{ from: 'us-west/*/x', to: { 'us-west/zone1/*': 50 } }], failover: [{ from: 'us-east', to: 'us-east' }, { from: 'us-east/zone1', to: 'eu' }] } },
      errors: [
        ['localityLbSetting', "can not simultaneously specify 'distribute' and 'failover'"],
        ['localityLbSetting.distribute[0].from', 'invalid locality "us-west/*/x": use region, region/zone or region/zone/subzone; "*" only as the last segment'],
        ['localityLbSetting.distribute[0].to', 'total load balancing weights should be 100, got 50'],
        ['localityLbSetting.failover[0]', 'locality lb failover settings must specify different regions'],
        ['localityLbSetting.failover[1].from', 'locality lb failover only specifies regions, got "us-east/zone1"'],
      ],
    },
    {
      name: 'extension providers',
      input: {
        extensionProviders: [
          { name: '', prometheus: {} },
          { name: 'a', prometheus: {}, zipkin: { service: 'z', port: 9411 } },
          { name: 'b' },
          { name: 'c', envoyExtAuthzGrpc: { service: 'bad host', port: 0 } },
          { name: 'c', envoyExtAuthzHttp: { service: 'authz', pathPrefix: 'check', statusOnError: '999' } },
          { name: 'd', envoyFileAccessLog: { logFormat: { text: 'x', labels: {} } } },
        ],
      },
      errors: [
        ['extensionProviders[3].name', 'empty extension provider name'],
        ['extensionProviders[4]', `extension provider "a" must set exactly one provider type (envoyExtAuthzHttp, envoyExtAuthzGrpc, zipkin, lightstep, datadog, stackdriver, opencensus, skywalking, opentelemetry, prometheus, envoyFileAccessLog, envoyHttpAls, envoyTcpAls, envoyOtelAls, sds), found zipkin, prometheus`],
        ['extensionProviders[5]', 'extension provider "b" must set exactly one provider type (envoyExtAuthzHttp, envoyExtAuthzGrpc, zipkin, lightstep, datadog, stackdriver, opencensus, skywalking, opentelemetry, prometheus, envoyFileAccessLog, envoyHttpAls, envoyTcpAls, envoyOtelAls, sds), found none'],
        ['extensionProviders[6].envoyExtAuthzGrpc.service', 'invalid service "bad host": domain name "bad host" invalid (label "bad host" invalid)'],
        ['extensionProviders[6].envoyExtAuthzGrpc.port', 'invalid port 0: port number must be in the range 1..65535'],
        ['extensionProviders[7].name', 'duplicate extension provider name "c"'],
        ['extensionProviders[7].envoyExtAuthzHttp.port', 'port must be set'],
        ['extensionProviders[7].envoyExtAuthzHttp.statusOnError', 'invalid statusOnError "999": must be an HTTP status code 100..599'],
        ['extensionProviders[7].envoyExtAuthzHttp.pathPrefix', 'pathPrefix "check" must start with "/"'],
        ['extensionProviders[8].envoyFileAccessLog.logFormat', 'only one of text or labels may be set'],
      ],
    },
    {
      name: 'unknown field in a provider (schema)',
      input: { extensionProviders: [{ name: 'x', envoyExtAuthzGrpc: { service: 'a', port: 1, pathPrefix: '/x' } }] },
      errors: [['extensionProviders[3].envoyExtAuthzGrpc.pathPrefix', 'unknown field "pathPrefix"']],
    },
    {
      name: 'default provider not defined warns',
      input: { defaultProviders: { tracing: ['jaeger'], accessLogging: ['envoy'] } },
      errors: [],
      warnings: [['defaultProviders.tracing[0]', 'default provider "jaeger" is not defined in extensionProviders']],
    },
    {
      name: 'discovery selectors',
      input: { discoverySelectors: [{ matchExpressions: [{ key: 'env', operator: 'In' }, { key: 'x', operator: 'Exists', values: ['a'] }, { key: '-bad', operator: 'NotIn', values: ['a'] }] }] },
      errors: [
        ['discoverySelectors[0].matchExpressions[0].values', 'operator In needs at least one value'],
        ['discoverySelectors[0].matchExpressions[1].values', 'operator Exists takes no values'],
        ['discoverySelectors[0].matchExpressions[2].key', 'invalid label key "-bad": name must be 1-63 characters of [A-Za-z0-9_.-], starting and ending alphanumeric'],
      ],
    },
    {
      name: 'mixer servers and retry policy',
      input: { mixerCheckServer: 'istio-policy', defaultHttpRetryPolicy: { attempts: -1, perTryTimeout: '1' } },
      errors: [
        ['mixerCheckServer', 'invalid address "istio-policy": must be host:port'],
        ['defaultHttpRetryPolicy.attempts', 'attempts cannot be negative'],
        ['defaultHttpRetryPolicy.perTryTimeout', 'invalid duration "1" (use a number with a unit: ns, us, ms, s, m, h, such as "1.5s")'],
      ],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const result = validateMeshConfig(c.input);
      const pick = (sev: string) => result.diagnostics.filter((d) => d.severity === sev).map((d) => [d.path, d.message]);
      assert.deepEqual(pick('error'), c.errors);
      assert.deepEqual(pick('warning'), c.warnings ?? []);
      assert.equal(result.config === undefined, c.errors.length > 0);
    });
  }
});

function parseMeshConfigText(text: string): unknown {
  return parseYaml(text) as unknown;
}

