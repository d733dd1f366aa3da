// A throwaway PKI for TLS tests, as Istio's "Secure Gateways" task makes one
// with openssl: a root CA, server certificates for DNS names, client
// certificates. ECDSA P-256 over WebCrypto (@peculiar/x509); PEM out.

import { webcrypto } from 'node:crypto';
import * as x509 from '../../src/common/x509.ts';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface Pem {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface TestCa extends Pem {
  readonly cert: x509.X509Certificate;
  readonly keys: webcrypto.CryptoKeyPair;
}

function keyPem(pkcs8: ArrayBuffer): string {
  return x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
}

/** A self-signed root, `O=<org> Inc./CN=<org>` as the task's openssl line has it. */
export async function createCa(org: string, options: { notAfter?: Date } = {}): Promise<TestCa> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Date.now().toString(16),
    name: `O=${org} Inc., CN=${org}`,
    notBefore: new Date(Date.now() - DAY),
    notAfter: options.notAfter ?? new Date(Date.now() + 30 * DAY),
    keys,
    signingAlgorithm: ALG,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  return { cert, keys, certPem: cert.toString('pem'), keyPem: keyPem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)) };
}

let serial = 1;

/** A leaf signed by `ca`: a server certificate for `dnsNames`, or a client certificate. */
export async function issueCertificate(ca: TestCa, commonName: string, options: { dnsNames?: readonly string[]; client?: boolean; notAfter?: Date } = {}): Promise<Pem> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    new x509.ExtendedKeyUsageExtension([options.client ? x509.ExtendedKeyUsage.clientAuth : x509.ExtendedKeyUsage.serverAuth]),
  ];
  if (options.dnsNames?.length) extensions.push(new x509.SubjectAlternativeNameExtension(options.dnsNames.map((value) => ({ type: 'dns' as const, value }))));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: `${Date.now().toString(16)}${(serial++).toString(16).padStart(4, '0')}`,
    subject: `O=${commonName} organization, CN=${commonName}`,
    issuer: ca.cert.subject,
    notBefore: new Date(Date.now() - DAY),
    notAfter: options.notAfter ?? new Date(Date.now() + 10 * DAY),
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: ALG,
    extensions,
  });
  return { certPem: cert.toString('pem'), keyPem: keyPem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)) };
}
