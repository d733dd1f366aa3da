// Bootstrap credentials: the runtime asks Citadel for a short-lived signed
// token when it starts a workload and hands it to the workload's agent, which
// sends it as `authorization: Bearer <token>` on its first CSR (the role a
// Kubernetes service-account token plays in Istio). A JWT signed by the CA
// key, claims ns/sa, audience `istio-ca`.

import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { spiffeId } from '../common/index.ts';
import type { CitadelClock } from './clock.ts';
import { CitadelError, CitadelErrorCode } from './errors.ts';
import type { KeyAlgorithmName, WebCryptoKeyPair } from './keys.ts';
import { keyAlgorithm } from './keys.ts';

export const BOOTSTRAP_TOKEN_ISSUER = 'mesh-citadel';
export const BOOTSTRAP_TOKEN_AUDIENCE = 'istio-ca';

export interface BootstrapTokenKey {
  readonly keys: WebCryptoKeyPair;
  readonly algorithm: KeyAlgorithmName;
}

export async function issueBootstrapToken(key: BootstrapTokenKey, claims: { trustDomain: string; namespace: string; serviceAccount: string; ttlMs: number; now: number }): Promise<string> {
  const sub = spiffeId(claims);
  const iat = Math.floor(claims.now / 1000);
  return new SignJWT({ ns: claims.namespace, sa: claims.serviceAccount })
    .setProtectedHeader({ alg: keyAlgorithm(key.algorithm).jwsAlg, typ: 'JWT' })
    .setIssuer(BOOTSTRAP_TOKEN_ISSUER)
    .setAudience(BOOTSTRAP_TOKEN_AUDIENCE)
    .setSubject(sub)
    .setIssuedAt(iat)
    .setExpirationTime(iat + Math.max(1, Math.floor(claims.ttlMs / 1000)))
    .sign(key.keys.privateKey);
}

/**
 * The SPIFFE ID a token proves, checked against any of `keys` (the current CA
 * key first, then earlier ones during a root rotation); throws UNAUTHENTICATED
 * with the reason.
 */
export async function verifyBootstrapToken(token: string, keys: readonly BootstrapTokenKey[], trustDomain: string, clock: CitadelClock): Promise<string> {
  let lastError: unknown;
  for (const key of keys) {
    try {
      const { payload } = await jwtVerify(token, key.keys.publicKey, {
        issuer: BOOTSTRAP_TOKEN_ISSUER,
        audience: BOOTSTRAP_TOKEN_AUDIENCE,
        algorithms: [keyAlgorithm(key.algorithm).jwsAlg],
        currentDate: new Date(clock.now()),
        requiredClaims: ['exp', 'sub'],
      });
      const { ns, sa, sub } = payload as { ns?: unknown; sa?: unknown; sub?: unknown };
      if (typeof ns !== 'string' || typeof sa !== 'string') throw new CitadelError(CitadelErrorCode.UNAUTHENTICATED, 'bootstrap token lacks the ns and sa claims');
      const id = spiffeId({ trustDomain, namespace: ns, serviceAccount: sa });
      if (sub !== id) throw new CitadelError(CitadelErrorCode.UNAUTHENTICATED, `bootstrap token subject ${String(sub)} does not match its ns/sa claims (${id})`);
      return id;
    } catch (err) {
      if (err instanceof CitadelError) throw err;
      if (err instanceof joseErrors.JWTExpired) throw new CitadelError(CitadelErrorCode.UNAUTHENTICATED, `bootstrap token expired at ${new Date(Number(err.payload.exp) * 1000).toISOString()}`, { cause: err });
      if (err instanceof joseErrors.JWTClaimValidationFailed) throw new CitadelError(CitadelErrorCode.UNAUTHENTICATED, `bootstrap token claim ${err.claim} is invalid: ${err.message}`, { cause: err });
      lastError = err;
    }
  }
  const why = lastError instanceof joseErrors.JWSSignatureVerificationFailed || lastError instanceof joseErrors.JOSEAlgNotAllowed ? 'is not signed by this mesh\'s CA' : `is malformed (${(lastError as Error | undefined)?.message ?? 'no key'})`;
  throw new CitadelError(CitadelErrorCode.UNAUTHENTICATED, `bootstrap token ${why}`, { cause: lastError });
}
