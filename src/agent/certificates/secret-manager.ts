// The workload's certificate over time: makes a key and CSR, gets the chain
// from the CA (bootstrap token first, then the current certificate over
// mTLS), checks it, keeps it, and replaces it at a fixed fraction of its
// lifetime (80 % by default) with a new key. Failed attempts retry with
// backoff while the current certificate keeps serving. Listeners (the SDS
// server) hear about every new secret.

import * as x509 from '../../common/x509.ts';
import type { Logger } from '../../common/index.ts';
import { createLogger } from '../../common/index.ts';
import type { CaClient, CaCredential } from './ca-client.ts';
import type { AgentClock } from './clock.ts';
import { systemAgentClock } from './clock.ts';
import { AgentError, AgentErrorCode } from './errors.ts';
import type { WorkloadKeyType } from './workload-key.ts';
import { createWorkloadKey } from './workload-key.ts';

/** What the proxy needs for mTLS: Envoy's `default` and `ROOTCA` secrets. Immutable. */
export interface WorkloadSecret {
  /** Increases with every new certificate or trust bundle. */
  readonly version: number;
  readonly spiffeId: string;
  /** Leaf and intermediates, PEM. */
  readonly certChainPem: string;
  readonly privateKeyPem: string;
  /** Every root to trust, PEM. */
  readonly rootCertPem: string;
  readonly notBefore: number;
  readonly notAfter: number;
  /** When the manager will replace it. */
  readonly rotateAt: number;
}

export interface SecretManagerOptions {
  readonly spiffeId: string;
  readonly caClient: CaClient;
  /** The bootstrap credential for the first CSR (and whenever the current certificate has expired). */
  readonly bootstrapToken: () => string | Promise<string>;
  /** Requested lifetime in seconds; 0 lets the CA choose (24 h in Citadel). */
  readonly ttlSeconds?: number;
  /** Fraction of a certificate's lifetime after which it is replaced (default 0.8). */
  readonly rotationRatio?: number;
  readonly keyType?: WorkloadKeyType;
  /** Backoff bounds for failed CSRs (default 1 s doubling to 60 s). */
  readonly retryInitialMs?: number;
  readonly retryMaxMs?: number;
  readonly clock?: AgentClock;
  readonly log?: Logger;
}

export class SecretManager {
  private readonly options: SecretManagerOptions;
  private readonly clock: AgentClock;
  private readonly log: Logger;
  private secret: WorkloadSecret | undefined;
  private timer: unknown;
  private retryMs: number;
  private stopped = false;
  private inflight: Promise<WorkloadSecret> | undefined;
  private readonly listeners = new Set<(secret: WorkloadSecret) => void>();

  constructor(options: SecretManagerOptions) {
    const ratio = options.rotationRatio ?? 0.8;
    if (!(ratio > 0 && ratio < 1)) throw new AgentError(AgentErrorCode.CONFIG, `rotationRatio ${ratio} must be between 0 and 1`);
    this.options = options;
    this.clock = options.clock ?? systemAgentClock;
    this.log = options.log ?? createLogger('agent.certificates');
    this.retryMs = options.retryInitialMs ?? 1000;
  }

  /** Gets the first certificate; rejects if the CA refuses it (the caller decides whether to retry). */
  async start(): Promise<WorkloadSecret> {
    this.stopped = false;
    return this.rotate();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  current(): WorkloadSecret | undefined {
    return this.secret;
  }

  /** Called with every new secret; returns an unsubscribe function. */
  subscribe(listener: (secret: WorkloadSecret) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Replaces the certificate now (new key, new CSR); concurrent calls share one request. */
  rotate(): Promise<WorkloadSecret> {
    this.inflight ??= this.renew();
    return this.inflight;
  }

  private async renew(): Promise<WorkloadSecret> {
    let secret: WorkloadSecret;
    try {
      const { spiffeId, caClient } = this.options;
      const key = await createWorkloadKey(spiffeId, this.options.keyType);
      const chain = await caClient.createCertificate(key.csrPem, this.options.ttlSeconds ?? 0, await this.credential());
      secret = await this.accept(chain, key.spki, key.privateKeyPem);
    } finally {
      // Cleared before listeners run: one of them may advance a clock that fires the next rotation.
      this.inflight = undefined;
    }
    if (!this.stopped) this.install(secret);
    return secret;
  }

  private install(secret: WorkloadSecret): void {
    this.secret = secret;
    this.options.caClient.updateRoots(secret.rootCertPem);
    this.retryMs = this.options.retryInitialMs ?? 1000;
    this.schedule(secret.rotateAt - this.clock.now());
    this.log.info({ spiffeId: secret.spiffeId, version: secret.version, notAfter: new Date(secret.notAfter).toISOString(), rotateAt: new Date(secret.rotateAt).toISOString() }, 'workload certificate issued');
    for (const listener of this.listeners) listener(secret);
  }

  /** The current certificate while it is valid (mTLS renewal), else the bootstrap token. */
  private async credential(): Promise<CaCredential> {
    const s = this.secret;
    if (s && s.notAfter > this.clock.now()) return { kind: 'certificate', certChainPem: s.certChainPem, privateKeyPem: s.privateKeyPem };
    return { kind: 'token', token: await this.options.bootstrapToken() };
  }

  /** Checks the CA's answer: our key, our identity, a chain that leads to one of the roots. */
  private async accept(chain: readonly string[], spki: Buffer, privateKeyPem: string): Promise<WorkloadSecret> {
    const invalid = (why: string): AgentError => new AgentError(AgentErrorCode.INVALID_CHAIN, `the CA's certificate chain ${why}`);
    if (chain.length < 2) throw invalid(`has ${chain.length} element(s); expected the leaf and the root bundle`);
    let certs: x509.X509Certificate[];
    let roots: x509.X509Certificate[];
    try {
      certs = chain.slice(0, -1).map((pem) => new x509.X509Certificate(pem));
      roots = (chain[chain.length - 1]!.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((pem) => new x509.X509Certificate(pem));
    } catch (err) {
      throw invalid(`is not PEM certificates (${(err as Error).message})`);
    }
    const leaf = certs[0]!;
    if (roots.length === 0) throw invalid('ends without a root certificate');
    if (!Buffer.from(leaf.publicKey.rawData).equals(spki)) throw invalid('is for another key than the CSR\'s');
    const san = leaf.getExtension(x509.SubjectAlternativeNameExtension);
    const uris = (san?.names.items ?? []).filter((n) => n.type === 'url').map((n) => n.value);
    if (uris.length !== 1 || uris[0] !== this.options.spiffeId) throw invalid(`names ${uris.join(', ') || 'no URI'} instead of ${this.options.spiffeId}`);
    const top = certs[certs.length - 1]!;
    let anchored = false;
    for (const root of roots) {
      const same = Buffer.from(root.rawData).equals(Buffer.from(top.rawData));
      if (same || (root.subject === top.issuer && (await top.verify({ publicKey: root.publicKey, signatureOnly: true }).catch(() => false)))) anchored = true;
    }
    for (let i = 0; i + 1 < certs.length; i++) {
      if (!(await certs[i]!.verify({ publicKey: certs[i + 1]!.publicKey, signatureOnly: true }).catch(() => false))) anchored = false;
    }
    if (!anchored) throw invalid('does not lead to a root it carries');
    const notBefore = leaf.notBefore.getTime();
    const notAfter = leaf.notAfter.getTime();
    const ratio = this.options.rotationRatio ?? 0.8;
    const issuedAt = Math.min(Math.max(notBefore, this.clock.now()), notAfter);
    return {
      version: (this.secret?.version ?? 0) + 1,
      spiffeId: this.options.spiffeId,
      certChainPem: certs.map((c) => c.toString('pem')).join('\n') + '\n',
      privateKeyPem,
      rootCertPem: roots.map((r) => r.toString('pem')).join('\n') + '\n',
      notBefore,
      notAfter,
      // From when the cert was issued, not its backdated notBefore: with a
      // TTL shorter than the CA's clock-skew backdating the rotation point would
      // already be past, and the agent would renew in a loop.
      rotateAt: issuedAt + Math.floor((notAfter - issuedAt) * ratio),
    };
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.rotate().catch((err: unknown) => {
        const wait = this.retryMs;
        this.retryMs = Math.min(this.retryMs * 2, this.options.retryMaxMs ?? 60_000);
        this.log.warn({ err: (err as Error).message, retryInMs: wait }, 'certificate renewal failed; the current certificate keeps serving');
        this.schedule(wait);
      });
    }, Math.max(0, delayMs));
  }
}
