// security.istio.io kinds.
import type { KindDefinition } from '../../kind-registry.ts';
import { authorizationPolicyKind } from './authorization-policy.ts';
import { peerAuthenticationKind } from './peer-authentication.ts';
import { requestAuthenticationKind } from './request-authentication.ts';

export const securityKinds: KindDefinition[] = [authorizationPolicyKind, peerAuthenticationKind, requestAuthenticationKind];
