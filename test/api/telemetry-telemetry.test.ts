// Telemetry: Istio's documented examples validate in v1 and v1alpha1; every
// tracing, metrics and access-logging rule reports its path and message.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { istioKinds, validateObject, validateText } from '../../src/api/index.ts';

function diagnosticsOf(spec: unknown) {
  const result = validateObject({ apiVersion: 'telemetry.istio.io/v1', kind: 'Telemetry', metadata: { name: 't', namespace: 'foo' }, spec }, istioKinds);
  const pick = (sev: string) => result.diagnostics.filter((d) => d.severity === sev).map((d) => [d.path, d.message]);
  return { errors: pick('error'), warnings: pick('warning') };
}

describe('Telemetry: valid objects', () => {
  const docs = [
    {
      name: 'mesh-default access logging with envoy provider',
      text: 'metadata: { name: mesh-default, namespace: istio-system }\nspec:\n  accessLogging:\n  - providers:\n    - name: envoy\n',
    },
    {
      name: 'full-featured workload telemetry',
      text: `
metadata: { name: full, namespace: foo }
spec:
  selector:
    matchLabels: { app: reviews }
  tracing:
  - match: { mode: SERVER }
    providers: [{ name: zipkin }]
    randomSamplingPercentage: 10.5
    disableSpanReporting: false
    useRequestIdForTraceSampling: true
    customTags:
      cluster: { literal: { value: east } }
      pod: { environment: { name: POD_NAME, defaultValue: unknown } }
      user: { header: { name: x-user, defaultValue: anonymous } }
  metrics:
  - providers: [{ name: prometheus }]
    reportingInterval: 10s
    overrides:
    - match: { metric: REQUEST_COUNT, mode: CLIENT_AND_SERVER }
      disabled: false
      tagOverrides:
        request_host: { value: "request.host" }
        response_flags: { operation: REMOVE }
    - match: { customMetric: my_metric, mode: CLIENT }
      disabled: true
    - match: { metric: GRPC_RESPONSE_MESSAGES }
  accessLogging:
  - match: { mode: CLIENT }
    providers: [{ name: envoy }]
    disabled: false
    filter:
      expression: "response.code >= 400 || !has(request.useragent)"`,
    },
    {
      name: 'targetRefs to a waypoint',
      text: 'metadata: { name: waypoint, namespace: foo }\nspec:\n  targetRefs:\n  - { kind: Gateway, group: gateway.networking.k8s.io, name: waypoint }\n  metrics:\n  - overrides:\n    - disabled: true\n',
    },
  ];
  for (const version of ['v1', 'v1alpha1']) {
    for (const doc of docs) {
      it(`${doc.name} (${version})`, () => {
        const [result] = validateText(`apiVersion: telemetry.istio.io/${version}\nkind: Telemetry\n${doc.text}`, istioKinds);
        assert.deepEqual(result!.diagnostics, []);
        assert.equal(result!.kind?.kind, 'Telemetry');
      });
    }
  }
});

describe('Telemetry: rules', () => {
  const cases: { name: string; spec: unknown; errors: string[][]; warnings?: string[][] }[] = [
    { name: 'empty provider name', spec: { tracing: [{ providers: [{ name: '' }] }] }, errors: [['spec.tracing[0].providers[0].name', 'providers.name may not be empty']] },
    {
      name: 'multiple tracing and providers warn',
      spec: { tracing: [{ providers: [{ name: 'a' }, { name: 'b' }] }, {}] },
      errors: [],
      warnings: [['spec.tracing', 'multiple tracing is not currently supported'], ['spec.tracing[0].providers', 'multiple providers is not currently supported']],
    },
    { name: 'sampling out of range', spec: { tracing: [{ randomSamplingPercentage: 100.5 }] }, errors: [['spec.tracing[0].randomSamplingPercentage', 'randomSamplingPercentage must be in range [0.0, 100.0]']] },
    {
      name: 'custom tags',
      spec: { tracing: [{ customTags: { a: { literal: { value: '' } }, b: { header: { name: '' } }, c: { environment: { name: '' } }, d: {}, e: { literal: { value: 'x' }, header: { name: 'y' } } } }] },
      errors: [
        ['spec.tracing[0].customTags.a.literal.value', 'literal tag value may not be empty'],
        ['spec.tracing[0].customTags.b.header.name', 'header tag name may not be empty'],
        ['spec.tracing[0].customTags.c.environment.name', 'environment tag name may not be empty'],
        ['spec.tracing[0].customTags.d', "tag 'd' must set exactly one of literal, environment or header"],
        ['spec.tracing[0].customTags.e', "tag 'e' must set exactly one of literal, environment or header"],
      ],
    },
    {
      name: 'tag overrides',
      spec: { metrics: [{ overrides: [{ tagOverrides: { a: {}, b: { operation: 'UPSERT', value: '' }, c: { operation: 'REMOVE', value: 'x' } } }] }] },
      errors: [
        ['spec.metrics[0].overrides[0].tagOverrides.a.value', 'tagOverrides.value must be set when operation is UPSERT'],
        ['spec.metrics[0].overrides[0].tagOverrides.b.value', 'tagOverrides.value must be set when operation is UPSERT'],
        ['spec.metrics[0].overrides[0].tagOverrides.c.value', 'tagOverrides.value may only be set when operation is UPSERT'],
      ],
    },
    {
      name: 'metric selector',
      spec: { metrics: [{ overrides: [{ match: { metric: 'REQUEST_COUNT', customMetric: 'x' } }, { match: { customMetric: '' } }] }] },
      errors: [
        ['spec.metrics[0].overrides[0].match', 'only one of metric or customMetric may be set'],
        ['spec.metrics[0].overrides[1].match.customMetric', 'customMetric may not be empty'],
      ],
    },
    { name: 'unknown metric (schema)', spec: { metrics: [{ overrides: [{ match: { metric: 'REQUESTS' } }] }] }, errors: [['spec.metrics[0].overrides[0].match.metric', `invalid value string "REQUESTS"; allowed: ${['ALL_METRICS', 'REQUEST_COUNT', 'REQUEST_DURATION', 'REQUEST_SIZE', 'RESPONSE_SIZE', 'TCP_OPENED_CONNECTIONS', 'TCP_CLOSED_CONNECTIONS', 'TCP_SENT_BYTES', 'TCP_RECEIVED_BYTES', 'GRPC_REQUEST_MESSAGES', 'GRPC_RESPONSE_MESSAGES'].map((m) => `"${m}"`).join(', ')}`]] },
    { name: 'bad reporting interval', spec: { metrics: [{ reportingInterval: '0s' }] }, errors: [['spec.metrics[0].reportingInterval', 'duration must be >= 1ms']] },
    {
      name: 'access log filter',
      spec: { accessLogging: [{ filter: { expression: '' } }, { filter: { expression: 'response.code >= 400 &&' } }, { filter: { expression: 'has(request.useragent' } }] },
      errors: [
        ['spec.accessLogging[0].filter.expression', 'filter expression may not be empty'],
        ['spec.accessLogging[1].filter.expression', 'invalid filter expression: expression ends with operator "&&"'],
        ['spec.accessLogging[2].filter.expression', 'invalid filter expression: unclosed "(" at column 4'],
      ],
    },
    { name: 'selector with targetRef', spec: { selector: { matchLabels: { a: 'b' } }, targetRef: { kind: 'Service', name: 's' } }, errors: [['spec', 'only one of targetRefs or workloadSelector can be set']] },
    { name: 'unknown mode (schema)', spec: { accessLogging: [{ match: { mode: 'BOTH' } }] }, errors: [['spec.accessLogging[0].match.mode', 'invalid value string "BOTH"; allowed: "CLIENT_AND_SERVER", "CLIENT", "SERVER"']] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = diagnosticsOf(c.spec);
      assert.deepEqual(got.errors, c.errors);
      assert.deepEqual(got.warnings, c.warnings ?? []);
    });
  }
});
