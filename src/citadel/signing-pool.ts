// A pool of signing worker threads behind the CsrSigner interface. Jobs go to
// the worker with the fewest in flight; a root rotation sends the new
// material to every worker before any later job. A worker that dies fails its
// jobs with SIGNING and is replaced.

import { Worker } from 'node:worker_threads';
import type { CaMaterial } from './ca-material.ts';
import type { CertificateAuthorityOptions, CsrSigner, SignedChain } from './certificate-authority.ts';
import type { CitadelClock } from './clock.ts';
import { CitadelError, CitadelErrorCode } from './errors.ts';
import { privateKeyToPem } from './keys.ts';
import type { SigningWorkerRequest, SigningWorkerResponse } from './signing-worker.ts';

interface PoolWorker {
  worker: Worker;
  readonly pending: Map<number, { resolve: (value: SignedChain) => void; reject: (err: Error) => void }>;
}

export class SigningPool implements CsrSigner {
  private readonly size: number;
  private readonly options: Omit<CertificateAuthorityOptions, 'clock'>;
  private readonly clock: CitadelClock;
  private readonly workers: PoolWorker[] = [];
  private material: Extract<SigningWorkerRequest, { type: 'material' }> | undefined;
  private nextId = 1;
  private closed = false;

  constructor(size: number, options: CertificateAuthorityOptions) {
    const { clock, ...rest } = options;
    this.size = size;
    this.options = rest;
    this.clock = clock;
  }

  /** Sends the CA's key material to every worker (starting them on first use). */
  async setMaterial(material: CaMaterial): Promise<void> {
    this.material = {
      type: 'material',
      keyPem: await privateKeyToPem(material.signingKeys.privateKey),
      chainPem: material.chain.map((c) => c.toString('pem')),
      rootsPem: material.roots.map((c) => c.toString('pem')),
      source: material.source,
      options: this.options,
    };
    while (this.workers.length < this.size) this.workers.push(this.spawn());
    for (const w of this.workers) w.worker.postMessage(this.material);
  }

  signCsr(csrPem: string, identity: string, ttlMs: number): Promise<SignedChain> {
    if (this.closed || this.workers.length === 0) return Promise.reject(new CitadelError(CitadelErrorCode.SIGNING, 'the signing pool is not running'));
    let target = this.workers[0]!;
    for (const w of this.workers) if (w.pending.size < target.pending.size) target = w;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      target.pending.set(id, { resolve, reject });
      const job: SigningWorkerRequest = { type: 'sign', id, csrPem, identity, ttlMs, now: this.clock.now() };
      target.worker.postMessage(job);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const workers = this.workers.splice(0);
    for (const w of workers) this.fail(w, 'the signing pool was closed');
    await Promise.all(workers.map((w) => w.worker.terminate()));
  }

  private spawn(): PoolWorker {
    const entry: PoolWorker = { worker: new Worker(new URL('./signing-worker.ts', import.meta.url)), pending: new Map() };
    entry.worker.unref();
    entry.worker.on('message', (response: SigningWorkerResponse) => {
      const job = entry.pending.get(response.id);
      if (!job) return;
      entry.pending.delete(response.id);
      if (response.ok) job.resolve({ chainPem: response.chainPem, serialNumber: response.serialNumber, notAfter: response.notAfter });
      else job.reject(new CitadelError(response.code, response.message));
    });
    entry.worker.on('error', (err) => this.fail(entry, `signing worker failed: ${err.message}`));
    entry.worker.on('exit', () => {
      this.fail(entry, 'signing worker exited');
      if (this.closed) return;
      // Replace it, with the current material.
      const index = this.workers.indexOf(entry);
      if (index < 0) return;
      const replacement = this.spawn();
      this.workers[index] = replacement;
      if (this.material) replacement.worker.postMessage(this.material);
    });
    return entry;
  }

  private fail(entry: PoolWorker, message: string): void {
    for (const job of entry.pending.values()) job.reject(new CitadelError(CitadelErrorCode.SIGNING, message));
    entry.pending.clear();
  }
}
