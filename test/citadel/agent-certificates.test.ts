// The agent's certificates against a real Citadel over gRPC: the first
// certificate with the bootstrap token, rotation at 80 % of the lifetime on a
// fake clock (again and again, renewing over mTLS), retry with backoff while
// the CA refuses, and the SDS server streaming `default` and `ROOTCA` to a
// real grpc-js client, pushing a new version on every rotation.

import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { createLogger, silentLogger } from '../../src/common/index.ts';
import { CaClient, ROOT_SECRET_NAME, SDS_SERVICE, SdsServer, SecretManager, WORKLOAD_SECRET_NAME } from '../../src/agent/index.ts';
import type { WorkloadSecret } from '../../src/agent/index.ts';
import { loadXdsProtos, TypeUrl, unpackMessage } from '../../src/xds/index.ts';
import type { DiscoveryRequest, DiscoveryResponse } from '../../src/xds/index.ts';
import { FakeClock, metricValue, startCitadel, TRUST_DOMAIN } from './helpers.ts';
import type { RunningCitadel } from './helpers.ts';

const REVIEWS = `spiffe://${TRUST_DOMAIN}/ns/default/sa/reviews`;
const HOUR = 3_600_000;
const BACKDATE = 2 * 60_000;

let clock: FakeClock;
let ca: RunningCitadel;
let tmp: string;

before(async () => {
  clock = new FakeClock();
  ca = await startCitadel({ clock });
  tmp = await mkdtemp(join(tmpdir(), 'agent-sds-'));
});
after(async () => {
  await ca.close();
  await rm(tmp, { recursive: true, force: true });
});

function manager(options: { tokenCalls?: { n: number }; caClient?: CaClient; on?: RunningCitadel } = {}): SecretManager {
  const on = options.on ?? ca;
  const caClient = options.caClient ?? new CaClient({ address: on.address, rootCertsPem: on.citadel.trustBundlePem().join('') });
  return new SecretManager({
    spiffeId: REVIEWS,
    caClient,
    bootstrapToken: () => {
      if (options.tokenCalls) options.tokenCalls.n++;
      return on.citadel.issueBootstrapToken('default', 'reviews');
    },
    ttlSeconds: 3600,
    clock,
    log: process.env.DEBUG_AGENT ? createLogger('test') : silentLogger(),
  });
}

/** Waits (on I/O turns, not on time) until `condition` holds; fails after 2 s. */
async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setImmediate(r));
  }
}

/** Resolves with the next secret the manager publishes. */
function nextSecret(m: SecretManager): Promise<WorkloadSecret> {
  return new Promise((resolve) => {
    const off = m.subscribe((s) => {
      off();
      resolve(s);
    });
  });
}

test('the agent rotates its certificate at 80 % of its lifetime, again and again, over mTLS', async () => {
  const tokenCalls = { n: 0 };
  const m = manager({ tokenCalls });
  let secret = await m.start();
  assert.equal(tokenCalls.n, 1, 'the first CSR uses the bootstrap token');
  assert.equal(secret.version, 1);
  const successes = await metricValue(ca.metrics, 'citadel_server_success_cert_issuance_count');
  for (let round = 1; round <= 3; round++) {
    // 80% of the lifetime from issue (the backdated notBefore does not count).
    const issuedAt = clock.now();
    assert.ok(secret.notBefore <= issuedAt - BACKDATE + 1000);
    assert.ok(Math.abs(secret.notAfter - issuedAt - HOUR) < 1000, 'a one-hour certificate');
    assert.equal(secret.rotateAt, issuedAt + Math.floor((secret.notAfter - issuedAt) * 0.8));
    // Just before 80 %: nothing happens.
    clock.advance(secret.rotateAt - clock.now() - 1000);
    assert.equal(m.current()!.version, round);
    const next = nextSecret(m);
    clock.advance(1000);
    const rotated = await next;
    assert.equal(rotated.version, round + 1);
    assert.notEqual(rotated.privateKeyPem, secret.privateKeyPem, 'a new key for every certificate');
    assert.notEqual(new X509Certificate(rotated.certChainPem).serialNumber, new X509Certificate(secret.certChainPem).serialNumber);
    assert.equal(new X509Certificate(rotated.certChainPem).subjectAltName, `URI:${REVIEWS}`);
    // The key the agent keeps is the one in the certificate.
    assert.ok(createPublicKey(createPrivateKey(rotated.privateKeyPem)).export({ type: 'spki', format: 'der' }).equals(new X509Certificate(rotated.certChainPem).publicKey.export({ type: 'spki', format: 'der' })));
    secret = rotated;
  }
  assert.equal(tokenCalls.n, 1, 'renewals present the current certificate, not the token');
  assert.equal(await metricValue(ca.metrics, 'citadel_server_success_cert_issuance_count'), successes + 3);
  m.stop();
});

test('a failed renewal retries with backoff while the current certificate keeps serving', async () => {
  const real = new CaClient({ address: ca.address, rootCertsPem: ca.citadel.trustBundlePem().join('') });
  let failures = 2;
  const attempts: number[] = [];
  const flaky = Object.assign(Object.create(real) as CaClient, {
    createCertificate(csr: string, ttl: number, credential: Parameters<CaClient['createCertificate']>[2]) {
      attempts.push(clock.now());
      if (attempts.length > 1 && failures-- > 0) return Promise.reject(new Error('CA unavailable'));
      return real.createCertificate(csr, ttl, credential);
    },
  });
  const m = manager({ caClient: flaky });
  const first = await m.start();
  clock.advance(first.rotateAt - clock.now());
  // The failed attempt settles and schedules a retry in 1 s, then 2 s.
  await until(() => attempts.length === 2 && clock.nextAt() === clock.now() + 1000);
  assert.equal(m.current()!.version, 1, 'still serving the first certificate');
  clock.advance(1000);
  await until(() => attempts.length === 3 && clock.nextAt() === clock.now() + 2000);
  assert.equal(m.current()!.version, 1);
  const next = nextSecret(m);
  clock.advance(2000);
  assert.equal((await next).version, 2);
  assert.deepEqual(attempts.slice(1).map((t) => t - attempts[1]!), [0, 1000, 3000]);
  m.stop();
});

test('the SDS server streams default and ROOTCA and pushes a new version on rotation', async () => {
  const m = manager();
  await m.start();
  const sds = new SdsServer({ source: m, log: silentLogger() });
  const socket = join(tmp, 'sds.sock');
  await sds.listen(`unix:${socket}`);
  const Client = loadXdsProtos().service(SDS_SERVICE);
  const client = new Client(`unix:${socket}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & { StreamSecrets(): grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse> };
  const stream = client.StreamSecrets();
  const responses: DiscoveryResponse[] = [];
  const waiters: (() => void)[] = [];
  stream.on('data', (r: DiscoveryResponse) => {
    responses.push(r);
    waiters.shift()?.();
  });
  stream.on('error', () => undefined);
  const response = async (n: number): Promise<DiscoveryResponse> => {
    while (responses.length < n) await new Promise<void>((resolve) => waiters.push(resolve));
    return responses[n - 1]!;
  };
  type Secret = { name: string; tls_certificate?: { certificate_chain: { inline_bytes: Buffer }; private_key: { inline_bytes: Buffer } }; validation_context?: { trusted_ca: { inline_bytes: Buffer } } };
  const secretsOf = (r: DiscoveryResponse): Map<string, Secret> => new Map(r.resources.map((any) => unpackMessage<Secret>(any)).map((s) => [s.name, s]));

  stream.write({ node: { id: 'sidecar~10.0.0.1~reviews-v1.default~default.svc.cluster.local' }, type_url: TypeUrl.Secret, resource_names: [WORKLOAD_SECRET_NAME, ROOT_SECRET_NAME] });
  const first = await response(1);
  assert.equal(first.type_url, TypeUrl.Secret);
  assert.equal(first.version_info, '1');
  let secrets = secretsOf(first);
  assert.deepEqual([...secrets.keys()].sort(), [ROOT_SECRET_NAME, WORKLOAD_SECRET_NAME]);
  const current = m.current()!;
  assert.equal(secrets.get(WORKLOAD_SECRET_NAME)!.tls_certificate!.certificate_chain.inline_bytes.toString(), current.certChainPem);
  assert.equal(secrets.get(WORKLOAD_SECRET_NAME)!.tls_certificate!.private_key.inline_bytes.toString(), current.privateKeyPem);
  assert.equal(secrets.get(ROOT_SECRET_NAME)!.validation_context!.trusted_ca.inline_bytes.toString().trim(), ca.citadel.trustBundlePem().join('').trim());
  const leaf = new X509Certificate(current.certChainPem);
  assert.ok(leaf.verify(new X509Certificate(ca.citadel.trustBundlePem()[0]!).publicKey));

  // ACK: no new response. Then rotation pushes version 2 on the open stream.
  stream.write({ type_url: TypeUrl.Secret, resource_names: [WORKLOAD_SECRET_NAME, ROOT_SECRET_NAME], version_info: '1', response_nonce: first.nonce });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(responses.length, 1, 'an ACK gets no answer');
  clock.advance(current.rotateAt - clock.now());
  const second = await response(2);
  assert.equal(second.version_info, '2');
  assert.notEqual(second.nonce, first.nonce);
  secrets = secretsOf(second);
  assert.equal(secrets.get(WORKLOAD_SECRET_NAME)!.tls_certificate!.certificate_chain.inline_bytes.toString(), m.current()!.certChainPem);
  assert.notEqual(m.current()!.certChainPem, current.certChainPem);

  // A stream asking only for ROOTCA gets only ROOTCA.
  const rootOnly = client.StreamSecrets();
  rootOnly.on('error', () => undefined);
  const rootResponse = await new Promise<DiscoveryResponse>((resolve) => {
    rootOnly.once('data', resolve);
    rootOnly.write({ type_url: TypeUrl.Secret, resource_names: [ROOT_SECRET_NAME] });
  });
  assert.deepEqual([...secretsOf(rootResponse).keys()], [ROOT_SECRET_NAME]);

  rootOnly.cancel();
  stream.cancel();
  client.close();
  m.stop();
  await sds.close();
});

test('after a root rotation the agent serves both roots as ROOTCA', async () => {
  // On real time: the rotation re-issues the CA's serving certificate, which the TLS client checks against the real clock.
  const realCa = await startCitadel();
  const m = manager({ on: realCa });
  await m.start();
  assert.equal(m.current()!.rootCertPem.match(/BEGIN CERTIFICATE/g)!.length, 1);
  await realCa.citadel.rotateRoot();
  const next = await m.rotate();
  assert.equal(next.rootCertPem.match(/BEGIN CERTIFICATE/g)!.length, 2);
  // The new certificate chains to the new root, which the old bundle did not have.
  const newRoot = new X509Certificate(realCa.citadel.trustBundlePem()[0]!);
  assert.ok(new X509Certificate(next.certChainPem).verify(newRoot.publicKey));
  m.stop();
  await realCa.close();
});
