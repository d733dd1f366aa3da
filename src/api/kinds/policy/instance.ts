// config.istio.io/v1alpha2 `instance`: maps request attributes onto the fields
// of a Mixer template (checknothing, logentry, metric, quota, ...).

import type { KindDefinition, ValidationContext } from '../../kind-registry.ts';
import { strict, z } from '../../schema.ts';
import { expressionSyntaxProblem } from './expression-syntax.ts';

export const instanceSpec = strict({
  name: z.string().optional(),
  compiledTemplate: z.string().optional(),
  template: z.string().optional(),
  params: z.record(z.string(), z.unknown()).optional(),
  attributeBindings: z.record(z.string(), z.string()).optional(),
});
export type InstanceSpec = z.infer<typeof instanceSpec>;

function validateInstance(spec: InstanceSpec, ctx: ValidationContext): void {
  const { diag, path } = ctx;
  const compiled = spec.compiledTemplate ?? '';
  const template = spec.template ?? '';
  if (compiled === '' && template === '') diag.error(path, 'an instance needs compiledTemplate (built-in template) or template (out-of-process template)');
  if (compiled !== '' && template !== '') diag.error(path, 'only one of compiledTemplate or template may be set');
  for (const [attr, expr] of Object.entries(spec.attributeBindings ?? {})) {
    const problem = expr.trim() === '' ? 'expression may not be empty' : expressionSyntaxProblem(expr);
    if (problem) diag.error(path.key('attributeBindings').key(attr), `invalid expression: ${problem}`);
  }
}

export const instanceKind: KindDefinition<InstanceSpec> = {
  group: 'config.istio.io',
  kind: 'instance',
  versions: ['v1alpha2'],
  plural: 'instances',
  spec: instanceSpec,
  validate: validateInstance,
};
