// Public surface of Citadel: the CA module the control plane hosts, the CA
// itself, its key material loaders and workload identity helpers.
export { Citadel } from './citadel.ts';
export type { CitadelOptions } from './citadel.ts';
export { CertificateAuthority } from './certificate-authority.ts';
export type { CertificateAuthorityOptions, IssuedCertificate, ParsedCsr } from './certificate-authority.ts';
export { CaService, CitadelServerCredentials, createCitadelServerMetrics } from './ca-server.ts';
export type { CaServiceOptions, CitadelServerMetrics } from './ca-server.ts';
export { loadOrCreateSelfSignedCa, loadPluggedInCa, rotateSelfSignedRoot, parseCertificates, PLUGGED_IN_FILES, SELF_SIGNED_FILES } from './ca-material.ts';
export type { CaMaterial, SelfSignedOptions } from './ca-material.ts';
export { issueBootstrapToken, verifyBootstrapToken, BOOTSTRAP_TOKEN_AUDIENCE, BOOTSTRAP_TOKEN_ISSUER } from './bootstrap-token.ts';
export { generateKeyPair, importPrivateKeyPem, privateKeyToPem, keyAlgorithm } from './keys.ts';
export type { KeyAlgorithmName } from './keys.ts';
export { systemCitadelClock } from './clock.ts';
export type { CitadelClock } from './clock.ts';
export { CitadelError, CitadelErrorCode } from './errors.ts';
export { spiffeId, parseSpiffeId } from '../common/index.ts';
export type { WorkloadIdentity } from '../common/index.ts';
export { SigningPool } from './signing-pool.ts';
export type { CsrSigner, SignedChain } from './certificate-authority.ts';
