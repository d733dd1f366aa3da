// config.istio.io/v1alpha2 `attributemanifest`: the attribute vocabulary
// (name -> type) that Mixer expressions are checked against.

import type { KindDefinition, ValidationContext } from '../../kind-registry.ts';
import { strict, z } from '../../schema.ts';

/** istio.policy.v1beta1.ValueType, without the unspecified zero value. */
export const VALUE_TYPES = [
  'STRING', 'INT64', 'DOUBLE', 'BOOL', 'TIMESTAMP', 'IP_ADDRESS', 'EMAIL_ADDRESS', 'URI', 'DNS_NAME', 'DURATION', 'STRING_MAP',
] as const;

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
