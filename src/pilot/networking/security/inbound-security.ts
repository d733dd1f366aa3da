// Everything security adds to a sidecar's inbound side, in one place for
// the listener builder: the HTTP filters before fault/cors/router (jwt_authn,
// then the authz filters), the network filters before tcp_proxy, and the
// mTLS mode of each workload port (PeerAuthentication).

import type { ProxyNode } from '../../model/index.ts';
import type { PushContext } from '../../push-context.ts';
import { buildJwtAuthnFilter } from './authn-builder.ts';
import { buildAuthzFilters } from './authz-builder.ts';
import type { JwksResolver } from './jwks-resolver.ts';
import type { MtlsMode } from './policies.ts';
import { mtlsModeFor, peerAuthenticationFor } from './policies.ts';

type M = Record<string, unknown>;

export interface InboundSecurity {
  readonly httpFilters: readonly M[];
  readonly tcpFilters: readonly M[];
  mtlsMode(port: number): MtlsMode;
}

export function inboundSecurity(push: PushContext, proxy: ProxyNode, jwks?: JwksResolver): InboundSecurity {
  const jwt = buildJwtAuthnFilter(push, proxy, jwks);
  const authz = buildAuthzFilters(push, proxy);
  const peer = peerAuthenticationFor(push, proxy);
  return {
    httpFilters: jwt ? [jwt, ...authz.http] : authz.http,
    tcpFilters: authz.tcp,
    mtlsMode: (port) => mtlsModeFor(peer, port),
  };
}
