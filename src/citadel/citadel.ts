// Citadel as a control-plane module: loads or creates the CA, serves
// IstioCertificateService on a TLS port with its own serving certificate
// (renewed before it ends), issues bootstrap tokens for workloads the runtime
// starts, and rotates a self-signed root keeping the old one trusted.

import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../common/index.ts';
import { createLogger } from '../common/index.ts';
import { Registry } from '../common/metrics.ts';
import type { BootstrapTokenKey } from './bootstrap-token.ts';
import { issueBootstrapToken } from './bootstrap-token.ts';
import type { CaMaterial } from './ca-material.ts';
import { loadOrCreateSelfSignedCa, loadPluggedInCa, rotateSelfSignedRoot } from './ca-material.ts';
import type { CitadelServerMetrics } from './ca-server.ts';
import { CaService, CitadelServerCredentials, createCitadelServerMetrics } from './ca-server.ts';
import { CertificateAuthority } from './certificate-authority.ts';
import type { CitadelClock } from './clock.ts';
import { systemCitadelClock } from './clock.ts';
import { CitadelError, CitadelErrorCode } from './errors.ts';
import type { KeyAlgorithmName } from './keys.ts';
import { generateKeyPair, privateKeyToPem } from './keys.ts';
import { SigningPool } from './signing-pool.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export interface CitadelOptions {
  /** The control plane's data dir; a self-signed root lives in `<dataDir>/citadel/`. */
  readonly dataDir: string;
  /** A plugged-in CA in Istio's cacerts layout (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem); replaces the self-signed root. */
  readonly caCertsDir?: string;
  /** MeshConfig.trustDomain. */
  readonly trustDomain: string;
  /** Key type of a generated root (default ECDSA P-256). */
  readonly keyAlgorithm?: KeyAlgorithmName;
  /** Workload certificate lifetime when the CSR asks for none (default 24 h). */
  readonly workloadCertTtlMs?: number;
  /** Longest lifetime a workload may ask for (default 90 days). */
  readonly maxWorkloadCertTtlMs?: number;
  /** notBefore backdating for clock skew (default 2 min). */
  readonly backdateMs?: number;
  /** Lifetime of a generated root (default 10 years). */
  readonly rootCertTtlMs?: number;
  /** Replace a self-signed root with less than this fraction of its life left, on start (default 0.2). */
  readonly rootRotationGraceRatio?: number;
  /** Names the serving certificate of the CA port carries (default istiod.istio-system.svc, istiod, localhost). */
  readonly servingDnsNames?: readonly string[];
  readonly servingIps?: readonly string[];
  /**
   * Worker threads that sign CSRs; 0 signs on the main thread. Default: one
   * per core beyond the first (which serves gRPC and TLS), at most 4; none on
   * two cores or fewer, where moving the work costs more than it frees.
   */
  readonly signingWorkers?: number;
  /** Default lifetime of bootstrap tokens (default 1 h). */
  readonly bootstrapTokenTtlMs?: number;
  readonly clock?: CitadelClock;
  readonly log?: Logger;
  readonly metrics?: Registry;
}

export class Citadel {
  readonly trustDomain: string;
  private readonly options: CitadelOptions;
  private readonly clock: CitadelClock;
  private readonly log: Logger;
  private readonly metrics: CitadelServerMetrics;
  private authority: CertificateAuthority | undefined;
  private service: CaService | undefined;
  private credentials: CitadelServerCredentials | undefined;
  private pool: SigningPool | undefined;
  private servingTimer: unknown;
  private previousTokenKeys: BootstrapTokenKey[] = [];
  private readonly bundleListeners = new Set<(rootsPem: readonly string[]) => void>();

  constructor(options: CitadelOptions) {
    this.options = options;
    this.trustDomain = options.trustDomain;
    this.clock = options.clock ?? systemCitadelClock;
    this.log = options.log ?? createLogger('citadel');
    this.metrics = createCitadelServerMetrics(options.metrics ?? new Registry());
  }

  /** Loads (or creates) the CA and issues the serving certificate of the CA port. */
  async start(): Promise<void> {
    const material = this.options.caCertsDir
      ? await loadPluggedInCa(this.options.caCertsDir, this.clock.now())
      : await loadOrCreateSelfSignedCa(this.selfSignedOptions());
    this.authority = new CertificateAuthority(material, {
      trustDomain: this.trustDomain,
      clock: this.clock,
      defaultTtlMs: this.options.workloadCertTtlMs ?? DAY,
      maxTtlMs: this.options.maxWorkloadCertTtlMs ?? 90 * DAY,
      backdateMs: this.options.backdateMs ?? 2 * 60_000,
    });
    const workers = this.options.signingWorkers ?? (availableParallelism() > 2 ? Math.min(4, availableParallelism() - 1) : 0);
    if (workers > 0) {
      this.pool = new SigningPool(workers, this.authority.options);
      await this.pool.setMaterial(material);
    }
    this.service = new CaService({ ca: this.authority, signer: this.pool, clock: this.clock, metrics: this.metrics, log: this.log, tokenKeys: () => this.tokenKeys() });
    this.credentials = new CitadelServerCredentials(await this.servingContext());
    this.observeMaterial(material);
    this.log.info({ source: material.source, algorithm: material.algorithm, roots: material.roots.length, signer: material.signingCert.subject, notAfter: material.signingCert.notAfter.toISOString() }, 'citadel CA ready');
  }

  async stop(): Promise<void> {
    if (this.servingTimer !== undefined) this.clock.clearTimeout(this.servingTimer);
    this.servingTimer = undefined;
    await this.pool?.close();
    this.pool = undefined;
  }

  /** Adds istio.v1.auth.IstioCertificateService to a server bound with `serverCredentials()`. */
  register(server: grpc.Server): void {
    this.requireStarted().service.register(server);
  }

  /** TLS for the CA port: the serving certificate, and client certificates requested but not required. */
  serverCredentials(): grpc.ServerCredentials {
    return this.requireStarted().credentials;
  }

  get ca(): CertificateAuthority {
    return this.requireStarted().authority;
  }

  /** The roots agents should trust (PEM, the signing root first). */
  trustBundlePem(): string[] {
    return this.ca.trustBundlePem();
  }

  /** Called with the new trust bundle after a root rotation. */
  onTrustBundleChange(listener: (rootsPem: readonly string[]) => void): () => void {
    this.bundleListeners.add(listener);
    return () => this.bundleListeners.delete(listener);
  }

  /** The credential the runtime hands a workload it starts: a token for `spiffe://<td>/ns/<namespace>/sa/<serviceAccount>`. */
  issueBootstrapToken(namespace: string, serviceAccount: string, ttlMs = this.options.bootstrapTokenTtlMs ?? HOUR): Promise<string> {
    const material = this.ca.material;
    return issueBootstrapToken({ keys: material.signingKeys, algorithm: material.algorithm }, { trustDomain: this.trustDomain, namespace, serviceAccount, ttlMs, now: this.clock.now() });
  }

  /**
   * Replaces a self-signed root with a new one now. The old root stays in the
   * trust bundle until it expires, so certificates it signed keep verifying
   * while workloads renew.
   */
  async rotateRoot(): Promise<void> {
    const current = this.ca.material;
    if (current.source !== 'self-signed') throw new CitadelError(CitadelErrorCode.CONFIG, 'a plugged-in CA is rotated by replacing its files, not by Citadel');
    const next = await rotateSelfSignedRoot(this.selfSignedOptions(), current);
    this.previousTokenKeys = [{ keys: current.signingKeys, algorithm: current.algorithm }, ...this.previousTokenKeys].slice(0, 2);
    this.ca.replaceMaterial(next);
    await this.pool?.setMaterial(next);
    this.credentials!.update(await this.servingContext());
    this.observeMaterial(next);
    this.log.info({ roots: next.roots.length, notAfter: next.signingCert.notAfter.toISOString() }, 'self-signed root rotated');
  }

  private tokenKeys(): BootstrapTokenKey[] {
    const material = this.ca.material;
    return [{ keys: material.signingKeys, algorithm: material.algorithm }, ...this.previousTokenKeys];
  }

  private observeMaterial(material: CaMaterial): void {
    const root = material.chain[material.chain.length - 1]!;
    this.metrics.rootCertExpiry.set(Math.floor(root.notAfter.getTime() / 1000));
    this.metrics.certChainExpiry.set(Math.floor(material.signingCert.notAfter.getTime() / 1000));
    const bundle = this.ca.trustBundlePem();
    for (const listener of this.bundleListeners) listener(bundle);
  }

  /** A fresh serving certificate (renewed at 80 % of its life) and the trust bundle for client certificates. */
  private async servingContext(): Promise<{ key: string; cert: string; ca: string }> {
    const authority = this.authority!;
    const keys = await generateKeyPair(authority.material.algorithm);
    const ttl = this.options.workloadCertTtlMs ?? DAY;
    const issued = await authority.signServing(keys.publicKey, this.options.servingDnsNames ?? ['istiod.istio-system.svc', 'istiod', 'localhost'], this.options.servingIps ?? ['127.0.0.1', '::1'], ttl);
    if (this.servingTimer !== undefined) this.clock.clearTimeout(this.servingTimer);
    const life = issued.cert.notAfter.getTime() - issued.cert.notBefore.getTime();
    const renewIn = issued.cert.notBefore.getTime() + life * 0.8 - this.clock.now();
    this.servingTimer = this.clock.setTimeout(() => {
      this.servingTimer = undefined;
      this.servingContext().then(
        (context) => this.credentials?.update(context),
        (err: unknown) => this.log.error({ err }, 'renewing the CA serving certificate failed; the current one stays'),
      );
    }, Math.max(1000, renewIn));
    return { key: await privateKeyToPem(keys.privateKey), cert: issued.chainPem.slice(0, -1).join(''), ca: authority.trustBundlePem().join('') };
  }

  private selfSignedOptions(): Parameters<typeof loadOrCreateSelfSignedCa>[0] {
    return {
      dir: join(this.options.dataDir, 'citadel'),
      trustDomain: this.trustDomain,
      algorithm: this.options.keyAlgorithm ?? 'ECDSA_P256',
      rootTtlMs: this.options.rootCertTtlMs ?? 3650 * DAY,
      rootRotationGraceRatio: this.options.rootRotationGraceRatio ?? 0.2,
      now: this.clock.now(),
      log: this.log,
    };
  }

  private requireStarted(): { authority: CertificateAuthority; service: CaService; credentials: CitadelServerCredentials } {
    if (!this.authority || !this.service || !this.credentials) throw new CitadelError(CitadelErrorCode.CONFIG, 'Citadel is not started: call start() first');
    return { authority: this.authority, service: this.service, credentials: this.credentials };
  }
}
