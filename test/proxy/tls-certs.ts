// Test certificates: a CA and SPIFFE/DNS leaf certificates made with
// WebCrypto ECDSA P-256, as PEM strings for Envoy inline_string data sources.

import { webcrypto } from 'node:crypto';
import * as x509 from '../../src/common/x509.ts';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
type KeyPair = webcrypto.CryptoKeyPair;
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export interface Pem {
  readonly cert: string;
  readonly key: string;
}

export interface TestCa extends Pem {
  readonly certificate: x509.X509Certificate;
  readonly keys: KeyPair;
}

async function keyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

let serial = 1;
const notBefore = (): Date => new Date(Date.now() - 60_000);
const notAfter = (): Date => new Date(Date.now() + 24 * 3600_000);

export async function makeCa(name = 'test-ca'): Promise<TestCa> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as KeyPair;
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: String(serial++).padStart(2, '0'),
    name: `CN=${name}`,
    notBefore: notBefore(),
    notAfter: notAfter(),
    keys,
    signingAlgorithm: ALG,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  return { certificate, keys, cert: certificate.toString('pem'), key: await keyPem(keys.privateKey) };
}

/** A leaf signed by `ca` with URI and/or DNS SANs (client and server auth). */
export async function makeLeaf(ca: TestCa, sans: { uri?: string[]; dns?: string[]; cn?: string }): Promise<Pem> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as KeyPair;
  const names: x509.JsonGeneralName[] = [...(sans.uri ?? []).map((v) => ({ type: 'url' as const, value: v })), ...(sans.dns ?? []).map((v) => ({ type: 'dns' as const, value: v }))];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: String(serial++).padStart(2, '0'),
    subject: `CN=${sans.cn ?? 'workload'}`,
    issuer: ca.certificate.subject,
    notBefore: notBefore(),
    notAfter: notAfter(),
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(names),
    ],
  });
  return { cert: cert.toString('pem'), key: await keyPem(keys.privateKey) };
}

export function spiffe(sa: string, ns = 'default'): string {
  return `spiffe://cluster.local/ns/${ns}/sa/${sa}`;
}
