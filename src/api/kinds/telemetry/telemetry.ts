// telemetry.istio.io Telemetry: per mesh, namespace or workload overrides of
// tracing, metrics and access logging, each bound to MeshConfig providers.

import type { Diagnostics, FieldPath } from '../../diagnostics.ts';
import type { KindDefinition, ValidationContext } from '../../kind-registry.ts';
import { duration, strict, z } from '../../schema.ts';
import { checkDuration } from '../../validators.ts';
import { expressionSyntaxProblem } from '../policy/expression-syntax.ts';
import { checkPolicyTargets, targetFields } from '../security/policy-target.ts';

export const WORKLOAD_MODES = ['CLIENT_AND_SERVER', 'CLIENT', 'SERVER'] as const;
export const ISTIO_METRICS = [
  'ALL_METRICS', 'REQUEST_COUNT', 'REQUEST_DURATION', 'REQUEST_SIZE', 'RESPONSE_SIZE', 'TCP_OPENED_CONNECTIONS',
  'TCP_CLOSED_CONNECTIONS', 'TCP_SENT_BYTES', 'TCP_RECEIVED_BYTES', 'GRPC_REQUEST_MESSAGES', 'GRPC_RESPONSE_MESSAGES',
] as const;

const providerRef = strict({ name: z.string() });
const providers = z.array(providerRef).optional();
const selectorByMode = strict({ mode: z.enum(WORKLOAD_MODES).optional() });

const customTag = strict({
  literal: strict({ value: z.string() }).optional(),
  environment: strict({ name: z.string(), defaultValue: z.string().optional() }).optional(),
  header: strict({ name: z.string(), defaultValue: z.string().optional() }).optional(),
});

const tracing = strict({
  match: selectorByMode.optional(),
  providers,
  randomSamplingPercentage: z.number().optional(),
  disableSpanReporting: z.boolean().optional(),
  customTags: z.record(z.string(), customTag).optional(),
  useRequestIdForTraceSampling: z.boolean().optional(),
});

const tagOverride = strict({ operation: z.enum(['UPSERT', 'REMOVE']).optional(), value: z.string().optional() });
const metricsOverride = strict({
  match: strict({ metric: z.enum(ISTIO_METRICS).optional(), customMetric: z.string().optional(), mode: z.enum(WORKLOAD_MODES).optional() }).optional(),
  disabled: z.boolean().optional(),
  tagOverrides: z.record(z.string(), tagOverride).optional(),
});
const metrics = strict({ providers, overrides: z.array(metricsOverride).optional(), reportingInterval: duration.optional() });

const accessLogging = strict({
  match: selectorByMode.optional(),
  providers,
  disabled: z.boolean().optional(),
  filter: strict({ expression: z.string() }).optional(),
});

export const telemetrySpec = strict({
  ...targetFields,
  tracing: z.array(tracing).optional(),
  metrics: z.array(metrics).optional(),
  accessLogging: z.array(accessLogging).optional(),
});
export type TelemetrySpec = z.infer<typeof telemetrySpec>;

function checkProviders(diag: Diagnostics, path: FieldPath, list: readonly { name: string }[] | undefined): void {
  list?.forEach((p, i) => {
    if (p.name === '') diag.error(path.index(i).key('name'), 'providers.name may not be empty');
  });
}

function validateTelemetry(spec: TelemetrySpec, ctx: ValidationContext): void {
  const { diag, path } = ctx;
  checkPolicyTargets(diag, path, spec);

  if ((spec.tracing?.length ?? 0) > 1) diag.warn(path.key('tracing'), 'multiple tracing is not currently supported');
  spec.tracing?.forEach((t, i) => {
    const at = path.key('tracing').index(i);
    if ((t.providers?.length ?? 0) > 1) diag.warn(at.key('providers'), 'multiple providers is not currently supported');
    checkProviders(diag, at.key('providers'), t.providers);
    const pct = t.randomSamplingPercentage;
    if (pct !== undefined && (pct < 0 || pct > 100)) diag.error(at.key('randomSamplingPercentage'), 'randomSamplingPercentage must be in range [0.0, 100.0]');
    for (const [name, tag] of Object.entries(t.customTags ?? {})) {
      const tagAt = at.key('customTags').key(name);
      if (name === '') diag.error(tagAt, 'tag name may not be empty');
      const kinds = [tag.literal, tag.environment, tag.header].filter((x) => x !== undefined).length;
      if (kinds !== 1) diag.error(tagAt, `tag '${name}' must set exactly one of literal, environment or header`);
      if (tag.literal && tag.literal.value === '') diag.error(tagAt.key('literal').key('value'), 'literal tag value may not be empty');
      if (tag.header && tag.header.name === '') diag.error(tagAt.key('header').key('name'), 'header tag name may not be empty');
      if (tag.environment && tag.environment.name === '') diag.error(tagAt.key('environment').key('name'), 'environment tag name may not be empty');
    }
  });

  spec.metrics?.forEach((m, i) => {
    const at = path.key('metrics').index(i);
    checkProviders(diag, at.key('providers'), m.providers);
    if (m.reportingInterval !== undefined) checkDuration(diag, at.key('reportingInterval'), m.reportingInterval);
    m.overrides?.forEach((o, j) => {
      const oAt = at.key('overrides').index(j);
      if (o.match) {
        if (o.match.metric !== undefined && o.match.customMetric !== undefined) {
          diag.error(oAt.key('match'), 'only one of metric or customMetric may be set');
        }
        if (o.match.customMetric === '') diag.error(oAt.key('match').key('customMetric'), 'customMetric may not be empty');
      }
      for (const [tag, to] of Object.entries(o.tagOverrides ?? {})) {
        const tAt = oAt.key('tagOverrides').key(tag);
        if (tag === '') diag.warn(tAt, 'tagOverrides.name may not be empty');
        const op = to.operation ?? 'UPSERT';
        if (op === 'UPSERT' && (to.value ?? '') === '') diag.error(tAt.key('value'), 'tagOverrides.value must be set when operation is UPSERT');
        if (op === 'REMOVE' && to.value !== undefined && to.value !== '') diag.error(tAt.key('value'), 'tagOverrides.value may only be set when operation is UPSERT');
      }
    });
  });

  spec.accessLogging?.forEach((l, i) => {
    const at = path.key('accessLogging').index(i);
    checkProviders(diag, at.key('providers'), l.providers);
    if (l.filter) {
      const exprAt = at.key('filter').key('expression');
      if (l.filter.expression.trim() === '') diag.error(exprAt, 'filter expression may not be empty');
      else {
        const problem = expressionSyntaxProblem(l.filter.expression);
        if (problem) diag.error(exprAt, `invalid filter expression: ${problem}`);
      }
    }
  });
}

export const telemetryKind: KindDefinition<TelemetrySpec> = {
  group: 'telemetry.istio.io',
  kind: 'Telemetry',
  versions: ['v1', 'v1alpha1'],
  plural: 'telemetries',
  shortNames: ['telemetry'],
  spec: telemetrySpec,
  validate: validateTelemetry,
};
