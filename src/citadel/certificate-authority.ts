// The CA proper: checks a CSR, signs workload certificates for a SPIFFE
// identity and serving certificates for the CA's own port, and answers with
// the chain the agent hands to its proxy (leaf, intermediates, root).

import * as x509 from '../common/x509.ts';
import { parseSpiffeId } from '../common/index.ts';
import type { CaMaterial } from './ca-material.ts';
import { serialNumber } from './ca-material.ts';
import type { CitadelClock } from './clock.ts';
import { CitadelError, CitadelErrorCode } from './errors.ts';
import { keyAlgorithm } from './keys.ts';
import type { WebCryptoKey } from './keys.ts';

const SUBJECT_ALT_NAME = '2.5.29.17';
const SAN_CACHE_SIZE = 10_000;

/** The extensions every leaf carries besides its SAN and the authority key id; immutable, built once. */
const LEAF_EXTENSIONS: readonly x509.Extension[] = [
  new x509.BasicConstraintsExtension(false, undefined, true),
  new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
  new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
];

export interface CertificateAuthorityOptions {
  readonly trustDomain: string;
  readonly clock: CitadelClock;
  /** Lifetime when the request names none (Istio: 24 h). */
  readonly defaultTtlMs: number;
  /** Longest lifetime a workload may ask for (Istio: 90 days). */
  readonly maxTtlMs: number;
  /** notBefore is set this far in the past, for clocks that lag the CA's. */
  readonly backdateMs: number;
}

/** A CSR that parsed and whose signature holds. */
export interface ParsedCsr {
  readonly csr: x509.Pkcs10CertificateRequest;
  /** The URI SANs the CSR asks for. */
  readonly uris: readonly string[];
}

export interface IssuedCertificate {
  readonly cert: x509.X509Certificate;
  /**
   * IstioCertificateResponse.cert_chain, as Istio sends it: the leaf PEM, one
   * PEM per intermediate, and last the trust bundle (every root, one string,
   * the signing root first), which agents serve as ROOTCA.
   */
  readonly chainPem: readonly string[];
}

/** A signed chain with what logs need, plain data so it can cross from a signing worker. */
export interface SignedChain {
  readonly chainPem: readonly string[];
  readonly serialNumber: string;
  readonly notAfter: number;
}

/** Whatever signs CSRs for the CA service: the CA in-process or a pool of workers. */
export interface CsrSigner {
  /** Rejects with a CitadelError: INVALID_CSR, IDENTITY_MISMATCH, INVALID_TTL or SIGNING. */
  signCsr(csrPem: string, identity: string, ttlMs: number): Promise<SignedChain>;
}

export class CertificateAuthority implements CsrSigner {
  readonly options: CertificateAuthorityOptions;
  private current: CaMaterial;
  private chainTailPem: readonly string[];
  private authorityKeyId: Promise<x509.AuthorityKeyIdentifierExtension>;
  private readonly sanCache = new Map<string, x509.SubjectAlternativeNameExtension>();

  constructor(material: CaMaterial, options: CertificateAuthorityOptions) {
    if (options.defaultTtlMs <= 0 || options.maxTtlMs < options.defaultTtlMs) {
      throw new CitadelError(CitadelErrorCode.CONFIG, `workload certificate TTLs: default ${options.defaultTtlMs} ms must be positive and at most the maximum ${options.maxTtlMs} ms`);
    }
    this.options = options;
    this.current = material;
    this.chainTailPem = chainTail(material);
    this.authorityKeyId = x509.AuthorityKeyIdentifierExtension.create(material.signingCert.publicKey);
  }

  get material(): CaMaterial {
    return this.current;
  }

  /** Switches to new key material (a root rotation); certificates signed before stay valid through the trust bundle. */
  replaceMaterial(material: CaMaterial): void {
    this.current = material;
    this.chainTailPem = chainTail(material);
    this.authorityKeyId = x509.AuthorityKeyIdentifierExtension.create(material.signingCert.publicKey);
  }

  /** The roots workloads should trust, PEM, the signing root first. */
  trustBundlePem(): string[] {
    return orderedRoots(this.current).map(pemOf);
  }

  /** Parses a PEM CSR and checks its self-signature; throws INVALID_CSR naming what is wrong. */
  async parseCsr(pem: string): Promise<ParsedCsr> {
    if (typeof pem !== 'string' || !pem.includes('-----BEGIN CERTIFICATE REQUEST-----')) {
      throw new CitadelError(CitadelErrorCode.INVALID_CSR, 'csr is not a PEM "CERTIFICATE REQUEST"');
    }
    let csr: x509.Pkcs10CertificateRequest;
    try {
      csr = new x509.Pkcs10CertificateRequest(pem.trim());
    } catch (err) {
      throw new CitadelError(CitadelErrorCode.INVALID_CSR, `csr is not a PKCS#10 request: ${(err as Error).message}`, { cause: err });
    }
    const valid = await csr.verify().catch(() => false);
    if (!valid) throw new CitadelError(CitadelErrorCode.INVALID_CSR, 'csr signature does not verify with its own public key');
    const san = csr.extensions.find((e) => e.type === SUBJECT_ALT_NAME);
    const uris = san instanceof x509.SubjectAlternativeNameExtension ? san.names.items.filter((n) => n.type === 'url').map((n) => n.value) : [];
    return { csr, uris };
  }

  /**
   * Signs a workload certificate for `identity` (a SPIFFE ID of this trust
   * domain) over the CSR's public key. The CSR's URIs must be exactly that
   * identity; `ttlMs` 0 takes the default, more than the maximum is refused.
   */
  async signWorkload(parsed: ParsedCsr, identity: string, ttlMs: number): Promise<IssuedCertificate> {
    const id = parseSpiffeId(identity);
    if (!id || id.trustDomain !== this.options.trustDomain) {
      throw new CitadelError(CitadelErrorCode.IDENTITY_MISMATCH, `identity ${identity} is not a workload of trust domain ${this.options.trustDomain}`);
    }
    if (parsed.uris.length !== 1 || parsed.uris[0] !== identity) {
      const asked = parsed.uris.length === 0 ? 'no URI SAN' : parsed.uris.join(', ');
      throw new CitadelError(CitadelErrorCode.IDENTITY_MISMATCH, `csr asks for ${asked} but the caller is ${identity}`);
    }
    const ttl = this.checkTtl(ttlMs);
    const cert = await this.sign({
      // The raw SubjectPublicKeyInfo: the CSR's key is copied, not imported into WebCrypto.
      publicKey: parsed.csr.publicKey.rawData,
      sans: [{ type: 'url', value: identity }],
      ttlMs: ttl,
    });
    return { cert, chainPem: [pemOf(cert), ...this.chainTailPem] };
  }

  /** Parses, checks and signs in one step: what the CA service and the signing workers call. */
  async signCsr(csrPem: string, identity: string, ttlMs: number): Promise<SignedChain> {
    const issued = await this.signWorkload(await this.parseCsr(csrPem), identity, ttlMs);
    return { chainPem: issued.chainPem, serialNumber: issued.cert.serialNumber, notAfter: issued.cert.notAfter.getTime() };
  }

  /** A serving certificate for the CA's own TLS port (DNS names and IP addresses). */
  async signServing(publicKey: WebCryptoKey, dnsNames: readonly string[], ips: readonly string[], ttlMs: number): Promise<IssuedCertificate> {
    const sans: x509.JsonGeneralName[] = [...dnsNames.map((value) => ({ type: 'dns' as const, value })), ...ips.map((value) => ({ type: 'ip' as const, value }))];
    const cert = await this.sign({ publicKey, sans, ttlMs });
    return { cert, chainPem: [pemOf(cert), ...this.chainTailPem] };
  }

  checkTtl(ttlMs: number): number {
    if (!Number.isFinite(ttlMs) || ttlMs < 0) throw new CitadelError(CitadelErrorCode.INVALID_TTL, `validity_duration ${ttlMs / 1000} s is not a non-negative number of seconds`);
    if (ttlMs > this.options.maxTtlMs) {
      throw new CitadelError(CitadelErrorCode.INVALID_TTL, `validity_duration ${ttlMs / 1000} s is above the maximum ${this.options.maxTtlMs / 1000} s`);
    }
    return ttlMs === 0 ? this.options.defaultTtlMs : ttlMs;
  }

  /** SAN extensions by identity: building one costs as much as a signature, and workloads renew the same identity. */
  private subjectAltName(sans: x509.JsonGeneralName[]): x509.SubjectAlternativeNameExtension {
    const key = sans.map((n) => `${n.type}:${n.value}`).join(',');
    let ext = this.sanCache.get(key);
    if (ext) {
      // Refresh its place in the LRU order.
      this.sanCache.delete(key);
    } else {
      // Critical because the subject is empty (RFC 5280 4.2.1.6).
      ext = new x509.SubjectAlternativeNameExtension(sans, true);
      if (this.sanCache.size >= SAN_CACHE_SIZE) this.sanCache.delete(this.sanCache.keys().next().value!);
    }
    this.sanCache.set(key, ext);
    return ext;
  }

  private async sign(request: { publicKey: x509.PublicKeyType; sans: x509.JsonGeneralName[]; ttlMs: number }): Promise<x509.X509Certificate> {
    const material = this.current;
    const now = this.options.clock.now();
    // Never outlive the signing certificate: a verifier would reject the tail anyway.
    const notAfter = Math.min(now + request.ttlMs, material.signingCert.notAfter.getTime());
    try {
      return await x509.X509CertificateGenerator.create({
        serialNumber: serialNumber(),
        subject: '',
        issuer: material.signingCert.subjectName,
        notBefore: new Date(now - this.options.backdateMs),
        notAfter: new Date(notAfter),
        publicKey: request.publicKey,
        signingKey: material.signingKeys.privateKey,
        signingAlgorithm: keyAlgorithm(material.algorithm).signing,
        extensions: [...LEAF_EXTENSIONS, this.subjectAltName(request.sans), await this.authorityKeyId],
      });
    } catch (err) {
      throw new CitadelError(CitadelErrorCode.SIGNING, `signing failed: ${(err as Error).message}`, { cause: err });
    }
  }
}

function orderedRoots(material: CaMaterial): x509.X509Certificate[] {
  const top = material.chain[material.chain.length - 1];
  const raw = (c: x509.X509Certificate): Buffer => Buffer.from(c.rawData);
  const first = material.roots.filter((r) => top && raw(r).equals(raw(top)));
  return [...first, ...material.roots.filter((r) => !first.includes(r))];
}

/** Intermediates (the chain without its root) and then the whole trust bundle as one PEM string. */
function chainTail(material: CaMaterial): string[] {
  const intermediates = material.chain.slice(0, -1).map(pemOf);
  return [...intermediates, orderedRoots(material).map(pemOf).join('')];
}

/** PEM with its final newline, so PEMs concatenate into a valid bundle. */
function pemOf(cert: x509.X509Certificate): string {
  return cert.toString('pem').trimEnd() + '\n';
}
