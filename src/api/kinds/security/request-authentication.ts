// security.istio.io RequestAuthentication: which JWTs a workload accepts
// (issuer, keys, where the token is found) and what it forwards upstream.

import type { Diagnostics, FieldPath } from '../../diagnostics.ts';
import type { KindDefinition, ValidationContext } from '../../kind-registry.ts';
import { duration, strict, z } from '../../schema.ts';
import { checkDuration } from '../../validators.ts';
import { checkPolicyTargets, targetFields } from './policy-target.ts';

const jwtRule = strict({
  issuer: z.string(),
  audiences: z.array(z.string()).optional(),
  jwksUri: z.string().optional(),
  jwks: z.string().optional(),
  fromHeaders: z.array(strict({ name: z.string(), prefix: z.string().optional() })).optional(),
  fromParams: z.array(z.string()).optional(),
  fromCookies: z.array(z.string()).optional(),
  outputPayloadToHeader: z.string().optional(),
  outputClaimToHeaders: z.array(strict({ header: z.string(), claim: z.string() })).optional(),
  forwardOriginalToken: z.boolean().optional(),
  timeout: duration.optional(),
});
type JwtRule = z.infer<typeof jwtRule>;

export const requestAuthenticationSpec = strict({
  ...targetFields,
  jwtRules: z.array(jwtRule).optional(),
});
export type RequestAuthenticationSpec = z.infer<typeof requestAuthenticationSpec>;

// Istio's ValidateHTTPHeaderName.
const HEADER_NAME = /^[-_A-Za-z0-9]+$/;

function checkHeaderName(diag: Diagnostics, path: FieldPath, name: string): void {
  if (name === '') diag.error(path, 'header name cannot be empty');
  else if (!HEADER_NAME.test(name)) diag.error(path, `header name "${name}" is not a valid header name (letters, digits, "-" and "_")`);
}

/** What is wrong with a jwksUri, or undefined. Istio accepts http and https URLs only. */
export function jwksUriProblem(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return `invalid jwksUri "${uri}": not a URL`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return `URI scheme "${url.protocol.slice(0, -1)}" is not supported in jwksUri "${uri}"; use http or https`;
  }
  if (url.hostname === '') return `invalid jwksUri "${uri}": no host`;
  return undefined;
}

/** What is wrong with inline JWKS text, or undefined: it must be a JWK Set or a single JWK in JSON. */
export function jwksProblem(text: string): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return `jwks parse error: ${(err as Error).message}`;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'jwks parse error: must be a JSON object';
  const obj = value as { keys?: unknown; kty?: unknown };
  if (obj.keys !== undefined) {
    if (!Array.isArray(obj.keys)) return 'jwks parse error: "keys" must be a list';
    const bad = obj.keys.findIndex((k) => k === null || typeof k !== 'object' || typeof (k as { kty?: unknown }).kty !== 'string');
    return bad >= 0 ? `jwks parse error: keys[${bad}] has no "kty"` : undefined;
  }
  return typeof obj.kty === 'string' ? undefined : 'jwks parse error: neither a key set ("keys") nor a key ("kty")';
}

function validateJwtRule(diag: Diagnostics, path: FieldPath, rule: JwtRule): void {
  if (rule.issuer === '') diag.error(path.key('issuer'), 'issuer must be set');
  rule.audiences?.forEach((a, i) => {
    if (a === '') diag.error(path.key('audiences').index(i), 'audience must be non-empty string');
  });
  const hasUri = rule.jwksUri !== undefined && rule.jwksUri !== '';
  const hasJwks = rule.jwks !== undefined && rule.jwks !== '';
  if (hasUri && hasJwks) diag.error(path, 'only one of jwksUri or jwks may be set');
  if (hasUri) {
    const problem = jwksUriProblem(rule.jwksUri!);
    if (problem) diag.error(path.key('jwksUri'), problem);
  }
  if (hasJwks) {
    const problem = jwksProblem(rule.jwks!);
    if (problem) diag.error(path.key('jwks'), problem);
  }
  rule.fromHeaders?.forEach((h, i) => {
    const at = path.key('fromHeaders').index(i).key('name');
    if (h.name === '') diag.error(at, 'location header name must be non-empty string');
    else checkHeaderName(diag, at, h.name);
  });
  rule.fromParams?.forEach((p, i) => {
    if (p === '') diag.error(path.key('fromParams').index(i), 'location query must be non-empty string');
  });
  rule.fromCookies?.forEach((c, i) => {
    if (c === '') diag.error(path.key('fromCookies').index(i), 'cookie name must be non-empty string');
  });
  if (rule.outputPayloadToHeader !== undefined && rule.outputPayloadToHeader !== '') {
    checkHeaderName(diag, path.key('outputPayloadToHeader'), rule.outputPayloadToHeader);
  }
  rule.outputClaimToHeaders?.forEach((c, i) => {
    const at = path.key('outputClaimToHeaders').index(i);
    if (c.claim === '' || c.header === '') diag.error(at, 'outputClaimToHeaders header and claim value must be non-empty string');
    else checkHeaderName(diag, at.key('header'), c.header);
  });
  if (rule.timeout !== undefined) checkDuration(diag, path.key('timeout'), rule.timeout);
}

function validateRequestAuthentication(spec: RequestAuthenticationSpec, ctx: ValidationContext): void {
  checkPolicyTargets(ctx.diag, ctx.path, spec);
  spec.jwtRules?.forEach((r, i) => validateJwtRule(ctx.diag, ctx.path.key('jwtRules').index(i), r));
}

export const requestAuthenticationKind: KindDefinition<RequestAuthenticationSpec> = {
  group: 'security.istio.io',
  kind: 'RequestAuthentication',
  versions: ['v1', 'v1beta1'],
  plural: 'requestauthentications',
  shortNames: ['ra'],
  spec: requestAuthenticationSpec,
  validate: validateRequestAuthentication,
};
