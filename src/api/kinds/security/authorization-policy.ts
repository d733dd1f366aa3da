// security.istio.io AuthorizationPolicy: who may do what on a workload
// (ALLOW/DENY/AUDIT rules enforced by the proxy, CUSTOM delegated to an
// external authorizer named in MeshConfig.extensionProviders).

import type { Diagnostics, FieldPath } from '../../diagnostics.ts';
import type { KindDefinition, ValidationContext } from '../../kind-registry.ts';
import { strict, z } from '../../schema.ts';
import { checkIps, checkNoEmptyValues, checkPaths, checkPortStrings, checkWildcards, conditionKey } from './match-values.ts';
import { checkPolicyTargets, targetFields } from './policy-target.ts';

export const AUTHZ_ACTIONS = ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'] as const;

const strings = z.array(z.string()).optional();

const SOURCE_FIELDS = [
  'principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals', 'namespaces', 'notNamespaces',
  'ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks', 'serviceAccounts', 'notServiceAccounts',
] as const;
const OPERATION_FIELDS = ['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths'] as const;

const source = strict(Object.fromEntries(SOURCE_FIELDS.map((f) => [f, strings])) as Record<(typeof SOURCE_FIELDS)[number], typeof strings>);
const operation = strict(Object.fromEntries(OPERATION_FIELDS.map((f) => [f, strings])) as Record<(typeof OPERATION_FIELDS)[number], typeof strings>);
const condition = strict({ key: z.string(), values: strings, notValues: strings });

const rule = strict({
  from: z.array(strict({ source: source.optional() })).optional(),
  to: z.array(strict({ operation: operation.optional() })).optional(),
  when: z.array(condition).optional(),
});

export const authorizationPolicySpec = strict({
  ...targetFields,
  rules: z.array(rule).optional(),
  action: z.enum(AUTHZ_ACTIONS).optional(),
  provider: strict({ name: z.string() }).optional(),
});
export type AuthorizationPolicySpec = z.infer<typeof authorizationPolicySpec>;
type Rule = z.infer<typeof rule>;
type Source = z.infer<typeof source>;
type Operation = z.infer<typeof operation>;

// Fields whose presence makes a rule apply to TCP traffic too (Istio's tcpRules).
const TCP_SOURCE_FIELDS: readonly (keyof Source)[] = ['principals', 'notPrincipals', 'namespaces', 'notNamespaces', 'ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks', 'serviceAccounts', 'notServiceAccounts'];
// Source fields an external authorizer cannot see (they come from the proxy's own authn).
const CUSTOM_UNSUPPORTED_SOURCE: readonly (keyof Source)[] = ['namespaces', 'notNamespaces', 'principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals'];
const DRY_RUN = 'istio.io/dry-run';

function validateAuthorizationPolicy(spec: AuthorizationPolicySpec, ctx: ValidationContext): void {
  const { diag, path } = ctx;
  const action = spec.action ?? 'ALLOW';
  checkPolicyTargets(diag, path, spec);
  checkDryRun(ctx, action);

  if (action === 'CUSTOM') {
    if (spec.rules === undefined) {
      diag.error(path.key('rules'), 'CUSTOM action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request');
    } else if (spec.provider === undefined || spec.provider.name === '') {
      diag.error(path.key('provider').key('name'), '`provider.name` must not be empty with CUSTOM action');
    }
  } else if (spec.provider !== undefined) {
    diag.error(path.key('provider'), `\`provider\` must not be with non CUSTOM action, found ${action}`);
  }
  if (action === 'DENY' && spec.rules === undefined) {
    diag.error(path.key('rules'), 'DENY action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request');
  }

  spec.rules?.forEach((r, i) => validateRule(diag, path.key('rules').index(i), r, action));
}

function validateRule(diag: Diagnostics, path: FieldPath, r: Rule, action: string): void {
  let fromExists = false;
  let toExists = false;
  let tcpInFrom = false;
  let tcpInTo = false;

  if (r.from !== undefined && r.from.length === 0) diag.error(path.key('from'), '`from` must not be empty');
  r.from?.forEach((f, j) => {
    const at = path.key('from').index(j).key('source');
    if (f.source === undefined) {
      diag.error(at, '`from.source` must not be nil');
      return;
    }
    fromExists = true;
    const src = f.source;
    if (SOURCE_FIELDS.every((k) => (src[k]?.length ?? 0) === 0)) diag.error(at, '`from.source` must not be empty');
    for (const k of SOURCE_FIELDS) checkNoEmptyValues(diag, at.key(k), src[k]);
    for (const k of ['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks'] as const) checkIps(diag, at.key(k), src[k]);
    for (const k of ['principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals', 'namespaces', 'notNamespaces'] as const) {
      checkWildcards(diag, at.key(k), src[k]);
    }
    if (TCP_SOURCE_FIELDS.some((k) => src[k] !== undefined)) tcpInFrom = true;
    if (action === 'CUSTOM') {
      for (const k of CUSTOM_UNSUPPORTED_SOURCE) {
        if ((src[k]?.length ?? 0) > 0) diag.error(at.key(k), `From.${k[0]!.toUpperCase()}${k.slice(1)} is currently not supported with CUSTOM action`);
      }
    }
  });

  if (r.to !== undefined && r.to.length === 0) diag.error(path.key('to'), '`to` must not be empty');
  r.to?.forEach((t, j) => {
    const at = path.key('to').index(j).key('operation');
    if (t.operation === undefined) {
      diag.error(at, '`to.operation` must not be nil');
      return;
    }
    toExists = true;
    const op: Operation = t.operation;
    if (OPERATION_FIELDS.every((k) => (op[k]?.length ?? 0) === 0)) diag.error(at, '`to.operation` must not be empty');
    for (const k of OPERATION_FIELDS) checkNoEmptyValues(diag, at.key(k), op[k]);
    checkPortStrings(diag, at.key('ports'), op.ports);
    checkPortStrings(diag, at.key('notPorts'), op.notPorts);
    checkWildcards(diag, at.key('hosts'), op.hosts);
    checkWildcards(diag, at.key('notHosts'), op.notHosts);
    checkPaths(diag, at.key('paths'), op.paths);
    checkPaths(diag, at.key('notPaths'), op.notPaths);
    if (op.ports !== undefined || op.notPorts !== undefined) tcpInTo = true;
  });

  r.when?.forEach((c, j) => {
    const at = path.key('when').index(j);
    if (c.key === '') {
      diag.error(at.key('key'), '`key` must not be empty');
      return;
    }
    if (action === 'CUSTOM' && (c.key === 'source.namespace' || c.key === 'source.principal' || c.key.startsWith('request.auth.'))) {
      diag.error(at.key('key'), `${c.key} is currently not supported with CUSTOM action`);
    }
    const values = c.values ?? [];
    const notValues = c.notValues ?? [];
    if (values.length === 0 && notValues.length === 0) {
      diag.error(at, `at least one of \`values\` or \`notValues\` must be set for key ${c.key}`);
      return;
    }
    const kind = conditionKey(c.key);
    if ('problem' in kind) {
      diag.error(at.key('key'), kind.problem);
      return;
    }
    for (const field of ['values', 'notValues'] as const) {
      const list = c[field];
      if (!checkNoEmptyValues(diag, at.key(field), list)) continue;
      if (kind.values === 'ips') checkIps(diag, at.key(field), list);
      else if (kind.values === 'ports') checkPortStrings(diag, at.key(field), list);
    }
  });

  // A DENY rule made only of HTTP attributes cannot match TCP traffic, so Istio
  // denies all TCP traffic in scope instead: almost never what was meant.
  if (action === 'DENY' && ((fromExists && !toExists && !tcpInFrom) || (toExists && !tcpInTo))) {
    diag.warn(path, 'configured AuthorizationPolicy will deny all traffic to TCP ports under its scope due to the use of only HTTP attributes in a DENY rule; it is recommended to explicitly specify the port');
  }
}

/** The dry-run annotation is only for ALLOW/DENY AuthorizationPolicies and holds a boolean. */
function checkDryRun(ctx: ValidationContext, action: string): void {
  const value = ctx.object.metadata.annotations?.[DRY_RUN];
  if (value === undefined) return;
  const at = `metadata.annotations[${JSON.stringify(DRY_RUN)}]`;
  if (action !== 'ALLOW' && action !== 'DENY') {
    ctx.diag.error(at, `the annotation ${DRY_RUN} currently only supports action ALLOW/DENY, found action ${action}`);
  } else if (!/^(1|t|T|TRUE|true|True|0|f|F|FALSE|false|False)$/.test(String(value))) {
    ctx.diag.error(at, `invalid value "${String(value)}" for annotation ${DRY_RUN}: must be true or false`);
  }
}

export const authorizationPolicyKind: KindDefinition<AuthorizationPolicySpec> = {
  group: 'security.istio.io',
  kind: 'AuthorizationPolicy',
  versions: ['v1', 'v1beta1'],
  plural: 'authorizationpolicies',
  shortNames: ['ap'],
  spec: authorizationPolicySpec,
  validate: validateAuthorizationPolicy,
};
