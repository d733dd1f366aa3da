// Where the CA's key and certificates come from. Either a self-signed root
// that Citadel generates on first start and keeps in the control plane's data
// dir (key 0600, re-used on restart, rotated near its end with the old root
// kept in the trust bundle until it expires), or a plugged-in CA read from
// files laid out like Istio's `cacerts` secret: ca-cert.pem (the signing
// certificate), ca-key.pem (its key), root-cert.pem (the root, or several
// during a root rotation) and cert-chain.pem (the signing certificate up to
// the root).

import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as x509 from '../common/x509.ts';
import type { Logger } from '../common/index.ts';
import { CitadelError, CitadelErrorCode } from './errors.ts';
import type { KeyAlgorithmName, WebCryptoKeyPair } from './keys.ts';
import { generateKeyPair, importPrivateKeyPem, keyAlgorithm, privateKeyToPem } from './keys.ts';

/** The CA's signing identity and trust bundle. Immutable; a rotation makes a new one. */
export interface CaMaterial {
  readonly source: 'self-signed' | 'plugged-in';
  readonly algorithm: KeyAlgorithmName;
  readonly signingKeys: WebCryptoKeyPair;
  readonly signingCert: x509.X509Certificate;
  /** The signing certificate up to and including its root. */
  readonly chain: readonly x509.X509Certificate[];
  /** Every root workloads should trust; more than one while a root is being replaced. */
  readonly roots: readonly x509.X509Certificate[];
}

export const SELF_SIGNED_FILES = { key: 'ca-key.pem', cert: 'ca-cert.pem', previousRoots: 'previous-roots.pem' } as const;
export const PLUGGED_IN_FILES = { cert: 'ca-cert.pem', key: 'ca-key.pem', root: 'root-cert.pem', chain: 'cert-chain.pem' } as const;

export interface SelfSignedOptions {
  readonly dir: string;
  readonly trustDomain: string;
  readonly algorithm: KeyAlgorithmName;
  /** Lifetime of a generated root; Istio's default is ten years. */
  readonly rootTtlMs: number;
  /** A root with less than this fraction of its life left is replaced on load. */
  readonly rootRotationGraceRatio: number;
  readonly now: number;
  readonly log: Logger;
}

/** Loads the self-signed root from `dir`, creating it on first start and replacing it when near its end. */
export async function loadOrCreateSelfSignedCa(options: SelfSignedOptions): Promise<CaMaterial> {
  const keyFile = join(options.dir, SELF_SIGNED_FILES.key);
  const certFile = join(options.dir, SELF_SIGNED_FILES.cert);
  const keyPem = await readOptional(keyFile);
  const certPem = await readOptional(certFile);
  if (keyPem === undefined && certPem === undefined) {
    options.log.info({ dir: options.dir, algorithm: options.algorithm }, 'no CA in the data dir: generating a self-signed root');
    return rotateSelfSignedRoot(options);
  }
  if (keyPem === undefined || certPem === undefined) {
    throw new CitadelError(CitadelErrorCode.CA_MATERIAL, `${options.dir}: ${keyPem === undefined ? SELF_SIGNED_FILES.key : SELF_SIGNED_FILES.cert} is missing while ${keyPem === undefined ? SELF_SIGNED_FILES.cert : SELF_SIGNED_FILES.key} exists; restore it or remove both to generate a new root`);
  }
  const material = await materialFrom({ source: 'self-signed', keyPem, keyFile, certPem, certFile, chainPem: undefined, rootPem: await readOptional(join(options.dir, SELF_SIGNED_FILES.previousRoots)), now: options.now });
  const root = material.signingCert;
  const life = root.notAfter.getTime() - root.notBefore.getTime();
  if (root.notAfter.getTime() - options.now < life * options.rootRotationGraceRatio) {
    options.log.warn({ notAfter: root.notAfter.toISOString() }, 'self-signed root is near its end: generating a new one, the old one stays in the trust bundle');
    return rotateSelfSignedRoot(options, material);
  }
  return material;
}

/**
 * Generates a new self-signed root and key, writes them (key 0600), and keeps
 * the previous root (and older ones not yet expired) in previous-roots.pem so
 * certificates it signed still verify against the trust bundle.
 */
export async function rotateSelfSignedRoot(options: SelfSignedOptions, previous?: CaMaterial): Promise<CaMaterial> {
  const keys = await generateKeyPair(options.algorithm);
  const notBefore = new Date(options.now - 60 * 60_000);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: [{ O: [options.trustDomain] }],
    notBefore,
    notAfter: new Date(options.now + options.rootTtlMs),
    keys,
    signingAlgorithm: keyAlgorithm(options.algorithm).signing,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const oldRoots = previous ? previous.roots.filter((r) => r.notAfter.getTime() > options.now) : [];
  await mkdir(options.dir, { recursive: true, mode: 0o700 });
  await writeSecure(join(options.dir, SELF_SIGNED_FILES.key), await privateKeyToPem(keys.privateKey));
  await writeSecure(join(options.dir, SELF_SIGNED_FILES.cert), cert.toString('pem') + '\n');
  if (oldRoots.length > 0) await writeSecure(join(options.dir, SELF_SIGNED_FILES.previousRoots), oldRoots.map((r) => r.toString('pem')).join('\n') + '\n');
  return { source: 'self-signed', algorithm: options.algorithm, signingKeys: keys, signingCert: cert, chain: [cert], roots: [cert, ...oldRoots] };
}

/** Reads a plugged-in CA (Istio's cacerts layout) and checks that its parts fit together. */
export async function loadPluggedInCa(dir: string, now: number): Promise<CaMaterial> {
  const file = (name: string): string => join(dir, name);
  const required = async (name: string): Promise<string> => {
    const text = await readOptional(file(name));
    if (text === undefined) throw new CitadelError(CitadelErrorCode.CA_MATERIAL, `${file(name)}: missing; a plugged-in CA needs ${PLUGGED_IN_FILES.cert}, ${PLUGGED_IN_FILES.key} and ${PLUGGED_IN_FILES.root}`);
    return text;
  };
  return materialFrom({
    source: 'plugged-in',
    keyPem: await required(PLUGGED_IN_FILES.key),
    keyFile: file(PLUGGED_IN_FILES.key),
    certPem: await required(PLUGGED_IN_FILES.cert),
    certFile: file(PLUGGED_IN_FILES.cert),
    rootPem: await required(PLUGGED_IN_FILES.root),
    chainPem: await readOptional(file(PLUGGED_IN_FILES.chain)),
    now,
  });
}

interface MaterialFiles {
  readonly source: CaMaterial['source'];
  readonly keyPem: string;
  readonly keyFile: string;
  readonly certPem: string;
  readonly certFile: string;
  /** Plugged-in: the roots; self-signed: the previous roots still trusted. */
  readonly rootPem: string | undefined;
  readonly chainPem: string | undefined;
  readonly now: number;
}

async function materialFrom(files: MaterialFiles): Promise<CaMaterial> {
  const fail = (file: string, why: string, cause?: unknown): never => {
    throw new CitadelError(CitadelErrorCode.CA_MATERIAL, `${file}: ${why}`, { cause });
  };
  let imported: Awaited<ReturnType<typeof importPrivateKeyPem>> | undefined;
  try {
    imported = await importPrivateKeyPem(files.keyPem);
  } catch (err) {
    fail(files.keyFile, `not a usable private key (${(err as Error).message})`, err);
  }
  const { keys, algorithm } = imported!;
  const certs = parseCertificates(files.certPem, files.certFile);
  const signingCert = certs[0] ?? fail(files.certFile, 'holds no certificate');
  const rootFile = files.source === 'plugged-in' ? files.certFile.replace(PLUGGED_IN_FILES.cert, PLUGGED_IN_FILES.root) : files.certFile.replace(SELF_SIGNED_FILES.cert, SELF_SIGNED_FILES.previousRoots);
  const extraRoots = files.rootPem === undefined ? [] : parseCertificates(files.rootPem, rootFile);

  const certKey = Buffer.from(signingCert.publicKey.rawData);
  const ownKey = Buffer.from(await crypto.subtle.exportKey('spki', keys.publicKey));
  if (!certKey.equals(ownKey)) fail(files.keyFile, `is not the key of the certificate in ${files.certFile}`);
  const constraints = signingCert.getExtension(x509.BasicConstraintsExtension);
  if (!constraints?.ca) fail(files.certFile, 'is not a CA certificate (basicConstraints CA:TRUE is missing)');
  if (signingCert.notAfter.getTime() <= files.now) fail(files.certFile, `expired at ${signingCert.notAfter.toISOString()}`);

  let chain: x509.X509Certificate[];
  let roots: x509.X509Certificate[];
  if (files.source === 'self-signed') {
    chain = [signingCert];
    roots = [signingCert, ...extraRoots.filter((r) => r.notAfter.getTime() > files.now)];
  } else {
    roots = extraRoots;
    if (roots.length === 0) fail(rootFile, 'holds no certificate');
    const chainFile = files.certFile.replace(PLUGGED_IN_FILES.cert, PLUGGED_IN_FILES.chain);
    chain = files.chainPem === undefined ? [signingCert] : parseCertificates(files.chainPem, chainFile);
    if (!sameCert(chain[0], signingCert)) chain.unshift(signingCert);
    // Complete the chain up to a root of the bundle, then check every link.
    const last = chain[chain.length - 1]!;
    if (!roots.some((r) => sameCert(r, last))) {
      const issuer = roots.find((r) => r.subject === last.issuer);
      if (!issuer) fail(chainFile, `does not lead to a root in ${rootFile} (last issuer: ${last.issuer})`);
      chain.push(issuer!);
    }
    for (let i = 0; i + 1 < chain.length; i++) {
      const ok = await chain[i]!.verify({ publicKey: chain[i + 1]!.publicKey, signatureOnly: true }).catch(() => false);
      if (!ok) fail(chainFile, `certificate ${i} (${chain[i]!.subject}) is not signed by the next one (${chain[i + 1]!.subject})`);
    }
  }
  return { source: files.source, algorithm, signingKeys: keys, signingCert, chain, roots };
}

export function parseCertificates(pem: string, file: string): x509.X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((block, i) => {
    try {
      return new x509.X509Certificate(block);
    } catch (err) {
      throw new CitadelError(CitadelErrorCode.CA_MATERIAL, `${file}: certificate ${i} is malformed (${(err as Error).message})`, { cause: err });
    }
  });
}

export function sameCert(a: x509.X509Certificate | undefined, b: x509.X509Certificate | undefined): boolean {
  return !!a && !!b && Buffer.from(a.rawData).equals(Buffer.from(b.rawData));
}

/** A positive 128-bit serial number in hex (RFC 5280: positive, at most 20 octets). */
export function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString('hex');
}

async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CitadelError(CitadelErrorCode.CA_MATERIAL, `${file}: unreadable (${(err as Error).message})`, { cause: err });
  }
}

/** Written whole or not at all (temp file + rename), readable by the owner only. */
async function writeSecure(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
}
