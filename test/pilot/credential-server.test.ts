// Gateway credentials by name (credentialName) over Envoy's SDS StreamSecrets
// on the control plane's CA port, as `mesh control-plane` registers them: a
// real control plane in-process on 127.0.0.1, workload certificates obtained
// from its Citadel the way the agent gets them (bootstrap token + CSR), and a
// real gRPC SDS client. Every refusal is shown with its gRPC status and
// message; then what a router of istio-system is served, and what it is not.

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { CaClient, createWorkloadKey, SDS_SERVICE } from '../../src/agent/index.ts';
import type { Citadel } from '../../src/citadel/index.ts';
import { silentLogger } from '../../src/common/index.ts';
import { CredentialServer, DEFAULT_CREDENTIAL_LIMITS } from '../../src/pilot/index.ts';
import { ControlPlane } from '../../src/runtime/index.ts';
import { loadXdsProtos, TypeUrl, unpackMessage } from '../../src/xds/index.ts';
import type { DiscoveryRequest, DiscoveryResponse } from '../../src/xds/index.ts';
import { startCitadel } from '../citadel/helpers.ts';
import type { RunningCitadel } from '../citadel/helpers.ts';
import { tempDir } from '../helpers/processes.ts';
import { Queue } from '../helpers/queue.ts';
import { createCa, issueCertificate } from '../helpers/test-pki.ts';
import type { Pem, TestCa } from '../helpers/test-pki.ts';

const NS = 'istio-system';
const TRUST_DOMAIN = 'cluster.local';
const ROUTER = `router~10.1.0.5~istio-ingressgateway-7f9d.${NS}~${NS}.svc.cluster.local`;
const SIDECAR = `sidecar~10.1.0.6~httpbin-v1-5c8f.${NS}~${NS}.svc.cluster.local`;
const ROUTER_IN_DEFAULT = 'router~10.1.0.7~my-gateway-1.default~default.svc.cluster.local';

interface WorkloadCredential {
  readonly certChainPem: string;
  readonly privateKeyPem: string;
}

/** How a stream ended: the status the client saw. */
interface Outcome {
  readonly code: grpc.status;
  readonly details: string;
}

/** A served secret, decoded back to PEM. */
interface Served {
  readonly cert?: string;
  readonly key?: string;
  readonly ca?: string;
}

type StreamCall = grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;

function sdsClient(address: string, rootsPem: string, credential?: WorkloadCredential): grpc.Client {
  const Client = loadXdsProtos().service(SDS_SERVICE);
  const creds = credential
    ? grpc.credentials.createSsl(Buffer.from(rootsPem), Buffer.from(credential.privateKeyPem), Buffer.from(credential.certChainPem))
    : grpc.credentials.createSsl(Buffer.from(rootsPem));
  return new Client(address, creds, { 'grpc.ssl_target_name_override': 'istiod.istio-system.svc', 'grpc.default_authority': 'istiod.istio-system.svc', 'grpc.use_local_subchannel_pool': 1 });
}

/** One StreamSecrets stream from a real grpc-js client over TLS, with its own channel. */
class SdsStream {
  readonly responses = new Queue<DiscoveryResponse>();
  readonly ended: Promise<Outcome>;
  private readonly client: grpc.Client;
  private readonly call: StreamCall;

  /** `client`: a channel to share (many streams over one connection); its own otherwise. */
  constructor(address: string, rootsPem: string, credential?: WorkloadCredential, client?: grpc.Client) {
    this.client = client ?? sdsClient(address, rootsPem, credential);
    this.call = (this.client as unknown as { StreamSecrets(): StreamCall }).StreamSecrets();
    this.ended = new Promise((resolve) => {
      this.call.on('error', (e: grpc.ServiceError) => resolve({ code: e.code, details: e.details }));
      this.call.on('status', (s: grpc.StatusObject) => resolve({ code: s.code, details: s.details }));
    });
    this.call.on('data', (r: DiscoveryResponse) => this.responses.push(r));
  }

  send(names: readonly string[], options: { node?: string; nonce?: string; version?: string } = {}): void {
    this.call.write({ type_url: TypeUrl.Secret, resource_names: [...names], version_info: options.version ?? '', response_nonce: options.nonce ?? '', ...(options.node ? { node: { id: options.node } } : {}) });
  }

  /** The next response, its secrets decoded by name. */
  async next(timeoutMs = 5000): Promise<{ response: DiscoveryResponse; secrets: Map<string, Served> }> {
    const response = await this.responses.take(timeoutMs);
    const secrets = new Map<string, Served>();
    for (const any of response.resources) {
      assert.equal(any.type_url, TypeUrl.Secret);
      const s = unpackMessage<{ name: string; tls_certificate?: { certificate_chain?: { inline_bytes?: Buffer }; private_key?: { inline_bytes?: Buffer } }; validation_context?: { trusted_ca?: { inline_bytes?: Buffer } } }>(any);
      secrets.set(s.name, {
        cert: s.tls_certificate?.certificate_chain?.inline_bytes?.toString(),
        key: s.tls_certificate?.private_key?.inline_bytes?.toString(),
        ca: s.validation_context?.trusted_ca?.inline_bytes?.toString(),
      });
    }
    return { response, secrets };
  }

  /** The status the server ended the stream with; fails if it stays open. */
  outcome(timeoutMs = 5000): Promise<Outcome> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the stream was not ended within ${timeoutMs} ms`)), timeoutMs);
    });
    return Promise.race([this.ended, timeout]).finally(() => clearTimeout(timer));
  }

  /** Cancels the stream, leaving a shared channel open. */
  cancel(): void {
    this.call.cancel();
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

/** A workload certificate the way the agent gets one: a key and CSR made here, the bootstrap token, Citadel's CSR service over TLS. */
async function workloadCertificate(citadel: Citadel, address: string, namespace: string, serviceAccount: string): Promise<WorkloadCredential> {
  const key = await createWorkloadKey(`spiffe://${citadel.trustDomain}/ns/${namespace}/sa/${serviceAccount}`);
  const token = await citadel.issueBootstrapToken(namespace, serviceAccount);
  const ca = new CaClient({ address, rootCertsPem: citadel.trustBundlePem().join('') });
  try {
    const chain = await ca.createCertificate(key.csrPem, 3600, { kind: 'token', token });
    return { certChainPem: chain.join(''), privateKeyPem: key.privateKeyPem };
  } finally {
    ca.close();
  }
}

function tlsSecret(name: string, namespace: string, pair: Pem, caPem?: string): object {
  const data: Record<string, string> = { 'tls.crt': Buffer.from(pair.certPem).toString('base64'), 'tls.key': Buffer.from(pair.keyPem).toString('base64') };
  if (caPem !== undefined) data['ca.crt'] = Buffer.from(caPem).toString('base64');
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, type: 'kubernetes.io/tls', data };
}

function caSecret(name: string, namespace: string, caPem: string): object {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, type: 'Opaque', data: { cacert: Buffer.from(caPem).toString('base64') } };
}

describe('gateway credential server (SDS StreamSecrets on the CA port)', { timeout: 120_000 }, () => {
  const dataDir = tempDir('credential-server-');
  const warnings: string[] = [];
  let cp: ControlPlane;
  let caAddress: string;
  let roots: string;
  let sameRootOtherDomain: RunningCitadel;
  let otherCa: RunningCitadel;
  let gateway: WorkloadCredential;
  let pki: TestCa;
  const streams: SdsStream[] = [];
  const open = (credential?: WorkloadCredential, address = caAddress): SdsStream => {
    const s = new SdsStream(address, roots, credential);
    streams.push(s);
    return s;
  };
  const apply = async (...objects: object[]): Promise<void> => {
    const res = await fetch(`http://127.0.0.1:${cp.ports.api}/apply`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ objects }) });
    const body = (await res.json()) as { applied?: unknown[] };
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.applied?.length, objects.length, JSON.stringify(body));
    // The write is in the store; wait for the (debounced) snapshot that carries it, which is what the server reads.
    const revision = cp.store.revision();
    const ready = (): boolean => (cp.distributor.current()?.revision ?? -1) >= revision;
    let resolve!: () => void;
    const carried = new Promise<void>((r) => (resolve = r));
    const unsubscribe = cp.distributor.subscribe(() => {
      if (ready()) resolve();
    });
    if (ready()) resolve();
    await carried;
    unsubscribe();
  };

  before(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        warnings.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    cp = await ControlPlane.start({ dataDir, listenAddress: '127.0.0.1', apiPort: 0, monitoringPort: 0, galleyPort: 0, xdsPort: 0, mixerPort: 0, caPort: 0, debounceMs: 10, log: pino({ level: 'warn' }, sink) });
    caAddress = `127.0.0.1:${cp.ports.ca}`;
    roots = cp.citadel.trustBundlePem().join('');
    // The mesh's own root key (the self-signed CA in the data dir) under another trust domain: certificates that pass the handshake.
    sameRootOtherDomain = await startCitadel({ dataDir, trustDomain: 'other.example', log: silentLogger() });
    // Another CA altogether, same trust domain name.
    otherCa = await startCitadel({ trustDomain: TRUST_DOMAIN, log: silentLogger() });
    gateway = await workloadCertificate(cp.citadel, caAddress, NS, 'istio-ingressgateway-service-account');
    pki = await createCa('example.com');
  });

  after(async () => {
    for (const s of streams) s.close();
    await sameRootOtherDomain?.close();
    await otherCa?.close();
    await cp?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  describe('refusals', () => {
    const authCases: Array<{ name: string; credential: () => Promise<WorkloadCredential | undefined> }> = [
      { name: 'no client certificate', credential: async () => undefined },
      { name: 'a certificate from another CA', credential: () => workloadCertificate(otherCa.citadel, otherCa.address, NS, 'istio-ingressgateway-service-account') },
      { name: 'a certificate of the mesh root whose SPIFFE ID is in another trust domain', credential: () => workloadCertificate(sameRootOtherDomain.citadel, sameRootOtherDomain.address, NS, 'istio-ingressgateway-service-account') },
    ];
    for (const c of authCases) {
      it(`UNAUTHENTICATED: ${c.name}`, async () => {
        const credential = await c.credential();
        if (c.name.includes('another trust domain')) {
          // The premise: this certificate verifies against the mesh roots, so only the trust domain check can refuse it.
          assert.match(credential!.certChainPem, /BEGIN CERTIFICATE/);
          assert.equal(sameRootOtherDomain.citadel.trustBundlePem().join(''), roots, 'the same root as the control plane');
        }
        const s = open(credential);
        s.send(['gw-cred'], { node: ROUTER });
        const outcome = await s.outcome();
        assert.equal(grpc.status[outcome.code], 'UNAUTHENTICATED');
        assert.equal(outcome.details, `connect with a workload certificate of trust domain ${TRUST_DOMAIN} (mTLS): credentials are served to verified identities only`);
        assert.equal(s.responses.size, 0, 'nothing was served');
      });
    }

    const requestCases: Array<{ name: string; credential: () => Promise<WorkloadCredential>; node: string; names: () => string[]; code: keyof typeof grpc.status; details: RegExp }> = [
      {
        name: 'a sidecar node',
        credential: async () => gateway,
        node: SIDECAR,
        names: () => ['gw-cred'],
        code: 'PERMISSION_DENIED',
        details: /^node sidecar~10\.1\.0\.6~httpbin-v1-5c8f\.istio-system~istio-system\.svc\.cluster\.local is a sidecar: credentials by name are served to gateways \(router\) only$/,
      },
      {
        name: 'a router node in a namespace other than its certificate',
        credential: async () => gateway,
        node: ROUTER_IN_DEFAULT,
        names: () => ['gw-cred'],
        code: 'PERMISSION_DENIED',
        details: /^node router~.*my-gateway-1\.default.* claims namespace default but its certificate is spiffe:\/\/cluster\.local\/ns\/istio-system\/sa\/istio-ingressgateway-service-account$/,
      },
      {
        name: 'a certificate of default claiming a router of istio-system',
        credential: () => workloadCertificate(cp.citadel, caAddress, 'default', 'istio-ingressgateway-service-account'),
        node: ROUTER,
        names: () => ['gw-cred'],
        code: 'PERMISSION_DENIED',
        details: /claims namespace istio-system but its certificate is spiffe:\/\/cluster\.local\/ns\/default\//,
      },
      {
        name: 'a first request without a node',
        credential: async () => gateway,
        node: '',
        names: () => ['gw-cred'],
        code: 'INVALID_ARGUMENT',
        details: /^the first request must carry the node/,
      },
      {
        name: 'a name of 301 characters',
        credential: async () => gateway,
        node: ROUTER,
        names: () => ['ok', 'n'.repeat(301)],
        code: 'INVALID_ARGUMENT',
        details: /^a credential name of 301 characters \(at most 300\)$/,
      },
      {
        name: '257 names in one request',
        credential: async () => gateway,
        node: ROUTER,
        names: () => Array.from({ length: 257 }, (_, i) => `cred-${i}`),
        code: 'RESOURCE_EXHAUSTED',
        details: /^257 credential names in one request \(at most 256\)$/,
      },
    ];
    for (const c of requestCases) {
      it(`${c.code}: ${c.name}`, async () => {
        const s = open(await c.credential());
        s.send(c.names(), { node: c.node || undefined });
        const outcome = await s.outcome();
        assert.equal(grpc.status[outcome.code], c.code, outcome.details);
        assert.match(outcome.details, c.details);
        assert.equal(s.responses.size, 0, 'nothing was served');
      });
    }

    it('the limits themselves are accepted: a name of 300 characters, 256 names', async () => {
      const s = open(gateway);
      s.send(['n'.repeat(300)], { node: ROUTER });
      const first = await s.next();
      assert.equal(first.secrets.size, 0, 'no such Secret');
      s.send(Array.from({ length: 256 }, (_, i) => `cred-${i}`), { nonce: first.response.nonce, version: first.response.version_info });
      const second = await s.next();
      assert.equal(second.secrets.size, 0);
      assert.equal(second.response.nonce, String(Number(first.response.nonce) + 1));
      s.close();
    });

    it('a later request over a limit ends an accepted stream too', async () => {
      const s = open(gateway);
      s.send(['gw-cred'], { node: ROUTER });
      const first = await s.next();
      s.send(['gw-cred', 'x'.repeat(301)], { nonce: first.response.nonce });
      const outcome = await s.outcome();
      assert.equal(grpc.status[outcome.code], 'INVALID_ARGUMENT');
      assert.equal(outcome.details, 'a credential name of 301 characters (at most 300)');
    });

    it('the default limits are 1024 streams, 256 names, 300 characters', () => {
      assert.deepEqual(DEFAULT_CREDENTIAL_LIMITS, { maxStreams: 1024, maxNames: 256, maxNameLength: 300 });
    });

    it('RESOURCE_EXHAUSTED for stream 1025 with the default limits', async () => {
      // A server as the control plane registers it (no limits given), alone, so every open stream is one of these.
      const unlimited = new CredentialServer({ snapshots: cp.distributor, trustDomain: TRUST_DOMAIN, log: silentLogger() });
      const server = new grpc.Server();
      unlimited.register(server);
      const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', cp.citadel.serverCredentials(), (err, p) => (err ? reject(err) : resolve(p))));
      const address = `127.0.0.1:${port}`;
      const channel = sdsClient(address, roots, gateway);
      const many: SdsStream[] = [];
      try {
        for (let i = 0; i < DEFAULT_CREDENTIAL_LIMITS.maxStreams; i++) {
          const s = new SdsStream(address, roots, gateway, channel);
          many.push(s);
          s.send(['gw-cred'], { node: ROUTER });
        }
        // Every one is served, so every one is counted.
        await Promise.all(many.map((s) => s.next(20_000)));
        const extra = new SdsStream(address, roots, gateway, channel);
        many.push(extra);
        extra.send(['gw-cred'], { node: ROUTER });
        const outcome = await extra.outcome();
        assert.equal(grpc.status[outcome.code], 'RESOURCE_EXHAUSTED');
        assert.equal(outcome.details, 'too many credential streams (at most 1024)');
      } finally {
        for (const s of many) s.cancel();
        channel.close();
        unlimited.close();
        server.forceShutdown();
      }
    });

    it('RESOURCE_EXHAUSTED past the stream limit (configured to 2 on the CA port credentials); refused and closed streams free their slot', async () => {
      // The same registration as the control plane's, on a second server with Citadel's server credentials, with a small limit.
      const limited = new CredentialServer({ snapshots: cp.distributor, trustDomain: TRUST_DOMAIN, log: silentLogger(), limits: { maxStreams: 2 } });
      const server = new grpc.Server();
      limited.register(server);
      const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', cp.citadel.serverCredentials(), (err, p) => (err ? reject(err) : resolve(p))));
      const address = `127.0.0.1:${port}`;
      try {
        const served = async (): Promise<SdsStream> => {
          const s = open(gateway, address);
          s.send(['gw-cred'], { node: ROUTER });
          await s.next();
          return s;
        };
        const a = await served();
        // Refused streams (here a sidecar) take no slot once refused.
        for (let i = 0; i < 3; i++) {
          const refused = open(gateway, address);
          refused.send(['gw-cred'], { node: SIDECAR });
          assert.equal(grpc.status[(await refused.outcome()).code], 'PERMISSION_DENIED');
        }
        const b = await served();
        const third = open(gateway, address);
        third.send(['gw-cred'], { node: ROUTER });
        const outcome = await third.outcome();
        assert.equal(grpc.status[outcome.code], 'RESOURCE_EXHAUSTED');
        assert.equal(outcome.details, 'too many credential streams (at most 2)');
        // The first two keep being served.
        assert.equal(a.responses.size, 0);
        assert.equal(b.responses.size, 0);
        // A closed stream frees its slot (the server learns of the cancel asynchronously: retry until accepted).
        a.close();
        const deadline = Date.now() + 10_000;
        for (;;) {
          const s = open(gateway, address);
          s.send(['gw-cred'], { node: ROUTER });
          const got = await Promise.race([s.next().then(() => 'served' as const), s.outcome().then((o) => o)]);
          if (got === 'served') break;
          assert.equal(grpc.status[got.code], 'RESOURCE_EXHAUSTED');
          assert.ok(Date.now() < deadline, 'a slot is freed after a stream closed');
        }
      } finally {
        limited.close();
        server.forceShutdown();
      }
    });
  });

  describe('serving a router of istio-system', () => {
    it('serves NAME and NAME-cacert from one kubernetes.io/tls Secret with ca.crt (and the kubernetes:// form)', async () => {
      const pair = await issueCertificate(pki, 'httpbin.example.com', { dnsNames: ['httpbin.example.com'] });
      await apply(tlsSecret('gw-cred', NS, pair, pki.certPem));
      const s = open(gateway);
      s.send(['gw-cred', 'gw-cred-cacert', 'kubernetes://gw-cred'], { node: ROUTER });
      const { response, secrets } = await s.next();
      assert.equal(response.type_url, TypeUrl.Secret);
      assert.deepEqual([...secrets.keys()].sort(), ['gw-cred', 'gw-cred-cacert', 'kubernetes://gw-cred']);
      assert.deepEqual(secrets.get('gw-cred'), { cert: pair.certPem, key: pair.keyPem, ca: undefined });
      assert.deepEqual(secrets.get('kubernetes://gw-cred'), secrets.get('gw-cred'));
      assert.deepEqual(secrets.get('gw-cred-cacert'), { cert: undefined, key: undefined, ca: pki.certPem });
      s.close();
    });

    it('serves NAME-cacert from a Secret NAME-cacert, which wins over ca.crt of NAME', async () => {
      const clientCa = await createCa('clients.example.com');
      const pair = await issueCertificate(pki, 'mtls.example.com', { dnsNames: ['mtls.example.com'] });
      await apply(tlsSecret('mtls-cred', NS, pair), tlsSecret('both-cred', NS, pair, pki.certPem), caSecret('mtls-cred-cacert', NS, clientCa.certPem), caSecret('both-cred-cacert', NS, clientCa.certPem));
      const s = open(gateway);
      s.send(['mtls-cred', 'mtls-cred-cacert', 'both-cred-cacert'], { node: ROUTER });
      const { secrets } = await s.next();
      assert.deepEqual([...secrets.keys()].sort(), ['both-cred-cacert', 'mtls-cred', 'mtls-cred-cacert']);
      assert.equal(secrets.get('mtls-cred')?.cert, pair.certPem);
      assert.equal(secrets.get('mtls-cred-cacert')?.ca, clientCa.certPem);
      assert.equal(secrets.get('both-cred-cacert')?.ca, clientCa.certPem, 'Secret NAME-cacert before ca.crt of NAME');
      s.close();
    });

    it('does not serve a Secret of another namespace; the one of its own namespace is pushed when created', async () => {
      const elsewhere = await issueCertificate(pki, 'elsewhere.example.com', { dnsNames: ['elsewhere.example.com'] });
      await apply(tlsSecret('elsewhere-cred', 'default', elsewhere, pki.certPem));
      const s = open(gateway);
      s.send(['elsewhere-cred', 'elsewhere-cred-cacert'], { node: ROUTER });
      const first = await s.next();
      assert.equal(first.secrets.size, 0, 'default/elsewhere-cred is not served to a gateway of istio-system');
      s.send(['elsewhere-cred', 'elsewhere-cred-cacert'], { nonce: first.response.nonce, version: first.response.version_info });
      // A change to the other namespace's Secret pushes nothing; the next response is for the Secret created in istio-system.
      const rotated = await issueCertificate(pki, 'elsewhere.example.com', { dnsNames: ['elsewhere.example.com'] });
      await apply(tlsSecret('elsewhere-cred', 'default', rotated, pki.certPem));
      const own = await issueCertificate(pki, 'own.example.com', { dnsNames: ['own.example.com'] });
      await apply(tlsSecret('elsewhere-cred', NS, own));
      const next = await s.next();
      assert.equal(next.response.nonce, String(Number(first.response.nonce) + 1), 'no push in between');
      assert.deepEqual([...next.secrets.keys()], ['elsewhere-cred']);
      assert.equal(next.secrets.get('elsewhere-cred')?.cert, own.certPem);
      s.close();
    });

    it('pushes an updated Secret on the open stream; an ACK gets no answer', async () => {
      const v1 = await issueCertificate(pki, 'rotate.example.com', { dnsNames: ['rotate.example.com'] });
      await apply(tlsSecret('rotate-cred', NS, v1, pki.certPem));
      const s = open(gateway);
      s.send(['rotate-cred', 'rotate-cred-cacert'], { node: ROUTER });
      const first = await s.next();
      assert.equal(first.secrets.get('rotate-cred')?.cert, v1.certPem);
      s.send(['rotate-cred', 'rotate-cred-cacert'], { nonce: first.response.nonce, version: first.response.version_info });
      const ca2 = await createCa('rotated.example.com');
      const v2 = await issueCertificate(ca2, 'rotate.example.com', { dnsNames: ['rotate.example.com'] });
      await apply(tlsSecret('rotate-cred', NS, v2, ca2.certPem));
      const pushed = await s.next();
      assert.equal(pushed.response.nonce, String(Number(first.response.nonce) + 1), 'the ACK was not answered');
      assert.notEqual(pushed.response.version_info, first.response.version_info);
      assert.deepEqual(pushed.secrets.get('rotate-cred'), { cert: v2.certPem, key: v2.keyPem, ca: undefined });
      assert.equal(pushed.secrets.get('rotate-cred-cacert')?.ca, ca2.certPem);
      s.close();
    });

    it('a missing Secret gives no resource and a warning naming the Gateway; a later-created one is pushed', async () => {
      await apply({
        apiVersion: 'networking.istio.io/v1',
        kind: 'Gateway',
        metadata: { name: 'later-gateway', namespace: NS },
        spec: { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 443, name: 'https', protocol: 'HTTPS' }, hosts: ['later.example.com'], tls: { mode: 'SIMPLE', credentialName: 'later-cred' } }] },
      });
      const s = open(gateway);
      s.send(['later-cred'], { node: ROUTER });
      const first = await s.next();
      assert.equal(first.response.resources.length, 0);
      assert.equal(first.response.type_url, TypeUrl.Secret);
      const warning = warnings.map((l) => JSON.parse(l) as { msg: string; gateways?: string[] }).find((l) => l.msg.startsWith('credentialName "later-cred"'));
      assert.ok(warning, warnings.join('\n'));
      assert.deepEqual(warning.gateways, [`${NS}/later-gateway`]);
      assert.match(warning.msg, /no usable Secret istio-system\/later-cred key pair in the gateway's namespace/);
      s.send(['later-cred'], { nonce: first.response.nonce, version: first.response.version_info });
      const pair = await issueCertificate(pki, 'later.example.com', { dnsNames: ['later.example.com'] });
      await apply(tlsSecret('later-cred', NS, pair));
      const pushed = await s.next();
      assert.deepEqual(pushed.secrets.get('later-cred'), { cert: pair.certPem, key: pair.keyPem, ca: undefined });
      s.close();
    });
  });
});
