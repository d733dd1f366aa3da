// A signing worker thread: holds a copy of the CA's key material and turns
// CSRs into signed chains, so signing (mostly ASN.1 work in JavaScript) runs
// on every core while the main thread serves gRPC and TLS. Time comes with
// each job from the main thread's clock, so a fake clock stays in charge.

import { parentPort } from 'node:worker_threads';
import { silentLogger } from '../common/index.ts';
import * as x509 from '../common/x509.ts';
import type { CaMaterial } from './ca-material.ts';
import { CertificateAuthority } from './certificate-authority.ts';
import type { CertificateAuthorityOptions } from './certificate-authority.ts';
import { isMeshError } from '../common/index.ts';
import { importPrivateKeyPem } from './keys.ts';

/** Messages from the pool. */
export type SigningWorkerRequest =
  | { readonly type: 'material'; readonly keyPem: string; readonly chainPem: readonly string[]; readonly rootsPem: readonly string[]; readonly source: CaMaterial['source']; readonly options: Omit<CertificateAuthorityOptions, 'clock'> }
  | { readonly type: 'sign'; readonly id: number; readonly csrPem: string; readonly identity: string; readonly ttlMs: number; readonly now: number };

export type SigningWorkerResponse =
  | { readonly id: number; readonly ok: true; readonly chainPem: readonly string[]; readonly serialNumber: string; readonly notAfter: number }
  | { readonly id: number; readonly ok: false; readonly code: string; readonly message: string };

let now = 0;
let ca: CertificateAuthority | undefined;
// Material updates and jobs are handled in order: a job waits for the material sent before it.
let ready: Promise<void> = Promise.resolve();

async function load(request: Extract<SigningWorkerRequest, { type: 'material' }>): Promise<void> {
  const { keys, algorithm } = await importPrivateKeyPem(request.keyPem);
  const chain = request.chainPem.map((pem) => new x509.X509Certificate(pem));
  const material: CaMaterial = { source: request.source, algorithm, signingKeys: keys, signingCert: chain[0]!, chain, roots: request.rootsPem.map((pem) => new x509.X509Certificate(pem)) };
  const clock = { now: () => now, setTimeout: () => undefined, clearTimeout: () => undefined };
  if (ca) ca.replaceMaterial(material);
  else ca = new CertificateAuthority(material, { ...request.options, clock });
}

async function sign(request: Extract<SigningWorkerRequest, { type: 'sign' }>): Promise<SigningWorkerResponse> {
  try {
    now = request.now;
    const signed = await ca!.signCsr(request.csrPem, request.identity, request.ttlMs);
    return { id: request.id, ok: true, ...signed };
  } catch (err) {
    if (isMeshError(err)) return { id: request.id, ok: false, code: err.code, message: err.message };
    silentLogger().error({ err }, 'signing failed');
    return { id: request.id, ok: false, code: 'MESH_ERR_CITADEL_SIGNING', message: `signing failed: ${(err as Error).message}` };
  }
}

parentPort!.on('message', (request: SigningWorkerRequest) => {
  if (request.type === 'material') {
    ready = ready.then(() => load(request));
    return;
  }
  ready.then(() => sign(request)).then((response) => parentPort!.postMessage(response));
});
