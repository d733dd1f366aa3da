// RequestAuthentication -> envoy.filters.http.jwt_authn, as Istio builds
// it: one provider `origins-N` per distinct JWT rule of the policies that
// apply to the workload, keys inlined (jwks, or jwksUri fetched by the
// control plane), the verified payload in dynamic metadata under the
// issuer, and one requirement that accepts any configured issuer or no
// token at all: a request without a token passes authentication (an
// AuthorizationPolicy on requestPrincipals decides), an invalid one fails.

import type { RequestAuthenticationSpec } from '../../../api/kinds/security/request-authentication.ts';
import type { ProxyNode } from '../../model/index.ts';
import type { PushContext } from '../../push-context.ts';
import { duration, typed } from '../envoy-values.ts';
import { outboundClusterName } from '../names.ts';
import type { JwksResolver } from './jwks-resolver.ts';
import { defaultJwksResolver } from './jwks-resolver.ts';
import { requestAuthenticationsFor } from './policies.ts';

type M = Record<string, unknown>;
type JwtRule = NonNullable<RequestAuthenticationSpec['jwtRules']>[number];

export const JWT_AUTHN_TYPE = 'envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication';
export const JWT_AUTHN_FILTER = 'envoy.filters.http.jwt_authn';
/** What Istio inlines when a jwksUri cannot be fetched: no key verifies anything. */
const EMPTY_JWKS = '{"keys":[]}';

function remoteJwks(uri: string, timeout: string | undefined): M {
  const url = new URL(uri);
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  return {
    http_uri: { uri, cluster: outboundClusterName(port, '', url.hostname), timeout: duration(timeout ?? '5s') },
    cache_duration: { seconds: 300 },
  };
}

function provider(rule: JwtRule, jwks: JwksResolver): M {
  const p: M = { issuer: rule.issuer, payload_in_metadata: rule.issuer };
  if (rule.audiences?.length) p.audiences = [...rule.audiences];
  if (rule.jwks) p.local_jwks = { inline_string: rule.jwks };
  else if (rule.jwksUri) {
    const state = jwks.get(rule.jwksUri);
    if (state.status === 'ok') p.local_jwks = { inline_string: state.jwks };
    else if (state.status === 'failed') p.local_jwks = { inline_string: EMPTY_JWKS };
    else p.remote_jwks = remoteJwks(rule.jwksUri, rule.timeout);
  } else p.local_jwks = { inline_string: EMPTY_JWKS };
  if (rule.fromHeaders?.length) p.from_headers = rule.fromHeaders.map((h) => ({ name: h.name, value_prefix: h.prefix ?? '' }));
  if (rule.fromParams?.length) p.from_params = [...rule.fromParams];
  if (rule.forwardOriginalToken) p.forward = true;
  if (rule.outputPayloadToHeader) p.forward_payload_header = rule.outputPayloadToHeader;
  if (rule.outputClaimToHeaders?.length) p.claim_to_headers = rule.outputClaimToHeaders.map((c) => ({ header_name: c.header, claim_name: c.claim }));
  return p;
}

/** The jwt_authn filter for a workload, or undefined when no RequestAuthentication applies. */
export function buildJwtAuthnFilter(push: PushContext, proxy: ProxyNode, jwks: JwksResolver = defaultJwksResolver): M | undefined {
  const rules: JwtRule[] = [];
  const seen = new Set<string>();
  for (const ra of requestAuthenticationsFor(push, proxy)) {
    for (const r of ra.spec.jwtRules ?? []) {
      const key = JSON.stringify(r);
      if (seen.has(key)) continue;
      seen.add(key);
      rules.push(r);
    }
  }
  if (rules.length === 0) return undefined;
  const providers: Record<string, M> = {};
  rules.forEach((r, i) => (providers[`origins-${i}`] = provider(r, jwks)));
  const requirements: M[] = [...Object.keys(providers).map((name) => ({ provider_name: name })), { allow_missing: {} }];
  return {
    name: JWT_AUTHN_FILTER,
    typed_config: typed(JWT_AUTHN_TYPE, { providers, rules: [{ match: { prefix: '/' }, requires: { requires_any: { requirements } } }] }),
  };
}
