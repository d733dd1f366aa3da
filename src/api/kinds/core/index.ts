// Kubernetes core (`v1`) kinds the mesh reads: Secrets holding gateway TLS credentials.
import type { KindDefinition } from '../../kind-registry.ts';
import { secretKind } from './secret.ts';

export const coreKinds: KindDefinition[] = [secretKind];
export { secretKind, credentialMaterial, parseCertificateChain, CREDENTIAL_KEYS, SECRET_TYPE_OPAQUE, SECRET_TYPE_TLS, MAX_SECRET_BYTES, MAX_CERTIFICATES } from './secret.ts';
export type { SecretSpec, CredentialMaterial } from './secret.ts';
