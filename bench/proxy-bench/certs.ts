// Benchmark certificates: a mesh CA and SPIFFE leaf certificates (ECDSA
// P-256) for the client-side and server-side proxies, written as PEM files
// that nginx and haproxy read too (haproxy wants certificate and key in one).

import { webcrypto } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '../../src/common/x509.ts';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export interface BenchCerts {
  readonly caFile: string;
  readonly ca: string;
  readonly client: { readonly cert: string; readonly key: string; readonly certFile: string; readonly keyFile: string; readonly bundleFile: string; readonly uri: string };
  readonly server: { readonly cert: string; readonly key: string; readonly certFile: string; readonly keyFile: string; readonly bundleFile: string; readonly uri: string };
}

async function keyPem(key: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

export async function makeBenchCerts(dir: string): Promise<BenchCerts> {
  const now = Date.now();
  const caKeys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=bench-mesh-ca, O=cluster.local',
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 86_400_000),
    keys: caKeys,
    signingAlgorithm: ALG,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, ca.toString('pem'));
  let serial = 2;
  const leaf = async (name: string, sa: string): Promise<BenchCerts['client']> => {
    const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const uri = `spiffe://cluster.local/ns/bench/sa/${sa}`;
    const c = await x509.X509CertificateGenerator.create({
      serialNumber: String(serial++).padStart(2, '0'),
      subject: `CN=${name}`,
      issuer: ca.subject,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 86_400_000),
      publicKey: keys.publicKey,
      signingKey: caKeys.privateKey,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        // The DNS name lets nginx and haproxy verify the server by name; the mesh proxies match the URI SAN.
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: uri }, { type: 'dns', value: `${sa}.bench.svc.cluster.local` }]),
      ],
    });
    const cert = c.toString('pem');
    const key = await keyPem(keys.privateKey);
    const certFile = join(dir, `${sa}.pem`);
    const keyFile = join(dir, `${sa}.key`);
    const bundleFile = join(dir, `${sa}.bundle.pem`);
    writeFileSync(certFile, cert);
    writeFileSync(keyFile, key);
    writeFileSync(bundleFile, `${cert}\n${key}`);
    return { cert, key, certFile, keyFile, bundleFile, uri };
  };
  return { caFile, ca: ca.toString('pem'), client: await leaf('client', 'client'), server: await leaf('server', 'server') };
}
