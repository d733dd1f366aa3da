// Mixer-era config.istio.io/v1alpha2 kinds: Istio 1.x's denier and memquota
// samples validate cleanly; each semantic rule reports its path and message.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { istioKinds, validateObject, validateText } from '../../src/api/index.ts';
import { expressionSyntaxProblem } from '../../src/api/kinds/policy/expression-syntax.ts';

function diagnosticsOf(kind: string, spec: unknown) {
  const result = validateObject({ apiVersion: 'config.istio.io/v1alpha2', kind, metadata: { name: 'x', namespace: 'istio-system' }, spec }, istioKinds);
  const pick = (sev: string) => result.diagnostics.filter((d) => d.severity === sev).map((d) => [d.path, d.message]);
  return { errors: pick('error'), warnings: pick('warning') };
}

const DENIER = `
apiVersion: "config.istio.io/v1alpha2"
kind: handler
metadata:
  name: denyreviewsv3handler
spec:
  compiledAdapter: denier
  params:
    status:
      code: 7
      message: Not allowed
---
apiVersion: "config.istio.io/v1alpha2"
kind: instance
metadata:
  name: denyreviewsv3request
spec:
  compiledTemplate: checknothing
---
apiVersion: "config.istio.io/v1alpha2"
kind: rule
metadata:
  name: denyreviewsv3
spec:
  match: destination.labels["app"] == "ratings" && source.labels["app"]=="reviews" && source.labels["version"] == "v3"
  actions:
  - handler: denyreviewsv3handler
    instances: [ denyreviewsv3request ]
`;

const MEMQUOTA = `
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata:
  name: quotahandler
  namespace: istio-system
spec:
  compiledAdapter: memquota
  params:
    quotas:
    - name: requestcountquota.instance.istio-system
      maxAmount: 500
      validDuration: 1s
      overrides:
      - dimensions:
          destination: reviews
        maxAmount: 1
        validDuration: 5s
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata:
  name: requestcountquota
  namespace: istio-system
spec:
  compiledTemplate: quota
  params:
    dimensions:
      source: request.headers["x-forwarded-for"] | "unknown"
      destination: destination.labels["app"] | destination.service.name | "unknown"
      destinationVersion: destination.labels["version"] | "unknown"
---
apiVersion: config.istio.io/v1alpha2
kind: QuotaSpec
metadata:
  name: request-count
  namespace: istio-system
spec:
  rules:
  - quotas:
    - charge: 1
      quota: requestcountquota
---
apiVersion: config.istio.io/v1alpha2
kind: QuotaSpecBinding
metadata:
  name: request-count
  namespace: istio-system
spec:
  quotaSpecs:
  - name: request-count
    namespace: istio-system
  services:
  - name: productpage
    namespace: default
  - service: '*'
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata:
  name: quota
  namespace: istio-system
spec:
  actions:
  - handler: quotahandler
    instances:
    - requestcountquota
`;

const FULL = `
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: grpc-adapter, namespace: istio-system }
spec:
  adapter: mygrpcadapter
  params: { file_path: out.txt }
  connection:
    address: "mygrpcadapter.istio-system:44225"
    timeout: 2s
    authentication:
      mutual: { privateKey: /etc/certs/key.pem, clientCertificate: /etc/certs/cert.pem, caCertificates: /etc/certs/ca.pem }
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: requestsize, namespace: istio-system }
spec:
  template: metric
  params:
    value: request.size | 0
    dimensions: { response_code: response.code | 200 }
  attributeBindings:
    source.service: source.labels["app"] | "unknown"
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: full, namespace: istio-system }
spec:
  match: (request.path | "/").startsWith("/api") || request.headers["x-user"] == 'admin'
  actions:
  - handler: grpc-adapter.istio-system
    instances: [requestsize, requestcountquota.istio-system]
    name: a1
  requestHeaderOperations:
  - name: x-user-group
    values: [a1.output.group]
  - name: x-internal
    operation: REMOVE
  responseHeaderOperations:
  - name: x-checked
    values: ["true"]
    operation: APPEND
  sampling:
    random:
      attributeExpression: request.id
      percentSampled: { numerator: 5, denominator: TEN_THOUSAND }
      useIndependentRandomness: true
    rateLimit: { samplingDuration: 1s, maxUnsampledEntries: 100, samplingRate: 10 }
---
apiVersion: config.istio.io/v1alpha2
kind: attributemanifest
metadata: { name: istioproxy, namespace: istio-system }
spec:
  revision: "1"
  name: istio-proxy
  attributes:
    origin.ip: { valueType: IP_ADDRESS }
    request.headers: { valueType: STRING_MAP, description: the request headers }
    request.size: { valueType: INT64 }
    response.duration: { valueType: DURATION }
    request.time: { valueType: TIMESTAMP }
    connection.mtls: { valueType: BOOL }
    request.auth.principal: { valueType: STRING }
    source.homepage: { valueType: URI }
    destination.host: { valueType: DNS_NAME }
    source.email: { valueType: EMAIL_ADDRESS }
    score: { valueType: DOUBLE }
---
apiVersion: config.istio.io/v1alpha2
kind: QuotaSpec
metadata: { name: full, namespace: istio-system }
spec:
  rules:
  - match:
    - clause:
        request.path: { prefix: /api }
        request.method: { exact: POST }
        request.headers[x-user]: { regex: "^admin-[a-z]+$" }
    quotas:
    - { quota: requestcountquota.istio-system, charge: 2 }
`;

describe('Mixer kinds: valid objects', () => {
  for (const [name, text] of [['denier sample', DENIER], ['memquota sample', MEMQUOTA], ['every field', FULL]] as const) {
    it(name, () => {
      const results = validateText(text, istioKinds);
      assert.ok(results.length >= 3);
      for (const r of results) {
        assert.ok(r.kind, `${r.object.kind} is a known kind`);
        assert.deepEqual(r.diagnostics, [], `${r.object.kind} ${r.object.metadata.name}`);
      }
    });
  }
  it('resolves kinds by plural', () => {
    for (const plural of ['handlers', 'instances', 'rules', 'attributemanifests', 'quotaspecs', 'quotaspecbindings']) {
      assert.equal(istioKinds.resolve(plural)?.group, 'config.istio.io', plural);
    }
  });
  it('rejects other versions', () => {
    const r = validateObject({ apiVersion: 'config.istio.io/v1beta1', kind: 'rule', metadata: { name: 'r' }, spec: {} }, istioKinds);
    assert.deepEqual(r.diagnostics.map((d) => [d.path, d.message]), [['apiVersion', 'rule does not support apiVersion "config.istio.io/v1beta1"; supported: config.istio.io/v1alpha2']]);
  });
});

describe('Mixer kinds: rules', () => {
  const cases: { name: string; kind: string; spec: unknown; errors: string[][]; warnings?: string[][] }[] = [
    { name: 'handler without adapter', kind: 'handler', spec: { params: {} }, errors: [['spec', 'a handler needs compiledAdapter (built-in adapter) or adapter (out-of-process adapter)']] },
    {
      name: 'handler with both adapters',
      kind: 'handler',
      spec: { compiledAdapter: 'denier', adapter: 'x', connection: { address: 'x:1' } },
      errors: [['spec', 'only one of compiledAdapter or adapter may be set'], ['spec.connection', 'connection is only for out-of-process adapters (adapter), not compiledAdapter']],
    },
    { name: 'out-of-process handler without connection', kind: 'handler', spec: { adapter: 'x' }, errors: [['spec.connection', 'an out-of-process adapter needs connection.address']] },
    {
      name: 'handler connection problems',
      kind: 'handler',
      spec: { adapter: 'x', connection: { address: 'no-port', timeout: 'soon', authentication: {} } },
      errors: [
        ['spec.connection.address', 'invalid address "no-port": use host:port'],
        ['spec.connection.timeout', 'invalid duration "soon" (use a number with a unit: ns, us, ms, s, m, h, such as "1.5s")'],
        ['spec.connection.authentication', 'exactly one of tls or mutual must be set'],
      ],
    },
    { name: 'handler params must be a mapping (schema)', kind: 'handler', spec: { compiledAdapter: 'denier', params: [1] }, errors: [['spec.params', 'expected record, got a list']] },
    { name: 'instance without template', kind: 'instance', spec: { params: {} }, errors: [['spec', 'an instance needs compiledTemplate (built-in template) or template (out-of-process template)']] },
    { name: 'instance with both templates', kind: 'instance', spec: { compiledTemplate: 'metric', template: 'metric' }, errors: [['spec', 'only one of compiledTemplate or template may be set']] },
    {
      name: 'instance attribute binding syntax',
      kind: 'instance',
      spec: { compiledTemplate: 'metric', params: { value: '1' }, attributeBindings: { 'source.service': 'source.labels["app"', 'x': ' ' } },
      errors: [['spec.attributeBindings["source.service"]', 'invalid expression: unclosed "[" at column 14'], ['spec.attributeBindings.x', 'invalid expression: expression may not be empty']],
    },
    {
      name: 'rule match syntax',
      kind: 'rule',
      spec: { match: 'destination.labels["app"] == "ratings', actions: [{ handler: 'h', instances: ['i'] }] },
      errors: [['spec.match', 'invalid match expression: unterminated string starting at column 30']],
    },
    {
      name: 'rule match with an unbalanced parenthesis',
      kind: 'rule',
      spec: { match: 'a == b)', actions: [{ handler: 'h', instances: ['i'] }] },
      errors: [['spec.match', 'invalid match expression: unbalanced ")" at column 7']],
    },
    {
      name: 'rule match with a dangling operator',
      kind: 'rule',
      spec: { match: '&& a == b', actions: [{ handler: 'h', instances: ['i'] }] },
      errors: [['spec.match', 'invalid match expression: missing operand before "&&" at column 1']],
    },
    {
      name: 'rule action references',
      kind: 'rule',
      spec: { actions: [{ handler: 'Bad_Handler', instances: ['ok', 'a.b.c.d', ''] }, { handler: '', instances: [] }] },
      errors: [
        ['spec.actions[0].handler', 'invalid handler reference "Bad_Handler": use "name" or "name.namespace" (DNS-1123 labels)'],
        ['spec.actions[0].instances[1]', 'invalid instance reference "a.b.c.d": use "name" or "name.namespace" (DNS-1123 labels)'],
        ['spec.actions[0].instances[2]', 'instance reference must not be empty'],
        ['spec.actions[1].handler', 'handler reference must not be empty'],
        ['spec.actions[1].instances', 'an action needs at least one instance'],
      ],
    },
    {
      name: 'rule action names',
      kind: 'rule',
      spec: { actions: [{ handler: 'h', instances: ['i'], name: 'a' }, { handler: 'h', instances: ['i'], name: 'a' }, { handler: 'h', instances: ['i'], name: 'a.b' }] },
      errors: [['spec.actions[1].name', 'duplicate action name "a"'], ['spec.actions[2].name', 'invalid action name "a.b": letters, digits, "-" and "_" only']],
    },
    { name: 'rule without actions warns', kind: 'rule', spec: { match: 'true' }, errors: [], warnings: [['spec.actions', 'rule has no actions and no header operations; it does nothing']] },
    {
      name: 'rule header operations and sampling',
      kind: 'rule',
      spec: {
        requestHeaderOperations: [{ name: '' , values: ['x'] }, { name: 'x-a' }],
        responseHeaderOperations: [{ name: 'x-b', operation: 'APPEND', values: [] }],
        sampling: { random: { percentSampled: { numerator: 101 } }, rateLimit: { samplingDuration: '0s' } },
      },
      errors: [
        ['spec.requestHeaderOperations[0].name', 'header name must not be empty'],
        ['spec.requestHeaderOperations[1].values', 'operation REPLACE needs at least one value'],
        ['spec.responseHeaderOperations[0].values', 'operation APPEND needs at least one value'],
        ['spec.sampling.random.percentSampled.numerator', 'numerator 101 exceeds the denominator 100'],
        ['spec.sampling.rateLimit.samplingDuration', 'duration must be >= 1ms'],
      ],
    },
    { name: 'attributemanifest value type (schema)', kind: 'attributemanifest', spec: { attributes: { a: { valueType: 'INT' } } }, errors: [['spec.attributes.a.valueType', 'invalid value string "INT"; allowed: "STRING", "INT64", "DOUBLE", "BOOL", "TIMESTAMP", "IP_ADDRESS", "EMAIL_ADDRESS", "URI", "DNS_NAME", "DURATION", "STRING_MAP", "BYTES"']] },
    { name: 'attributemanifest attribute name', kind: 'attributemanifest', spec: { attributes: { 'a..b': { valueType: 'STRING' } } }, errors: [['spec.attributes["a..b"]', 'invalid attribute name "a..b": dot-separated words of letters, digits, "_" and "-"']] },
    { name: 'QuotaSpec without rules', kind: 'QuotaSpec', spec: {}, errors: [['spec.rules', 'at least one rule must be specified']] },
    {
      name: 'QuotaSpec rule problems',
      kind: 'QuotaSpec',
      spec: { rules: [{ match: [{ clause: {} }, { clause: { a: {}, b: { exact: 'x', prefix: 'y' }, c: { regex: '(' } } }] }, { quotas: [{ quota: '', charge: 1 }, { quota: 'q' }, { quota: 'Q!', charge: -1 }] }] },
      errors: [
        ['spec.rules[0].match[0].clause', 'at least one match clause must be specified'],
        ['spec.rules[0].match[1].clause.a', 'exactly one of exact, prefix or regex must be set'],
        ['spec.rules[0].match[1].clause.b', 'exactly one of exact, prefix or regex must be set'],
        ['spec.rules[0].match[1].clause.c.regex', 'invalid regex "(" (RE2 syntax): error parsing regexp: missing closing ): `(`'],
        ['spec.rules[0].quotas', 'at least one quota must be specified'],
        ['spec.rules[1].quotas[0].quota', 'quota name must not be empty'],
        ['spec.rules[1].quotas[1].charge', 'quota charge amount must be positive, got 0'],
        ['spec.rules[1].quotas[2].quota', 'invalid quota name "Q!": use the instance name, "name" or "name.namespace"'],
        ['spec.rules[1].quotas[2].charge', 'quota charge amount must be positive, got -1'],
      ],
    },
    { name: 'QuotaSpecBinding empty', kind: 'QuotaSpecBinding', spec: {}, errors: [['spec.services', 'at least one service must be specified'], ['spec.quotaSpecs', 'at least one spec must be specified']] },
    {
      name: 'QuotaSpecBinding service and spec problems',
      kind: 'QuotaSpecBinding',
      spec: {
        services: [{ service: 'reviews.default.svc.cluster.local', name: 'reviews' }, {}, { name: 'Reviews', namespace: 'a_b' }, { service: 'bad..host' }],
        quotaSpecs: [{ name: '' }, { name: 'q', namespace: 'Bad' }],
      },
      errors: [
        ['spec.services[0]', 'name, namespace and domain must be empty when service is set'],
        ['spec.services[1].name', 'name or service is required'],
        ['spec.services[2].name', 'name "Reviews" must be a valid DNS-1123 label'],
        ['spec.services[2].namespace', 'namespace "a_b" must be a valid DNS-1123 label'],
        ['spec.services[3].service', 'domain name "bad..host" invalid (label "" invalid)'],
        ['spec.quotaSpecs[0].name', 'name is required'],
        ['spec.quotaSpecs[1].namespace', 'namespace "Bad" must be a valid DNS-1123 label'],
      ],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = diagnosticsOf(c.kind, c.spec);
      assert.deepEqual(got.errors, c.errors);
      assert.deepEqual(got.warnings, c.warnings ?? []);
    });
  }
});

describe('expression syntax check', () => {
  const cases: [string, string, string | undefined][] = [
    ['plain comparison', 'request.size > 100', undefined],
    ['defaults with |', 'a | b | "c"', undefined],
    ['map access and ternary-free CEL', 'request.headers["x"].startsWith("a") && !(b || c)', undefined],
    ['escaped quote in string', '"a\\"b" == x', undefined],
    ['mismatched brackets', 'a[(b])', 'unbalanced "]" at column 5'],
    ['trailing pipe', 'a |', 'expression ends with operator "|"'],
    ['operator before close paren', '(a ||)', 'missing operand before ")" at column 6'],
    ['double operator', 'a && || b', 'missing operand before "||" at column 6'],
  ];
  for (const [name, text, want] of cases) {
    it(name, () => assert.equal(expressionSyntaxProblem(text), want));
  }
});
