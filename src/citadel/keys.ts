// Key handling for the CA: WebCrypto key pairs (ECDSA P-256 by default, RSA
// optional) and conversion from and to PEM, so the same key can sign with
// @peculiar/x509 and jose and be stored on disk.

import { createPrivateKey, createPublicKey, webcrypto } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

export type WebCryptoKey = webcrypto.CryptoKey;
export type WebCryptoKeyPair = webcrypto.CryptoKeyPair;

export type KeyAlgorithmName = 'ECDSA_P256' | 'RSA_2048';

export interface KeyAlgorithm {
  /** For generateKey/importKey. */
  readonly params: webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams;
  /** For signing certificates. */
  readonly signing: webcrypto.Algorithm | webcrypto.EcdsaParams;
  /** The JWS `alg` of tokens signed with this key. */
  readonly jwsAlg: 'ES256' | 'RS256';
}

const EC: KeyAlgorithm = { params: { name: 'ECDSA', namedCurve: 'P-256' }, signing: { name: 'ECDSA', hash: 'SHA-256' } as webcrypto.EcdsaParams, jwsAlg: 'ES256' };
const RSA: KeyAlgorithm = { params: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, signing: { name: 'RSASSA-PKCS1-v1_5' }, jwsAlg: 'RS256' };

export function keyAlgorithm(name: KeyAlgorithmName): KeyAlgorithm {
  return name === 'RSA_2048' ? RSA : EC;
}

export async function generateKeyPair(name: KeyAlgorithmName): Promise<WebCryptoKeyPair> {
  const params = name === 'RSA_2048' ? { ...RSA.params, modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) } : EC.params;
  return (await webcrypto.subtle.generateKey(params, true, ['sign', 'verify'])) as WebCryptoKeyPair;
}

export async function privateKeyToPem(key: WebCryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END PRIVATE KEY-----\n`;
}

/**
 * Imports a PEM private key in any form OpenSSL writes (PKCS#8, SEC1 `EC
 * PRIVATE KEY`, PKCS#1 `RSA PRIVATE KEY`), as Istio's cacerts may hold any.
 * Throws on keys other than P-256 and RSA.
 */
export async function importPrivateKeyPem(pem: string): Promise<{ keys: WebCryptoKeyPair; algorithm: KeyAlgorithmName; keyObject: KeyObject }> {
  const keyObject = createPrivateKey(pem);
  let algorithm: KeyAlgorithmName;
  if (keyObject.asymmetricKeyType === 'ec' && keyObject.asymmetricKeyDetails?.namedCurve === 'prime256v1') algorithm = 'ECDSA_P256';
  else if (keyObject.asymmetricKeyType === 'rsa') algorithm = 'RSA_2048';
  else throw new Error(`unsupported key type ${keyObject.asymmetricKeyType} ${keyObject.asymmetricKeyDetails?.namedCurve ?? ''}: use ECDSA P-256 or RSA`.trim());
  const params = keyAlgorithm(algorithm).params;
  const privateKey = await webcrypto.subtle.importKey('pkcs8', keyObject.export({ type: 'pkcs8', format: 'der' }), params, true, ['sign']);
  const publicKey = await webcrypto.subtle.importKey('spki', createPublicKey(keyObject).export({ type: 'spki', format: 'der' }), params, true, ['verify']);
  return { keys: { privateKey, publicKey }, algorithm, keyObject };
}

/** The algorithm of a public key found in a certificate. */
export function algorithmOfPublicKey(key: WebCryptoKey): KeyAlgorithmName {
  return key.algorithm.name === 'ECDSA' ? 'ECDSA_P256' : 'RSA_2048';
}
