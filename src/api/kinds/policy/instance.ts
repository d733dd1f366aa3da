// config.istio.io/v1alpha2 `instance`: maps request attributes onto the fields
// of a Mixer template (checknothing, logentry, metric, quota, ...).

import type { KindDefinition, ValidationContext } from '../../kind-registry.ts';
import { strict, z } from '../../schema.ts';
import { AttributeVocabulary, TEMPLATES, compileExpression, compileInstanceParams } from '../../cexl/index.ts';
import type { FieldPath } from '../../diagnostics.ts';

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
  const vocabulary = AttributeVocabulary.builtin();
  for (const [attr, expr] of Object.entries(spec.attributeBindings ?? {})) {
    const result = compileExpression(expr, vocabulary, { lenientUnknownRoots: true });
    for (const e of result.errors) diag.error(path.key('attributeBindings').key(attr), `invalid expression: ${e}`);
  }
  if (compiled !== '' && template === '') {
    const shape = TEMPLATES[compiled];
    if (!shape) {
      diag.error(path.key('compiledTemplate'), `unknown template "${compiled}": known are ${Object.keys(TEMPLATES).join(', ')}`);
      return;
    }
    // Typed against Istio's vocabulary; Mixer re-checks with the attributemanifests it has.
    const { problems } = compileInstanceParams(shape, spec.params ?? {}, vocabulary, { lenientUnknownRoots: true });
    for (const p of problems) {
      const at = p.path.reduce<FieldPath>((fp, seg) => (typeof seg === 'number' ? fp.index(seg) : fp.key(seg)), path.key('params'));
      if (p.severity === 'error') diag.error(at, p.message);
      else diag.warn(at, p.message);
    }
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
