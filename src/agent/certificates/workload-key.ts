// The workload's private key and CSR. The key is made here, in the sidecar
// process, and never sent anywhere: only the CSR (public key + requested
// SPIFFE ID, signed with the key) goes to the CA; the key reaches the proxy
// in-process through SDS.

import { webcrypto } from 'node:crypto';
import * as x509 from '../../common/x509.ts';

export type WorkloadKeyType = 'ECDSA_P256' | 'RSA_2048';

export interface WorkloadKey {
  readonly keys: webcrypto.CryptoKeyPair;
  /** PKCS#8 PEM, for the proxy's TLS context. */
  readonly privateKeyPem: string;
  /** PEM PKCS#10 request for the identity. */
  readonly csrPem: string;
  /** SubjectPublicKeyInfo DER, to check the CA's answer is for this key. */
  readonly spki: Buffer;
}

/** A new key pair and a CSR for `spiffeId` (URI SAN, critical, empty subject as Istio's agent sends). */
export async function createWorkloadKey(spiffeId: string, type: WorkloadKeyType = 'ECDSA_P256'): Promise<WorkloadKey> {
  const params = type === 'RSA_2048'
    ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) }
    : { name: 'ECDSA', namedCurve: 'P-256' };
  const signingAlgorithm = type === 'RSA_2048' ? { name: 'RSASSA-PKCS1-v1_5' } : { name: 'ECDSA', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(params, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }], true)],
  });
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const privateKeyPem = `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END PRIVATE KEY-----\n`;
  const spki = Buffer.from(await webcrypto.subtle.exportKey('spki', keys.publicKey));
  return { keys, privateKeyPem, csrPem: csr.toString('pem'), spki };
}
