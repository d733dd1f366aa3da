// Pilot's security translation: AuthorizationPolicy -> RBAC / ext_authz,
// RequestAuthentication -> jwt_authn, PeerAuthentication -> inbound mTLS.
export { inboundSecurity } from './inbound-security.ts';
export type { InboundSecurity } from './inbound-security.ts';
export { buildAuthzFilters } from './authz-builder.ts';
export type { AuthzFilters } from './authz-builder.ts';
export { buildJwtAuthnFilter } from './authn-builder.ts';
export { JwksResolver, defaultJwksResolver } from './jwks-resolver.ts';
export type { JwksState } from './jwks-resolver.ts';
export { inboundSecurityKey, peerAuthenticationFor, mtlsModeFor, authorizationPoliciesFor, requestAuthenticationsFor } from './policies.ts';
export type { MtlsMode, PeerAuthnPolicy } from './policies.ts';
