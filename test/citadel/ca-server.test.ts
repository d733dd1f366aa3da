// The CA service over real gRPC and TLS on 127.0.0.1: issuing with a bootstrap
// token, renewing with the current certificate (mTLS), and every refusal with
// its gRPC status, reason and Istio metric.

import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { createWorkloadKey } from '../../src/agent/index.ts';
import { createCertificate, FakeClock, metricValue, startCitadel, TRUST_DOMAIN } from './helpers.ts';
import type { RunningCitadel } from './helpers.ts';

const REVIEWS = `spiffe://${TRUST_DOMAIN}/ns/default/sa/reviews`;
const RATINGS = `spiffe://${TRUST_DOMAIN}/ns/default/sa/ratings`;
const HOUR = 3_600_000;

let clock: FakeClock;
let ca: RunningCitadel;
let foreign: RunningCitadel;
let roots: string;

before(async () => {
  clock = new FakeClock();
  ca = await startCitadel({ clock, workloadCertTtlMs: 24 * HOUR, maxWorkloadCertTtlMs: 48 * HOUR });
  foreign = await startCitadel({ trustDomain: TRUST_DOMAIN });
  roots = ca.citadel.trustBundlePem().join('');
});
after(async () => {
  await ca.close();
  await foreign.close();
});

async function counters(): Promise<Record<string, number>> {
  const names = ['csr_count', 'authentication_failure_count', 'csr_parsing_err_count', 'id_extraction_err_count', 'csr_sign_err_count', 'success_cert_issuance_count'];
  const out: Record<string, number> = {};
  for (const n of names) out[n] = await metricValue(ca.metrics, `citadel_server_${n}`);
  return out;
}

/** What changed in the counters while `fn` ran. */
async function metricDelta(fn: () => Promise<void>): Promise<Record<string, number>> {
  const before = await counters();
  await fn();
  const after = await counters();
  return Object.fromEntries(Object.entries(after).filter(([k, v]) => v !== before[k]).map(([k, v]) => [k, v - before[k]!]));
}

/** A certificate for `sa` through the token path: its chain and private key. */
async function issue(sa: string, ttlSeconds = 3600, on: RunningCitadel = ca): Promise<{ chain: string[]; keyPem: string }> {
  const key = await createWorkloadKey(`spiffe://${TRUST_DOMAIN}/ns/default/sa/${sa}`);
  const token = await on.citadel.issueBootstrapToken('default', sa);
  const { chain, error } = await createCertificate(on.address, on.citadel.trustBundlePem().join(''), { csr: key.csrPem, validity_duration: ttlSeconds }, { token });
  assert.equal(error, undefined, error?.details);
  return { chain: chain!, keyPem: key.privateKeyPem };
}

test('a CSR with the bootstrap token gets a certificate for its SPIFFE identity that verifies against the root', async () => {
  let result: { chain: string[]; keyPem: string } | undefined;
  const delta = await metricDelta(async () => {
    result = await issue('reviews', 3600);
  });
  assert.deepEqual(delta, { csr_count: 1, success_cert_issuance_count: 1 });
  const [leafPem, rootPem] = result!.chain;
  const leaf = new X509Certificate(leafPem!);
  const root = new X509Certificate(rootPem!);
  assert.ok(leaf.verify(root.publicKey) && leaf.checkIssued(root), 'signed by the root');
  assert.equal(leaf.subjectAltName, `URI:${REVIEWS}`);
  assert.equal(leaf.ca, false);
  assert.deepEqual(leaf.keyUsage?.sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'], 'EKU serverAuth + clientAuth');
  const notBefore = Date.parse(leaf.validFrom);
  const notAfter = Date.parse(leaf.validTo);
  // X.509 times have whole seconds.
  assert.ok(Math.abs(notAfter - clock.now() - HOUR) < 1000, 'the requested TTL');
  assert.ok(Math.abs(clock.now() - notBefore - 2 * 60_000) < 1000, 'backdated for clock skew');
});

test('TTL: 0 takes the default (24 h), above the maximum is refused', async () => {
  const key = await createWorkloadKey(REVIEWS);
  const token = await ca.citadel.issueBootstrapToken('default', 'reviews');
  const ok = await createCertificate(ca.address, roots, { csr: key.csrPem, validity_duration: 0 }, { token });
  const leaf = new X509Certificate(ok.chain![0]!);
  assert.ok(Math.abs(Date.parse(leaf.validTo) - clock.now() - 24 * HOUR) < 1000);
  assert.ok(Math.abs(clock.now() - Date.parse(leaf.validFrom) - 2 * 60_000) < 1000, 'backdated two minutes');
  let refused: Awaited<ReturnType<typeof createCertificate>> | undefined;
  const delta = await metricDelta(async () => {
    refused = await createCertificate(ca.address, roots, { csr: key.csrPem, validity_duration: 49 * 3600 }, { token });
  });
  assert.equal(refused!.error?.code, grpc.status.INVALID_ARGUMENT);
  assert.match(refused!.error!.details, /MESH_ERR_CITADEL_INVALID_TTL: validity_duration 176400 s is above the maximum 172800 s/);
  assert.deepEqual(delta, { csr_count: 1, csr_sign_err_count: 1 });
});

test('a CSR for another identity is refused', async () => {
  const key = await createWorkloadKey(RATINGS);
  const token = await ca.citadel.issueBootstrapToken('default', 'reviews');
  let result: Awaited<ReturnType<typeof createCertificate>> | undefined;
  const delta = await metricDelta(async () => {
    result = await createCertificate(ca.address, roots, { csr: key.csrPem }, { token });
  });
  assert.equal(result!.error?.code, grpc.status.PERMISSION_DENIED);
  assert.match(result!.error!.details, new RegExp(`MESH_ERR_CITADEL_IDENTITY_MISMATCH: csr asks for ${RATINGS} but the caller is ${REVIEWS}`));
  assert.deepEqual(delta, { csr_count: 1, id_extraction_err_count: 1 });
});

test('malformed CSRs are refused with the reason', async () => {
  const token = await ca.citadel.issueBootstrapToken('default', 'reviews');
  const good = (await createWorkloadKey(REVIEWS)).csrPem;
  // Flip one byte inside the signature: still DER, no longer signed by its key.
  const der = Buffer.from(good.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  der[der.length - 5] ^= 0x01;
  const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  const cases = [
    { name: 'not PEM', csr: 'hello', expect: /csr is not a PEM "CERTIFICATE REQUEST"/ },
    { name: 'PEM of garbage', csr: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', expect: /csr is not a PKCS#10 request/ },
    { name: 'bad signature', csr: tampered, expect: /csr signature does not verify/ },
  ];
  for (const c of cases) {
    let result: Awaited<ReturnType<typeof createCertificate>> | undefined;
    const delta = await metricDelta(async () => {
      result = await createCertificate(ca.address, roots, { csr: c.csr }, { token });
    });
    assert.equal(result!.error?.code, grpc.status.INVALID_ARGUMENT, c.name);
    assert.match(result!.error!.details, c.expect, c.name);
    assert.deepEqual(delta, { csr_count: 1, csr_parsing_err_count: 1 }, c.name);
  }
});

test('missing, malformed, expired and foreign bootstrap tokens are refused', async () => {
  const csr = (await createWorkloadKey(REVIEWS)).csrPem;
  const shortLived = await ca.citadel.issueBootstrapToken('default', 'reviews', 60_000);
  const good = await ca.citadel.issueBootstrapToken('default', 'reviews');
  const cases: { name: string; token?: string; header?: string; advance?: number; expect: RegExp }[] = [
    { name: 'none', expect: /no credential: send the bootstrap token/ },
    { name: 'not a JWT', token: 'abc', expect: /bootstrap token is malformed/ },
    { name: 'signed by another CA', token: await foreign.citadel.issueBootstrapToken('default', 'reviews'), expect: /bootstrap token is not signed by this mesh's CA/ },
    { name: 'tampered claims', token: good.replace(/^([^.]+)\.([^.]+)\./, (_m, h: string) => `${h}.${Buffer.from(JSON.stringify({ ns: 'default', sa: 'ratings', sub: RATINGS, iss: 'mesh-citadel', aud: 'istio-ca', exp: 9e9 })).toString('base64url')}.`), expect: /not signed by this mesh's CA/ },
    { name: 'expired', token: shortLived, advance: 120_000, expect: /bootstrap token expired at/ },
  ];
  for (const c of cases) {
    if (c.advance) clock.advance(c.advance);
    let result: Awaited<ReturnType<typeof createCertificate>> | undefined;
    const delta = await metricDelta(async () => {
      result = await createCertificate(ca.address, roots, { csr }, c.token === undefined ? {} : { token: c.token });
    });
    assert.equal(result!.error?.code, grpc.status.UNAUTHENTICATED, c.name);
    assert.match(result!.error!.details, /^MESH_ERR_CITADEL_UNAUTHENTICATED: /, c.name);
    assert.match(result!.error!.details, c.expect, c.name);
    assert.deepEqual(delta, { csr_count: 1, authentication_failure_count: 1 }, c.name);
  }
});

test('renewal with the current certificate over mTLS works, for its own identity only', async () => {
  const current = await issue('reviews');
  const clientCertPem = current.chain.slice(0, -1).join('');
  const next = await createWorkloadKey(REVIEWS);
  const renewed = await createCertificate(ca.address, roots, { csr: next.csrPem, validity_duration: 3600 }, { clientKeyPem: current.keyPem, clientCertPem });
  assert.equal(renewed.error, undefined, renewed.error?.details);
  const leaf = new X509Certificate(renewed.chain![0]!);
  assert.equal(leaf.subjectAltName, `URI:${REVIEWS}`);
  assert.notEqual(leaf.serialNumber, new X509Certificate(current.chain[0]!).serialNumber);

  const other = await createCertificate(ca.address, roots, { csr: (await createWorkloadKey(RATINGS)).csrPem }, { clientKeyPem: current.keyPem, clientCertPem });
  assert.equal(other.error?.code, grpc.status.PERMISSION_DENIED);
  assert.match(other.error!.details, /csr asks for .*ratings but the caller is .*reviews/);
});

test('expired and foreign client certificates are refused with the reason', async () => {
  const csr = (await createWorkloadKey(REVIEWS)).csrPem;
  const mine = await issue('reviews', 3600);
  const theirs = await issue('reviews', 3600, foreign);
  const cases: { name: string; cert: { chain: string[]; keyPem: string }; advance?: number; expect: RegExp }[] = [
    { name: 'foreign', cert: theirs, expect: /client certificate: not issued by this mesh's CA \(issuer "O=cluster.local"\)/ },
    { name: 'expired', cert: mine, advance: 2 * HOUR, expect: /client certificate: expired at / },
  ];
  for (const c of cases) {
    if (c.advance) clock.advance(c.advance);
    let result: Awaited<ReturnType<typeof createCertificate>> | undefined;
    const delta = await metricDelta(async () => {
      result = await createCertificate(ca.address, roots, { csr }, { clientKeyPem: c.cert.keyPem, clientCertPem: c.cert.chain.slice(0, -1).join('') });
    });
    assert.equal(result!.error?.code, grpc.status.UNAUTHENTICATED, c.name);
    assert.match(result!.error!.details, c.expect, c.name);
    assert.deepEqual(delta, { csr_count: 1, authentication_failure_count: 1 }, c.name);
  }
  // A valid token still gets through next to a bad certificate, as with Istio's chained authenticators.
  const token = await ca.citadel.issueBootstrapToken('default', 'reviews');
  const both = await createCertificate(ca.address, roots, { csr }, { token, clientKeyPem: theirs.keyPem, clientCertPem: theirs.chain[0]! });
  assert.equal(both.error, undefined, both.error?.details);
});

test('signing worker threads issue the same certificates, carry refusals back, and follow a root rotation', async () => {
  const pooled = await startCitadel({ signingWorkers: 2 });
  try {
    const { chain } = await issue('reviews', 3600, pooled);
    const root = new X509Certificate(pooled.citadel.trustBundlePem()[0]!);
    assert.ok(new X509Certificate(chain[0]!).verify(root.publicKey));
    assert.equal(new X509Certificate(chain[0]!).subjectAltName, `URI:${REVIEWS}`);

    const token = await pooled.citadel.issueBootstrapToken('default', 'reviews');
    const bundle = pooled.citadel.trustBundlePem().join('');
    const mismatch = await createCertificate(pooled.address, bundle, { csr: (await createWorkloadKey(RATINGS)).csrPem }, { token });
    assert.equal(mismatch.error?.code, grpc.status.PERMISSION_DENIED);
    assert.match(mismatch.error!.details, /^MESH_ERR_CITADEL_IDENTITY_MISMATCH: /);
    const garbage = await createCertificate(pooled.address, bundle, { csr: 'nope' }, { token });
    assert.equal(garbage.error?.code, grpc.status.INVALID_ARGUMENT);
    assert.equal(await metricValue(pooled.metrics, 'citadel_server_csr_parsing_err_count'), 1);

    await pooled.citadel.rotateRoot();
    const newRoot = new X509Certificate(pooled.citadel.trustBundlePem()[0]!);
    const after = await issue('reviews', 3600, pooled);
    assert.ok(new X509Certificate(after.chain[0]!).verify(newRoot.publicKey), 'signed by the new root in the workers');
  } finally {
    await pooled.close();
  }
});
