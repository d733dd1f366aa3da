// CEXL: typing against the vocabulary, Istio's `|` default operator and
// functions, evaluation with absent attributes, and the type errors the
// config API reports with field paths.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AttributeVocabulary, compileExpression, istioKinds, validateObject } from '../../src/api/index.ts';
import { AttributeBag } from '../../src/mixer/index.ts';

const vocab = AttributeVocabulary.builtin();
const bag = AttributeBag.of({
  'source.labels': new Map([['version', 'v1'], ['app', 'productpage']]),
  'source.ip': '10.1.2.3',
  'request.headers': new Map([['user-agent', 'curl/8'], ['x-user', 'jason']]),
  'request.path': '/api/v1/reviews',
  'request.size': 120,
  'response.code': 503,
  'destination.service.host': 'reviews.default.svc.cluster.local',
  'request.time': new Date('2026-01-01T00:00:10Z'),
  'response.duration': 250,
});

describe('CEXL evaluation', () => {
  const cases: { name: string; expr: string; want: unknown; type?: string }[] = [
    { name: 'map index', expr: 'source.labels["version"] == "v1"', want: true, type: 'BOOL' },
    { name: 'map select form', expr: 'source.labels.app', want: 'productpage', type: 'STRING' },
    { name: 'default on absent attribute', expr: 'destination.labels["app"] | "unknown"', want: 'unknown', type: 'STRING' },
    { name: 'default on absent key', expr: 'request.headers["x-missing"] | request.headers["x-user"] | "none"', want: 'jason' },
    { name: 'default keeps present', expr: 'response.code | 200', want: 503, type: 'INT64' },
    { name: '| binds tighter than ==', expr: 'source.principal | "anon" == "anon"', want: true },
    { name: '| is additive level, left-assoc', expr: 'request.size | 0 + 1', want: 121 },
    { name: '|| still or', expr: 'false || request.size > 100', want: true },
    { name: 'absent and false is false', expr: 'source.principal == "x" && false', want: false },
    { name: 'absent match is absent', expr: 'source.principal == "x"', want: undefined },
    { name: 'match prefix glob', expr: 'match(destination.service.host, "reviews.*")', want: true },
    { name: 'match suffix glob', expr: 'match(destination.service.host, "*.cluster.local")', want: true },
    { name: 'ip equality', expr: 'source.ip == ip("10.1.2.3")', want: true },
    { name: 'startsWith receiver', expr: 'request.path.startsWith("/api")', want: true },
    { name: 'endsWith function', expr: 'endsWith(request.path, "reviews")', want: true },
    { name: 'matches with pattern receiver (Istio)', expr: '"^/api/v[0-9]+/".matches(request.path)', want: true },
    { name: 'conditional', expr: 'conditional(response.code >= 500, "error", "ok")', want: 'error' },
    { name: 'toLower', expr: 'toLower("ABC")', want: 'abc' },
    { name: 'size of map', expr: 'size(source.labels)', want: 2 },
    { name: 'reverse', expr: 'reverse("abc")', want: 'cba' },
    { name: 'emptyStringMap default', expr: 'size(destination.labels | emptyStringMap())', want: 0 },
    { name: 'timestamp compare', expr: 'request.time > timestamp("2026-01-01T00:00:00Z")', want: true },
    { name: 'duration literal', expr: 'response.duration < duration("1s")', want: true },
    { name: 'int and double mix', expr: 'request.size * 1.5', want: 180, type: 'DOUBLE' },
    { name: '| inside a string literal is text', expr: '"a|b"', want: 'a|b' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const r = compileExpression(c.expr, vocab);
      assert.deepEqual(r.errors, []);
      assert.deepEqual(r.expression!.evaluate(bag), c.want);
      if (c.type) assert.equal(r.expression!.type, c.type);
    });
  }
  test('referenced attributes are listed', () => {
    const r = compileExpression('source.labels["version"] == "v1" && request.path | "" == "/"', vocab);
    assert.deepEqual(r.expression!.attributes, ['request.path', 'source.labels']);
  });
});

describe('CEXL type errors', () => {
  const cases: { name: string; expr: string; error: RegExp }[] = [
    { name: 'unknown attribute with a suggestion', expr: 'source.lables["x"] == "y"', error: /unknown attribute "source.lables".*did you mean "source.labels"/ },
    { name: 'int vs string', expr: 'response.code == "200"', error: /cannot compare INT64 with STRING/ },
    { name: 'default of other type', expr: 'response.code | "x"', error: /operator "\|" needs operands of one type, got INT64 and STRING/ },
    { name: 'not on string', expr: '!request.path', error: /"!" needs BOOL, got STRING/ },
    { name: 'unknown function', expr: 'frobnicate(request.path)', error: /unknown function "frobnicate"/ },
    { name: 'bad ip literal', expr: 'source.ip == ip("10.0.0.300")', error: /not a valid IP_ADDRESS/ },
    { name: 'bad regex literal', expr: '"(".matches(request.path)', error: /invalid regular expression/ },
    { name: 'index a string', expr: 'request.path["x"]', error: /needs STRING_MAP, got STRING/ },
    { name: 'dangling pipe', expr: 'request.path |', error: /ends with operator/ },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const r = compileExpression(c.expr, vocab);
      assert.equal(r.expression, undefined);
      assert.match(r.errors.join('\n'), c.error);
    });
  }
  test('a manifest extends the vocabulary; retyping is a conflict', () => {
    const { vocabulary, conflicts } = vocab.extend([['myorg.tenant', 'STRING'], ['request.size', 'STRING']]);
    assert.deepEqual(conflicts, ['request.size: declared STRING, already INT64']);
    assert.deepEqual(compileExpression('myorg.tenant == "a"', vocabulary).errors, []);
    assert.match(compileExpression('myorg.tenant == "a"', vocab).errors.join(), /unknown attribute/);
  });
});

describe('config validation types expressions (field paths)', () => {
  const meta = { name: 'x', namespace: 'istio-system' };
  const errorsOf = (kind: string, spec: unknown): [string, string][] =>
    validateObject({ apiVersion: 'config.istio.io/v1alpha2', kind, metadata: meta, spec }, istioKinds).diagnostics.filter((d) => d.severity === 'error').map((d) => [d.path, d.message]);
  test('rule match of the wrong type', () => {
    assert.deepEqual(errorsOf('rule', { match: 'request.size + 1', actions: [{ handler: 'h', instances: ['i'] }] }), [['spec.match', 'match expression "request.size + 1" is INT64, it must be BOOL']]);
  });
  test('rule match with a typo in a built-in attribute', () => {
    const errs = errorsOf('rule', { match: 'source.lables["version"] == "v1"', actions: [{ handler: 'h', instances: ['i'] }] });
    assert.equal(errs.length, 1);
    assert.equal(errs[0]![0], 'spec.match');
    assert.match(errs[0]![1], /unknown attribute "source.lables"/);
  });
  test('an attribute outside the built-in roots is only a warning (an attributemanifest may declare it)', () => {
    const r = validateObject({ apiVersion: 'config.istio.io/v1alpha2', kind: 'rule', metadata: meta, spec: { match: 'myorg.tenant == "a"', actions: [{ handler: 'h', instances: ['i'] }] } }, istioKinds);
    assert.deepEqual(r.diagnostics.map((d) => [d.severity, d.path]), [['warning', 'spec.match']]);
  });
  test('metric instance dimension type error names the dimension', () => {
    const errs = errorsOf('instance', { compiledTemplate: 'metric', params: { value: '1', dimensions: { response_code: 'response.code == "x"', source: 'source.workload.name | "unknown"' } } });
    assert.deepEqual(errs, [['spec.params.dimensions.response_code', 'invalid expression "response.code == "x"": operator "==" cannot compare INT64 with STRING']]);
  });
  test('logentry timestamp must be a TIMESTAMP', () => {
    const errs = errorsOf('instance', { compiledTemplate: 'logentry', params: { severity: '"info"', timestamp: 'request.path', variables: {} } });
    assert.deepEqual(errs, [['spec.params.timestamp', 'expression "request.path" is STRING, the field needs TIMESTAMP']]);
  });
  test('unknown template field and unknown template', () => {
    assert.deepEqual(errorsOf('instance', { compiledTemplate: 'listentry', params: { value: 'source.ip', extra: '1' } }).map((e) => e[0]), ['spec.params.extra']);
    assert.deepEqual(errorsOf('instance', { compiledTemplate: 'nosuch' }).map((e) => e[0]), ['spec.compiledTemplate']);
  });
});

describe("Istio 1.4's own telemetry config type-checks", () => {
  const meta = { name: 'requestcount', namespace: 'istio-system' };
  const cases: { name: string; template: string; params: Record<string, unknown> }[] = [
    {
      name: 'requestcount metric',
      template: 'metric',
      params: {
        value: '1',
        dimensions: {
          reporter: 'conditional((context.reporter.kind | "inbound") == "outbound", "source", "destination")',
          source_workload: 'source.workload.name | "unknown"',
          source_principal: 'source.principal | "unknown"',
          destination_service: 'destination.service.host | "unknown"',
          request_protocol: 'api.protocol | context.protocol | "unknown"',
          response_code: 'response.code | 200',
          response_flags: 'context.proxy_error_code | "-"',
          connection_security_policy: 'conditional((context.reporter.kind | "inbound") == "outbound", "unknown", conditional(connection.mtls | false, "mutual_tls", "none"))',
          permissive_response_code: 'rbac.permissive.response_code | "none"',
        },
        monitored_resource_type: '"UNSPECIFIED"',
      },
    },
    {
      name: 'accesslog logentry',
      template: 'logentry',
      params: {
        severity: '"Info"',
        timestamp: 'request.time',
        variables: {
          originIp: 'origin.ip | ip("0.0.0.0")',
          sourceIp: 'source.ip | ip("0.0.0.0")',
          latency: 'response.duration | "0ms"',
          requestSize: 'request.size | 0',
          userAgent: 'request.useragent | ""',
          responseTimestamp: 'response.time',
        },
      },
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const r = validateObject({ apiVersion: 'config.istio.io/v1alpha2', kind: 'instance', metadata: meta, spec: { compiledTemplate: c.template, params: c.params } }, istioKinds);
      assert.deepEqual(r.diagnostics, []);
    });
  }
  test('a string literal default converts to the attribute type at compile time', () => {
    const r = compileExpression('response.duration | "0ms"', vocab);
    assert.equal(r.expression!.type, 'DURATION');
    assert.equal(r.expression!.evaluate(AttributeBag.EMPTY), 0);
    assert.match(compileExpression('response.duration | "soon"', vocab).errors.join(), /"soon" is not a valid DURATION/);
  });
});
