// Citadel's key material: the self-signed root in the data dir (0600, re-used
// on restart, rotated with the old root kept in the trust bundle), plugged-in
// cacerts in Istio's layout, and what happens when the files do not fit.

import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as x509 from '../../src/common/x509.ts';
import { silentLogger, isMeshError } from '../../src/common/index.ts';
import { Citadel, CitadelErrorCode, generateKeyPair, keyAlgorithm } from '../../src/citadel/index.ts';
import type { KeyAlgorithmName } from '../../src/citadel/index.ts';
import { createWorkloadKey } from '../../src/agent/index.ts';
import { createCertificate, FakeClock, startCitadel, TRUST_DOMAIN } from './helpers.ts';

const dirs: string[] = [];
const running: { close(): Promise<void> }[] = [];
after(async () => {
  for (const r of running) await r.close().catch(() => undefined);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
/** startCitadel, closed after the file's tests even when an assertion fails first. */
async function start(options: Parameters<typeof startCitadel>[0]): Promise<Awaited<ReturnType<typeof startCitadel>>> {
  const r = await startCitadel(options);
  let closed = false;
  const close = async (): Promise<void> => {
    if (!closed) await r.close();
    closed = true;
  };
  running.push({ close });
  return { ...r, close };
}
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'citadel-material-'));
  dirs.push(d);
  return d;
}

/** Signs a CSR for `sa` through the running CA with a bootstrap token; returns the chain. */
async function signFor(ca: Awaited<ReturnType<typeof startCitadel>>, sa = 'reviews'): Promise<string[]> {
  const id = `spiffe://${TRUST_DOMAIN}/ns/default/sa/${sa}`;
  const key = await createWorkloadKey(id);
  const token = await ca.citadel.issueBootstrapToken('default', sa);
  const { chain, error } = await createCertificate(ca.address, ca.citadel.trustBundlePem().join(''), { csr: key.csrPem, validity_duration: 3600 }, { token });
  assert.equal(error, undefined, error?.details);
  return chain!;
}

/** Node's own X.509 check that each certificate is signed by the next, ending at one of `roots`. */
function assertChainVerifies(chain: readonly string[], roots: readonly string[]): void {
  const certs = chain.map((pem) => new X509Certificate(pem));
  const anchors = roots.map((pem) => new X509Certificate(pem));
  for (let i = 0; i + 1 < certs.length; i++) assert.ok(certs[i]!.verify(certs[i + 1]!.publicKey), `certificate ${i} is signed by ${i + 1}`);
  const top = certs[certs.length - 1]!;
  assert.ok(anchors.some((r) => top.checkIssued(r) && top.verify(r.publicKey)), 'the chain ends at a trusted root');
}

function splitPem(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

test('a self-signed root is generated on first start, with the key 0600, and re-used on restart', async () => {
  const dataDir = await tempDir();
  const first = await start({ dataDir });
  const rootPem = first.citadel.trustBundlePem()[0]!;
  const chain = await signFor(first);
  await first.close();

  const keyStat = await stat(join(dataDir, 'citadel', 'ca-key.pem'));
  assert.equal(keyStat.mode & 0o777, 0o600);
  assert.equal((await stat(join(dataDir, 'citadel'))).mode & 0o077, 0, 'the CA dir is private');
  const root = new X509Certificate(rootPem);
  assert.equal(root.ca, true);
  assert.equal(root.subject, `O=${TRUST_DOMAIN}`);
  assert.equal(createPrivateKey(await readFile(join(dataDir, 'citadel', 'ca-key.pem'))).asymmetricKeyDetails?.namedCurve, 'prime256v1');

  const second = await start({ dataDir });
  assert.deepEqual(second.citadel.trustBundlePem(), [rootPem], 'same root after restart');
  // A certificate issued before the restart verifies against the root after it, and new ones chain to it too.
  assertChainVerifies(chain.slice(0, -1), second.citadel.trustBundlePem());
  assertChainVerifies((await signFor(second)).slice(0, -1), second.citadel.trustBundlePem());
  await second.close();
});

test('a key without its certificate is refused with the file named', async () => {
  const dataDir = await tempDir();
  const ca = await start({ dataDir });
  await ca.close();
  await rm(join(dataDir, 'citadel', 'ca-cert.pem'));
  const citadel = new Citadel({ dataDir, trustDomain: TRUST_DOMAIN, log: silentLogger() });
  await assert.rejects(citadel.start(), (err) => isMeshError(err, CitadelErrorCode.CA_MATERIAL) && /ca-cert\.pem is missing/.test(err.message));
});

test('rotating the root keeps the old root in the trust bundle, so old certificates still verify', async () => {
  const dataDir = await tempDir();
  const ca = await start({ dataDir });
  const oldRoot = ca.citadel.trustBundlePem()[0]!;
  const oldChain = await signFor(ca);
  let heard: readonly string[] = [];
  ca.citadel.onTrustBundleChange((bundle) => (heard = bundle));
  await ca.citadel.rotateRoot();
  const bundle = ca.citadel.trustBundlePem();
  assert.equal(bundle.length, 2);
  assert.notEqual(bundle[0], oldRoot, 'the new root signs and comes first');
  assert.equal(bundle[1], oldRoot);
  assert.deepEqual(heard, bundle, 'listeners hear the new bundle');
  assertChainVerifies(oldChain.slice(0, -1), bundle);
  const newChain = await signFor(ca);
  assert.deepEqual(splitPem(newChain[newChain.length - 1]!), bundle.map((p) => p.trim()), 'the response carries the whole bundle as its last element');
  assertChainVerifies(newChain.slice(0, -1), [bundle[0]!]);
  await ca.close();

  // Both roots survive a restart.
  const again = await start({ dataDir });
  assert.deepEqual(again.citadel.trustBundlePem(), bundle);
  await again.close();
});

test('a self-signed root near its end is replaced on start; the old one stays trusted', async () => {
  const dataDir = await tempDir();
  const clock = new FakeClock();
  const ca = await start({ dataDir, clock, rootCertTtlMs: 100 * 86_400_000 });
  const oldRoot = ca.citadel.trustBundlePem()[0]!;
  await ca.close();
  clock.advance(90 * 86_400_000); // less than 20 % of its life left
  const again = await start({ dataDir, clock, rootCertTtlMs: 100 * 86_400_000 });
  const bundle = again.citadel.trustBundlePem();
  assert.equal(bundle.length, 2);
  assert.equal(bundle[1], oldRoot);
  await again.close();
});

test('an RSA root signs workload certificates too', async () => {
  const ca = await start({ keyAlgorithm: 'RSA_2048' });
  const root = new X509Certificate(ca.citadel.trustBundlePem()[0]!);
  assert.equal(root.publicKey.asymmetricKeyType, 'rsa');
  assertChainVerifies((await signFor(ca)).slice(0, -1), ca.citadel.trustBundlePem());
  await ca.close();
});

/** An offline root and an intermediate signing CA, written in Istio's cacerts layout. */
async function writeCaCerts(dir: string, algorithm: KeyAlgorithmName, keyFormat: 'pkcs8' | 'sec1-or-pkcs1'): Promise<{ rootPem: string; caCertPem: string }> {
  const now = Date.now();
  const signing = keyAlgorithm(algorithm).signing;
  const rootKeys = await generateKeyPair(algorithm);
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=Root CA,O=Example', keys: rootKeys, signingAlgorithm: signing, serialNumber: '01',
    notBefore: new Date(now - 3600_000), notAfter: new Date(now + 365 * 86_400_000),
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  const caKeys = await generateKeyPair(algorithm);
  const ca = await x509.X509CertificateGenerator.create({
    subject: 'CN=Intermediate CA,O=Example', issuer: root.subjectName, publicKey: caKeys.publicKey, signingKey: rootKeys.privateKey, signingAlgorithm: signing, serialNumber: '02',
    notBefore: new Date(now - 3600_000), notAfter: new Date(now + 180 * 86_400_000),
    extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  const pkcs8 = Buffer.from(await crypto.subtle.exportKey('pkcs8', caKeys.privateKey));
  const keyObject = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  const keyPem = keyFormat === 'pkcs8' ? keyObject.export({ type: 'pkcs8', format: 'pem' }) : keyObject.export({ type: algorithm === 'RSA_2048' ? 'pkcs1' : 'sec1', format: 'pem' });
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'ca-key.pem'), keyPem, { mode: 0o600 });
  await writeFile(join(dir, 'ca-cert.pem'), ca.toString('pem'));
  await writeFile(join(dir, 'root-cert.pem'), root.toString('pem'));
  await writeFile(join(dir, 'cert-chain.pem'), `${ca.toString('pem')}\n${root.toString('pem')}\n`);
  return { rootPem: root.toString('pem'), caCertPem: ca.toString('pem') };
}

for (const [name, algorithm, format] of [
  ['ECDSA, SEC1 key', 'ECDSA_P256', 'sec1-or-pkcs1'],
  ['RSA, PKCS#1 key', 'RSA_2048', 'sec1-or-pkcs1'],
  ['ECDSA, PKCS#8 key', 'ECDSA_P256', 'pkcs8'],
] as const) {
  test(`a plugged-in CA (cacerts: ${name}) signs through its intermediate`, async () => {
    const caCertsDir = join(await tempDir(), 'cacerts');
    const { rootPem, caCertPem } = await writeCaCerts(caCertsDir, algorithm, format);
    const ca = await start({ caCertsDir });
    assert.deepEqual(ca.citadel.trustBundlePem().map((p) => p.trim()), [rootPem.trim()]);
    const chain = await signFor(ca);
    assert.equal(chain.length, 3, 'leaf, intermediate, root bundle');
    assert.equal(chain[1]!.trim(), caCertPem.trim());
    assert.equal(chain[2]!.trim(), rootPem.trim());
    assertChainVerifies(chain.slice(0, -1), [rootPem]);
    await ca.close();
  });
}

test('plugged-in files that do not fit together are refused, naming the file', async () => {
  const base = await tempDir();
  const cases: { name: string; breakIt: (dir: string) => Promise<void>; expect: RegExp }[] = [
    { name: 'missing root', breakIt: (d) => rm(join(d, 'root-cert.pem')), expect: /root-cert\.pem: missing/ },
    { name: 'key of another certificate', breakIt: async (d) => writeFile(join(d, 'ca-key.pem'), createPrivateKey(Buffer.from(await crypto.subtle.exportKey('pkcs8', (await generateKeyPair('ECDSA_P256')).privateKey)).toString('base64').replace(/^/, '-----BEGIN PRIVATE KEY-----\n').concat('\n-----END PRIVATE KEY-----\n')).export({ type: 'pkcs8', format: 'pem' })), expect: /ca-key\.pem: is not the key of the certificate/ },
    { name: 'garbage key', breakIt: (d) => writeFile(join(d, 'ca-key.pem'), 'not a key'), expect: /ca-key\.pem: not a usable private key/ },
    { name: 'root of another CA', breakIt: async (d) => writeFile(join(d, 'root-cert.pem'), (await writeCaCerts(join(d, 'other'), 'ECDSA_P256', 'pkcs8')).rootPem), expect: /cert-chain\.pem: certificate 0 .* is not signed by the next one|does not lead to a root/ },
  ];
  for (const c of cases) {
    const dir = join(base, c.name.replace(/\W+/g, '-'));
    await writeCaCerts(dir, 'ECDSA_P256', 'pkcs8');
    await c.breakIt(dir);
    if (c.name === 'root of another CA') await rm(join(dir, 'cert-chain.pem'));
    const citadel = new Citadel({ dataDir: base, caCertsDir: dir, trustDomain: TRUST_DOMAIN, log: silentLogger() });
    await assert.rejects(citadel.start(), (err) => isMeshError(err, CitadelErrorCode.CA_MATERIAL) && c.expect.test(err.message), c.name);
  }
});
