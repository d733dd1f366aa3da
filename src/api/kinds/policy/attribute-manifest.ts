// config.istio.io/v1alpha2 `attributemanifest`: the attribute vocabulary
// (name -> type) that Mixer expressions are checked against.

import type { KindDefinition, ValidationContext } from '../../kind-registry.ts';
import { strict, z } from '../../schema.ts';
import { ATTRIBUTE_VALUE_TYPES, BUILTIN_ATTRIBUTES } from '../../cexl/index.ts';

/** istio.policy.v1beta1.ValueType, without the unspecified zero value, plus BYTES. */
export const VALUE_TYPES = ATTRIBUTE_VALUE_TYPES;

export const attributeManifestSpec = strict({
  revision: z.string().optional(),
  name: z.string().optional(),
  attributes: z.record(z.string(), strict({ valueType: z.enum(VALUE_TYPES), description: z.string().optional() })).optional(),
});
export type AttributeManifestSpec = z.infer<typeof attributeManifestSpec>;

// Mixer attribute names: dotted words such as `request.headers` or `source.labels`.
const ATTRIBUTE_NAME = /^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$/;

function validateAttributeManifest(spec: AttributeManifestSpec, ctx: ValidationContext): void {
  const { diag, path } = ctx;
  for (const name of Object.keys(spec.attributes ?? {})) {
    if (!ATTRIBUTE_NAME.test(name)) diag.error(path.key('attributes').key(name), `invalid attribute name "${name}": dot-separated words of letters, digits, "_" and "-"`);
    const builtin = BUILTIN_ATTRIBUTES[name];
    const declared = spec.attributes?.[name]?.valueType;
    if (builtin !== undefined && declared !== undefined && builtin !== declared) {
      diag.error(path.key('attributes').key(name).key('valueType'), `attribute "${name}" is ${builtin} in Istio's vocabulary and cannot be redeclared as ${declared}`);
    }
  }
}

export const attributeManifestKind: KindDefinition<AttributeManifestSpec> = {
  group: 'config.istio.io',
  kind: 'attributemanifest',
  versions: ['v1alpha2'],
  plural: 'attributemanifests',
  spec: attributeManifestSpec,
  validate: validateAttributeManifest,
};
