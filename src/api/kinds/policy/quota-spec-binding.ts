// config.istio.io/v1alpha2 QuotaSpecBinding: which services the named
// QuotaSpecs apply to.

import type { KindDefinition, ValidationContext } from '../../kind-registry.ts';
import { stringMap, strict, z } from '../../schema.ts';
import { checkHost, checkLabels, isDns1123Label } from '../../validators.ts';

/** istio.mixer.v1.config.client.IstioService */
const istioService = strict({
  name: z.string().optional(),
  namespace: z.string().optional(),
  domain: z.string().optional(),
  service: z.string().optional(),
  labels: stringMap.optional(),
});

export const quotaSpecBindingSpec = strict({
  services: z.array(istioService).optional(),
  quotaSpecs: z.array(strict({ name: z.string(), namespace: z.string().optional() })).optional(),
});
export type QuotaSpecBindingSpec = z.infer<typeof quotaSpecBindingSpec>;

function validateQuotaSpecBinding(spec: QuotaSpecBindingSpec, ctx: ValidationContext): void {
  const { diag, path } = ctx;
  if ((spec.services?.length ?? 0) === 0) diag.error(path.key('services'), 'at least one service must be specified');
  spec.services?.forEach((s, i) => {
    const at = path.key('services').index(i);
    if (s.service !== undefined && s.service !== '') {
      // `service` is the whole FQDN (or `*`); the split form must then be empty.
      if (s.name || s.namespace || s.domain) diag.error(at, 'name, namespace and domain must be empty when service is set');
      if (s.service !== '*') checkHost(diag, at.key('service'), s.service);
    } else {
      if (!s.name) diag.error(at.key('name'), 'name or service is required');
      else if (!isDns1123Label(s.name)) diag.error(at.key('name'), `name "${s.name}" must be a valid DNS-1123 label`);
      if (s.namespace && !isDns1123Label(s.namespace)) diag.error(at.key('namespace'), `namespace "${s.namespace}" must be a valid DNS-1123 label`);
      if (s.domain) checkHost(diag, at.key('domain'), s.domain, { wildcard: false });
    }
    checkLabels(diag, at.key('labels'), s.labels);
  });
  if ((spec.quotaSpecs?.length ?? 0) === 0) diag.error(path.key('quotaSpecs'), 'at least one spec must be specified');
  spec.quotaSpecs?.forEach((q, i) => {
    const at = path.key('quotaSpecs').index(i);
    if (q.name === '') diag.error(at.key('name'), 'name is required');
    if (q.namespace && !isDns1123Label(q.namespace)) diag.error(at.key('namespace'), `namespace "${q.namespace}" must be a valid DNS-1123 label`);
  });
}

export const quotaSpecBindingKind: KindDefinition<QuotaSpecBindingSpec> = {
  group: 'config.istio.io',
  kind: 'QuotaSpecBinding',
  versions: ['v1alpha2'],
  plural: 'quotaspecbindings',
  spec: quotaSpecBindingSpec,
  validate: validateQuotaSpecBinding,
};
