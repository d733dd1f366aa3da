// config.istio.io/v1alpha2 `rule`: when `match` holds for a request, send the
// named instances to the named handlers, and optionally edit headers.

import type { KindDefinition, ValidationContext } from '../../kind-registry.ts';
import { duration, strict, z } from '../../schema.ts';
import { checkDuration } from '../../validators.ts';
import { AttributeVocabulary, compileExpression } from '../../cexl/index.ts';
import { checkMixerRef } from './mixer-refs.ts';

const action = strict({
  handler: z.string(),
  instances: z.array(z.string()).optional(),
  name: z.string().optional(),
});

const headerOperation = strict({
  name: z.string(),
  values: z.array(z.string()).optional(),
  operation: z.enum(['REPLACE', 'REMOVE', 'APPEND']).optional(),
});

const sampling = strict({
  random: strict({
    attributeExpression: z.string().optional(),
    percentSampled: strict({
      numerator: z.number().int().min(0).optional(),
      denominator: z.enum(['HUNDRED', 'TEN_THOUSAND', 'MILLION']).optional(),
    }).optional(),
    useIndependentRandomness: z.boolean().optional(),
  }).optional(),
  rateLimit: strict({
    samplingDuration: duration.optional(),
    maxUnsampledEntries: z.number().int().min(0).optional(),
    samplingRate: z.number().int().min(0).optional(),
  }).optional(),
});

export const ruleSpec = strict({
  match: z.string().optional(),
  actions: z.array(action).optional(),
  requestHeaderOperations: z.array(headerOperation).optional(),
  responseHeaderOperations: z.array(headerOperation).optional(),
  sampling: sampling.optional(),
});
export type RuleSpec = z.infer<typeof ruleSpec>;

const ACTION_NAME = /^[a-zA-Z0-9_-]+$/;
const DENOMINATORS: Record<string, number> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 };

function validateRule(spec: RuleSpec, ctx: ValidationContext): void {
  const { diag, path } = ctx;
  if (spec.match !== undefined && spec.match.trim() !== '') {
    // Typed against Istio's vocabulary; Mixer re-checks with the attributemanifests it has.
    const result = compileExpression(spec.match, AttributeVocabulary.builtin(), { lenientUnknownRoots: true });
    for (const e of result.errors) diag.error(path.key('match'), `invalid match expression: ${e}`);
    for (const w of result.warnings) diag.warn(path.key('match'), w);
    if (result.expression && result.expression.type !== 'BOOL' && result.expression.type !== 'ANY') {
      diag.error(path.key('match'), `match expression "${spec.match}" is ${result.expression.type}, it must be BOOL`);
    }
  }
  const actions = spec.actions ?? [];
  if (actions.length === 0 && (spec.requestHeaderOperations?.length ?? 0) === 0 && (spec.responseHeaderOperations?.length ?? 0) === 0) {
    diag.warn(path.key('actions'), 'rule has no actions and no header operations; it does nothing');
  }
  const names = new Set<string>();
  actions.forEach((a, i) => {
    const at = path.key('actions').index(i);
    checkMixerRef(diag, at.key('handler'), 'handler', a.handler);
    if ((a.instances?.length ?? 0) === 0) diag.error(at.key('instances'), 'an action needs at least one instance');
    a.instances?.forEach((inst, j) => checkMixerRef(diag, at.key('instances').index(j), 'instance', inst));
    if (a.name !== undefined) {
      if (!ACTION_NAME.test(a.name)) diag.error(at.key('name'), `invalid action name "${a.name}": letters, digits, "-" and "_" only`);
      else if (names.has(a.name)) diag.error(at.key('name'), `duplicate action name "${a.name}"`);
      names.add(a.name);
    }
  });
  for (const field of ['requestHeaderOperations', 'responseHeaderOperations'] as const) {
    spec[field]?.forEach((op, i) => {
      const at = path.key(field).index(i);
      if (op.name.trim() === '') diag.error(at.key('name'), 'header name must not be empty');
      const remove = op.operation === 'REMOVE';
      if (!remove && (op.values?.length ?? 0) === 0) diag.error(at.key('values'), `operation ${op.operation ?? 'REPLACE'} needs at least one value`);
    });
  }
  const random = spec.sampling?.random;
  if (random?.percentSampled) {
    const denom = DENOMINATORS[random.percentSampled.denominator ?? 'HUNDRED']!;
    const num = random.percentSampled.numerator ?? 0;
    if (num > denom) diag.error(path.key('sampling').key('random').key('percentSampled').key('numerator'), `numerator ${num} exceeds the denominator ${denom}`);
  }
  const rate = spec.sampling?.rateLimit;
  if (rate?.samplingDuration !== undefined) checkDuration(diag, path.key('sampling').key('rateLimit').key('samplingDuration'), rate.samplingDuration);
}

export const ruleKind: KindDefinition<RuleSpec> = {
  group: 'config.istio.io',
  kind: 'rule',
  versions: ['v1alpha2'],
  plural: 'rules',
  spec: ruleSpec,
  validate: validateRule,
};
