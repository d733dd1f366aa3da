// The CA proper: checks a CSR, signs workload certificates for a SPIFFE
// identity and serving certificates for the CA's own port, and answers with
// the chain the agent hands to its proxy (leaf, intermediates, root).

import { createPublicKey, KeyObject, sign as signDigest, verify as verifySignature } from 'node:crypto';
import type { KeyObject as KeyObjectType } from 'node:crypto';
import { AsnConvert, AsnParser, AsnSerializer, OctetString } from '@peculiar/asn1-schema';
import * as asn1js from 'asn1js';
import type { IAsnConvertible } from '@peculiar/asn1-schema';
import { CertificationRequest } from '@peculiar/asn1-csr';
import {
  AlgorithmIdentifier,
  Certificate,
  Extension,
  Extensions,
  GeneralName,
  id_ce_subjectAltName,
  Name,
  SubjectAlternativeName,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
} from '@peculiar/asn1-x509';
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
/** PKCS#9 extensionRequest: the attribute of a CSR that carries the extensions it asks for. */
const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const SHA256_WITH_RSA = '1.2.840.113549.1.1.11';

/** CSR signature algorithms node:crypto verifies directly (hash by OID); others go through @peculiar/x509. */
const CSR_SIGNATURE_HASHES: ReadonlyMap<string, string> = new Map([
  [ECDSA_WITH_SHA256, 'sha256'],
  ['1.2.840.10045.4.3.3', 'sha384'],
  ['1.2.840.10045.4.3.4', 'sha512'],
  [SHA256_WITH_RSA, 'sha256'],
  ['1.2.840.113549.1.1.12', 'sha384'],
  ['1.2.840.113549.1.1.13', 'sha512'],
]);

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
  readonly request: CertificationRequest;
  /** The CSR's public key, as it will be copied into the certificate. */
  readonly publicKeyInfo: SubjectPublicKeyInfo;
  /** The same SubjectPublicKeyInfo as the CSR encoded it: verified with, and copied into the certificate as is. */
  readonly publicKeyInfoDer: Uint8Array;
  /** The URI SANs the CSR asks for. */
  readonly uris: readonly string[];
}

/** What the fast signing path needs from the CA material, derived once per material. */
interface SigningState {
  readonly material: CaMaterial;
  readonly key: KeyObjectType;
  readonly signatureAlgorithm: AlgorithmIdentifier;
  /** The signing certificate's subject, as encoded there, reused as every leaf's issuer. */
  readonly issuer: Name;
  /** basicConstraints, keyUsage, extKeyUsage and authorityKeyIdentifier, encoded once. */
  readonly fixedExtensions: readonly IAsnConvertible[];
}

/** A workload certificate from the fast path, as DER. */
interface SignedLeaf {
  readonly der: Buffer;
  readonly serialNumber: string;
  readonly notAfter: number;
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
  private signing: Promise<SigningState>;
  private readonly sanCache = new Map<string, x509.SubjectAlternativeNameExtension>();
  private readonly uriSanCache = new Map<string, IAsnConvertible>();

  constructor(material: CaMaterial, options: CertificateAuthorityOptions) {
    if (options.defaultTtlMs <= 0 || options.maxTtlMs < options.defaultTtlMs) {
      throw new CitadelError(CitadelErrorCode.CONFIG, `workload certificate TTLs: default ${options.defaultTtlMs} ms must be positive and at most the maximum ${options.maxTtlMs} ms`);
    }
    this.options = options;
    this.current = material;
    this.chainTailPem = chainTail(material);
    this.authorityKeyId = x509.AuthorityKeyIdentifierExtension.create(material.signingCert.publicKey);
    this.signing = signingState(material, this.authorityKeyId);
    // A rejection surfaces on the first signature; do not let it go unhandled before.
    this.signing.catch(() => undefined);
  }

  get material(): CaMaterial {
    return this.current;
  }

  /** Switches to new key material (a root rotation); certificates signed before stay valid through the trust bundle. */
  replaceMaterial(material: CaMaterial): void {
    this.current = material;
    this.chainTailPem = chainTail(material);
    this.authorityKeyId = x509.AuthorityKeyIdentifierExtension.create(material.signingCert.publicKey);
    this.signing = signingState(material, this.authorityKeyId);
    this.signing.catch(() => undefined);
  }

  /** The roots workloads should trust, PEM, the signing root first. */
  trustBundlePem(): string[] {
    return orderedRoots(this.current).map(pemOf);
  }

  /** Parses a PEM CSR and checks its self-signature; throws INVALID_CSR naming what is wrong. */
  async parseCsr(pem: string): Promise<ParsedCsr> {
    const match = typeof pem === 'string' ? /-----BEGIN CERTIFICATE REQUEST-----([A-Za-z0-9+/=\s]*)-----END CERTIFICATE REQUEST-----/.exec(pem) : null;
    if (!match) throw new CitadelError(CitadelErrorCode.INVALID_CSR, 'csr is not a PEM "CERTIFICATE REQUEST"');
    const der = Buffer.from(match[1]!, 'base64');
    let request: CertificationRequest;
    let publicKey: KeyObjectType;
    let uris: string[];
    let publicKeyInfoDer: Uint8Array;
    try {
      const asn = asn1js.fromBER(der);
      if (asn.offset === -1) throw new Error(asn.result.error);
      request = AsnParser.fromASN<CertificationRequest>(asn.result, CertificationRequest);
      // The key node:crypto verifies with is the key the certificate will carry: both are these bytes.
      publicKeyInfoDer = publicKeyInfoBytes(asn.result);
      publicKey = createPublicKey({ key: Buffer.from(publicKeyInfoDer), format: 'der', type: 'spki' });
      uris = requestedUris(request);
    } catch (err) {
      throw new CitadelError(CitadelErrorCode.INVALID_CSR, `csr is not a PKCS#10 request: ${(err as Error).message}`, { cause: err });
    }
    if (!(await csrSignatureHolds(request, publicKey, der))) throw new CitadelError(CitadelErrorCode.INVALID_CSR, 'csr signature does not verify with its own public key');
    return { request, publicKeyInfo: request.certificationRequestInfo.subjectPKInfo, publicKeyInfoDer, uris };
  }

  /**
   * Signs a workload certificate for `identity` (a SPIFFE ID of this trust
   * domain) over the CSR's public key. The CSR's URIs must be exactly that
   * identity; `ttlMs` 0 takes the default, more than the maximum is refused.
   */
  async signWorkload(parsed: ParsedCsr, identity: string, ttlMs: number): Promise<IssuedCertificate> {
    this.checkIdentity(parsed, identity);
    const leaf = await this.signLeaf(parsed.publicKeyInfoDer, identity, this.checkTtl(ttlMs));
    const cert = new x509.X509Certificate(leaf.der);
    return { cert, chainPem: [pemOf(cert), ...this.chainTailPem] };
  }

  /** Throws IDENTITY_MISMATCH unless `identity` is a workload of this trust domain and the CSR's only URI SAN. */
  private checkIdentity(parsed: ParsedCsr, identity: string): void {
    const id = parseSpiffeId(identity);
    if (!id || id.trustDomain !== this.options.trustDomain) {
      throw new CitadelError(CitadelErrorCode.IDENTITY_MISMATCH, `identity ${identity} is not a workload of trust domain ${this.options.trustDomain}`);
    }
    if (parsed.uris.length !== 1 || parsed.uris[0] !== identity) {
      const asked = parsed.uris.length === 0 ? 'no URI SAN' : parsed.uris.join(', ');
      throw new CitadelError(CitadelErrorCode.IDENTITY_MISMATCH, `csr asks for ${asked} but the caller is ${identity}`);
    }
  }

  /** Parses, checks and signs in one step: what the CA service and the signing workers call. */
  async signCsr(csrPem: string, identity: string, ttlMs: number): Promise<SignedChain> {
    const parsed = await this.parseCsr(csrPem);
    this.checkIdentity(parsed, identity);
    const leaf = await this.signLeaf(parsed.publicKeyInfoDer, identity, this.checkTtl(ttlMs));
    return { chainPem: [derToPem(leaf.der), ...this.chainTailPem], serialNumber: leaf.serialNumber, notAfter: leaf.notAfter };
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

  /** The critical URI SAN extension of `identity`, encoded once per identity (LRU). */
  private uriSan(identity: string): IAsnConvertible {
    let ext = this.uriSanCache.get(identity);
    if (ext) {
      this.uriSanCache.delete(identity);
    } else {
      const names = new SubjectAlternativeName([new GeneralName({ uniformResourceIdentifier: identity })]);
      // Critical because the subject is empty (RFC 5280 4.2.1.6).
      ext = encoded(AsnConvert.serialize(new Extension({ extnID: id_ce_subjectAltName, critical: true, extnValue: new OctetString(AsnConvert.serialize(names)) })));
      if (this.uriSanCache.size >= SAN_CACHE_SIZE) this.uriSanCache.delete(this.uriSanCache.keys().next().value!);
    }
    this.uriSanCache.set(identity, ext);
    return ext;
  }

  /**
   * The fast path: one TBSCertificate built from asn1-x509 structures and
   * serialized once, signed with node:crypto, wrapped in the Certificate.
   */
  private async signLeaf(publicKeyInfoDer: Uint8Array, identity: string, ttlMs: number): Promise<SignedLeaf> {
    const state = await this.signing.catch((err: unknown) => {
      throw new CitadelError(CitadelErrorCode.SIGNING, `signing failed: ${(err as Error).message}`, { cause: err });
    });
    const now = this.options.clock.now();
    // Never outlive the signing certificate: a verifier would reject the tail anyway. Certificates count whole seconds.
    const notAfter = Math.floor(Math.min(now + ttlMs, state.material.signingCert.notAfter.getTime()) / 1000) * 1000;
    const serial = serialNumber();
    try {
      const tbs = new TBSCertificate({
        version: Version.v3,
        serialNumber: new Uint8Array(Buffer.from(serial, 'hex')).buffer,
        signature: state.signatureAlgorithm,
        issuer: state.issuer,
        validity: new Validity({ notBefore: new Date(now - this.options.backdateMs), notAfter: new Date(notAfter) }),
        subject: new Name(),
        subjectPublicKeyInfo: encoded(publicKeyInfoDer) as unknown as SubjectPublicKeyInfo,
        extensions: new Extensions([...state.fixedExtensions, this.uriSan(identity)] as unknown as Extension[]),
      });
      // Serialized once: the same bytes are signed and then embedded in the Certificate.
      const tbsDer = new Uint8Array(AsnSerializer.serialize(tbs));
      const signature = signDigest('sha256', tbsDer, { key: state.key, dsaEncoding: 'der' });
      const certificate = new Certificate({
        tbsCertificate: encoded(tbsDer) as unknown as TBSCertificate,
        signatureAlgorithm: state.signatureAlgorithm,
        signatureValue: signature.buffer.slice(signature.byteOffset, signature.byteOffset + signature.byteLength) as ArrayBuffer,
      });
      return { der: Buffer.from(AsnSerializer.serialize(certificate)), serialNumber: serial, notAfter };
    } catch (err) {
      throw new CitadelError(CitadelErrorCode.SIGNING, `signing failed: ${(err as Error).message}`, { cause: err });
    }
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

async function signingState(material: CaMaterial, authorityKeyId: Promise<x509.AuthorityKeyIdentifierExtension>): Promise<SigningState> {
  const ca = AsnConvert.parse(material.signingCert.rawData, Certificate);
  const issuerDer = AsnConvert.serialize(ca.tbsCertificate.subject);
  const rsa = material.algorithm === 'RSA_2048';
  const signatureAlgorithm = rsa ? new AlgorithmIdentifier({ algorithm: SHA256_WITH_RSA, parameters: null }) : new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 });
  const fixed = [...LEAF_EXTENSIONS, await authorityKeyId].map((e) => encoded(e.rawData));
  return {
    material,
    key: KeyObject.from(material.signingKeys.privateKey),
    signatureAlgorithm,
    issuer: encoded(issuerDer) as unknown as Name,
    fixedExtensions: fixed,
  };
}

/**
 * asn1js's RawData, made to write into the writer a constructed parent hands
 * its children (RawData itself only returns its bytes, which the parent then
 * drops).
 */
class EncodedDer extends asn1js.RawData {
  override toBER(sizeOnly?: boolean, writer?: { write(bytes: ArrayBuffer): void }): ArrayBuffer {
    const bytes = super.toBER(sizeOnly);
    if (!writer) return bytes;
    writer.write(bytes);
    return new ArrayBuffer(0);
  }
}

/**
 * A value already DER-encoded, which asn1-schema embeds in a structure as is
 * (asn1js's RawData) instead of building and encoding it again: the issuer,
 * the fixed extensions, the CSR's public key and the signed TBSCertificate.
 */
function encoded(der: ArrayBuffer | Uint8Array): IAsnConvertible {
  const raw = new EncodedDer({ data: der });
  return {
    toASN: () => raw as unknown as ReturnType<IAsnConvertible['toASN']>,
    fromASN() {
      throw new Error('an encoded value is only written');
    },
    toSchema() {
      throw new Error('an encoded value is only written');
    },
  };
}

/** certificationRequestInfo.subjectPKInfo of a parsed CSR, as the bytes it was decoded from. */
function publicKeyInfoBytes(request: asn1js.AsnType): Uint8Array {
  const info = request instanceof asn1js.Sequence ? request.valueBlock.value[0] : undefined;
  const spki = info instanceof asn1js.Sequence ? info.valueBlock.value[2] : undefined;
  if (!(spki instanceof asn1js.Sequence)) throw new Error('certificationRequestInfo has no subjectPKInfo');
  return new Uint8Array(spki.valueBeforeDecodeView);
}

/** The URI SANs of a CSR's extensionRequest attribute. */
function requestedUris(request: CertificationRequest): string[] {
  for (const attribute of request.certificationRequestInfo.attributes) {
    if (attribute.type !== EXTENSION_REQUEST) continue;
    for (const value of attribute.values) {
      const extensions = AsnConvert.parse(value, Extensions);
      const san = extensions.find((e) => e.extnID === SUBJECT_ALT_NAME);
      if (!san) continue;
      const names = AsnConvert.parse(san.extnValue, SubjectAlternativeName);
      return names.filter((n) => n.uniformResourceIdentifier !== undefined).map((n) => n.uniformResourceIdentifier!);
    }
  }
  return [];
}

/** Checks the CSR's self-signature over its certificationRequestInfo exactly as received. */
async function csrSignatureHolds(request: CertificationRequest, publicKey: KeyObjectType, der: Buffer): Promise<boolean> {
  const hash = CSR_SIGNATURE_HASHES.get(request.signatureAlgorithm.algorithm);
  const info = request.certificationRequestInfoRaw;
  if (hash === undefined || !info) {
    // Rare algorithms (RSA-PSS, ...): let @peculiar/x509 verify through WebCrypto.
    try {
      return await new x509.Pkcs10CertificateRequest(der).verify();
    } catch {
      return false;
    }
  }
  try {
    return verifySignature(hash, new Uint8Array(info), publicKey, new Uint8Array(request.signature));
  } catch {
    return false;
  }
}

function derToPem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END CERTIFICATE-----\n`;
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
