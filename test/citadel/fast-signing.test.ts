// The CA's signing path (asn1-x509 structures, one serialization, node:crypto
// signatures): the certificates it issues verify with node:crypto against the
// root and carry the SAN, key usage, EKU and validity a workload needs, for
// both CA key types; and the CSR checks still refuse what they refused.

import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as x509 from '../../src/common/x509.ts';
import { isMeshError, silentLogger } from '../../src/common/index.ts';
import { CertificateAuthority, CitadelErrorCode, rotateSelfSignedRoot } from '../../src/citadel/index.ts';
import type { KeyAlgorithmName } from '../../src/citadel/index.ts';
import { createWorkloadKey } from '../../src/agent/index.ts';
import { FakeClock, TRUST_DOMAIN } from './helpers.ts';

const REVIEWS = `spiffe://${TRUST_DOMAIN}/ns/default/sa/reviews`;
const HOUR = 3_600_000;
const BACKDATE = 2 * 60_000;
const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function authority(algorithm: KeyAlgorithmName): Promise<{ ca: CertificateAuthority; clock: FakeClock }> {
  const dir = await mkdtemp(join(tmpdir(), 'citadel-fast-'));
  dirs.push(dir);
  const clock = new FakeClock();
  const material = await rotateSelfSignedRoot({ dir, trustDomain: TRUST_DOMAIN, algorithm, rootTtlMs: 365 * 24 * HOUR, rootRotationGraceRatio: 0.2, now: clock.now(), log: silentLogger() });
  const ca = new CertificateAuthority(material, { trustDomain: TRUST_DOMAIN, clock, defaultTtlMs: 24 * HOUR, maxTtlMs: 90 * 24 * HOUR, backdateMs: BACKDATE });
  return { ca, clock };
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isMeshError(err), `a CitadelError, got ${String(err)}`);
    return err.code;
  }
  assert.fail('expected a refusal');
}

for (const algorithm of ['ECDSA_P256', 'RSA_2048'] as const) {
  test(`a workload certificate signed by a ${algorithm} CA verifies against the root with the expected SAN, key usage, EKU and validity`, async () => {
    const { ca, clock } = await authority(algorithm);
    const { csrPem } = await createWorkloadKey(REVIEWS);
    const signed = await ca.signCsr(csrPem, REVIEWS, HOUR);
    const leaf = new X509Certificate(signed.chainPem[0]!);
    const root = new X509Certificate(ca.trustBundlePem()[0]!);
    assert.ok(leaf.verify(root.publicKey), 'signed by the root');
    assert.ok(leaf.checkIssued(root), 'issuer is the root subject');
    assert.equal(leaf.subject, undefined, 'empty subject');
    assert.equal(leaf.subjectAltName, `URI:${REVIEWS}`);
    assert.deepEqual(leaf.keyUsage?.slice().sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'], 'EKU serverAuth + clientAuth');
    assert.equal(leaf.ca, false);
    assert.equal(leaf.serialNumber.toLowerCase(), signed.serialNumber);
    const seconds = (t: number): number => Math.floor(t / 1000) * 1000;
    assert.equal(leaf.validFromDate.getTime(), seconds(clock.now() - BACKDATE));
    assert.equal(leaf.validToDate.getTime(), seconds(clock.now() + HOUR));
    assert.equal(signed.notAfter, leaf.validToDate.getTime());
    // The CSR's key is the certificate's key, byte for byte.
    const csr = new x509.Pkcs10CertificateRequest(csrPem);
    assert.ok(Buffer.from(csr.publicKey.rawData).equals(leaf.publicKey.export({ type: 'spki', format: 'der' })));
    // Extensions as @peculiar/x509 reads them: critical SAN, keyUsage digitalSignature + keyEncipherment, basicConstraints CA:FALSE.
    const parsed = new x509.X509Certificate(signed.chainPem[0]!);
    const keyUsage = parsed.getExtension(x509.KeyUsagesExtension)!;
    assert.ok(keyUsage.critical);
    assert.equal(keyUsage.usages, x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);
    assert.ok(parsed.getExtension(x509.SubjectAlternativeNameExtension)!.critical);
    assert.equal(parsed.getExtension(x509.BasicConstraintsExtension)!.ca, false);
    assert.ok(await parsed.verify({ publicKey: ca.material.signingCert.publicKey, signatureOnly: true }));
    assert.deepEqual(signed.chainPem.slice(1), [ca.trustBundlePem().join('')], 'then the trust bundle');
  });
}

test('the default TTL applies for 0 and the certificate never outlives the CA', async () => {
  const { ca, clock } = await authority('ECDSA_P256');
  const { csrPem } = await createWorkloadKey(REVIEWS);
  const byDefault = new X509Certificate((await ca.signCsr(csrPem, REVIEWS, 0)).chainPem[0]!);
  assert.equal(byDefault.validToDate.getTime(), Math.floor((clock.now() + 24 * HOUR) / 1000) * 1000);
  clock.advance(365 * 24 * HOUR - HOUR);
  const capped = await ca.signCsr(csrPem, REVIEWS, 24 * HOUR);
  assert.equal(capped.notAfter, Math.floor(ca.material.signingCert.notAfter.getTime() / 1000) * 1000);
});

test('the CSR checks refuse malformed requests, bad signatures, foreign identities and bad TTLs', async () => {
  const { ca } = await authority('ECDSA_P256');
  const { csrPem } = await createWorkloadKey(REVIEWS);
  assert.equal(await refusal(ca.signCsr('not a csr', REVIEWS, HOUR)), CitadelErrorCode.INVALID_CSR);
  assert.equal(await refusal(ca.signCsr('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', REVIEWS, HOUR)), CitadelErrorCode.INVALID_CSR);
  // Flip a bit of the signature: the request still parses but no longer verifies.
  const der = Buffer.from(csrPem.replace(/-----[^-]+-----/g, '').replace(/\s/g, ''), 'base64');
  der[der.length - 1]! ^= 0x01;
  const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  await assert.rejects(ca.parseCsr(tampered), /does not verify/);
  assert.equal(await refusal(ca.signCsr(csrPem, `spiffe://${TRUST_DOMAIN}/ns/default/sa/ratings`, HOUR)), CitadelErrorCode.IDENTITY_MISMATCH);
  assert.equal(await refusal(ca.signCsr(csrPem, 'spiffe://other.domain/ns/default/sa/reviews', HOUR)), CitadelErrorCode.IDENTITY_MISMATCH);
  assert.equal(await refusal(ca.signCsr(csrPem, REVIEWS, 91 * 24 * HOUR)), CitadelErrorCode.INVALID_TTL);
  assert.equal(await refusal(ca.signCsr(csrPem, REVIEWS, -1)), CitadelErrorCode.INVALID_TTL);
});
