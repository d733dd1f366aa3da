// config.istio.io/v1alpha2 QuotaSpec: which quotas a request is charged
// against, and how much, when its attributes match.

import type { KindDefinition, ValidationContext } from '../../kind-registry.ts';
import { strict, z } from '../../schema.ts';
import { checkRegex } from '../../validators.ts';
import { parseMixerRef } from './mixer-refs.ts';

const stringMatch = strict({ exact: z.string().optional(), prefix: z.string().optional(), regex: z.string().optional() });

export const quotaSpecSpec = strict({
  rules: z.array(strict({
    match: z.array(strict({ clause: z.record(z.string(), stringMatch).optional() })).optional(),
    quotas: z.array(strict({ quota: z.string(), charge: z.number().int().optional() })).optional(),
  })).optional(),
});
export type QuotaSpecSpec = z.infer<typeof quotaSpecSpec>;

function validateQuotaSpec(spec: QuotaSpecSpec, ctx: ValidationContext): void {
  const { diag, path } = ctx;
  if ((spec.rules?.length ?? 0) === 0) diag.error(path.key('rules'), 'at least one rule must be specified');
  spec.rules?.forEach((rule, i) => {
    const at = path.key('rules').index(i);
    rule.match?.forEach((m, j) => {
      const mAt = at.key('match').index(j).key('clause');
      const clauses = Object.entries(m.clause ?? {});
      if (clauses.length === 0) diag.error(mAt, 'at least one match clause must be specified');
      for (const [attr, sm] of clauses) {
        const cAt = mAt.key(attr);
        if (attr === '') diag.error(cAt, 'attribute name must not be empty');
        const set = [sm.exact, sm.prefix, sm.regex].filter((v) => v !== undefined).length;
        if (set !== 1) diag.error(cAt, 'exactly one of exact, prefix or regex must be set');
        if (sm.regex !== undefined) checkRegex(diag, cAt.key('regex'), sm.regex);
      }
    });
    if ((rule.quotas?.length ?? 0) === 0) diag.error(at.key('quotas'), 'at least one quota must be specified');
    rule.quotas?.forEach((q, j) => {
      const qAt = at.key('quotas').index(j);
      if (q.quota === '') diag.error(qAt.key('quota'), 'quota name must not be empty');
      else if (!parseMixerRef(q.quota)) diag.error(qAt.key('quota'), `invalid quota name "${q.quota}": use the instance name, "name" or "name.namespace"`);
      if ((q.charge ?? 0) <= 0) diag.error(qAt.key('charge'), `quota charge amount must be positive, got ${q.charge ?? 0}`);
    });
  });
}

export const quotaSpecKind: KindDefinition<QuotaSpecSpec> = {
  group: 'config.istio.io',
  kind: 'QuotaSpec',
  versions: ['v1alpha2'],
  plural: 'quotaspecs',
  spec: quotaSpecSpec,
  validate: validateQuotaSpec,
};
