// The load side of the Citadel CSR benchmark, in its own thread so that the
// CA's event loop has a core to itself, as it would with agents in other
// processes. Generates the CSRs first (not timed), then waits for "go".
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import * as grpc from '@grpc/grpc-js';
import { createWorkloadKey } from '../../src/agent/index.ts';
import { loadCaService } from '../../src/xds/index.ts';
import type { IstioCertificateResponse } from '../../src/xds/index.ts';

export interface ClientWorkerData {
  readonly port: number;
  readonly trustBundlePem: string;
  readonly tokens: readonly string[];
  readonly total: number;
  readonly concurrency: number;
}
export type ClientWorkerMessage = { type: 'ready' } | { type: 'done'; seconds: number; latencies: number[] } | { type: 'error'; message: string };

const data = workerData as ClientWorkerData;
const port = parentPort!;
const csrs: string[] = [];
for (let i = 0; i < data.total; i++) csrs.push((await createWorkloadKey(`spiffe://cluster.local/ns/bench/sa/sa-${i % data.tokens.length}`)).csrPem);

const { Client } = loadCaService();
const client = new Client(`127.0.0.1:${data.port}`, grpc.credentials.createSsl(Buffer.from(data.trustBundlePem)), { 'grpc.ssl_target_name_override': 'istiod.istio-system.svc' }) as unknown as grpc.Client & {
  CreateCertificate(r: unknown, m: grpc.Metadata, cb: (e: grpc.ServiceError | null, v?: IstioCertificateResponse) => void): void;
};
const metadataFor = data.tokens.map((token) => {
  const m = new grpc.Metadata();
  m.set('authorization', `Bearer ${token}`);
  return m;
});
function sign(i: number): Promise<number> {
  const start = performance.now();
  return new Promise((resolve, reject) =>
    client.CreateCertificate({ csr: csrs[i], validity_duration: '86400' }, metadataFor[i % metadataFor.length]!, (err, res) => (err || !res?.cert_chain.length ? reject(err ?? new Error('empty chain')) : resolve(performance.now() - start))),
  );
}

try {
  // Warm up the connection and the JIT on both sides.
  for (let i = 0; i < Math.min(200, data.total); i++) await sign(i);
  port.postMessage({ type: 'ready' } satisfies ClientWorkerMessage);
  await new Promise((resolve) => port.once('message', resolve));
  const latencies: number[] = [];
  let next = 0;
  const t = performance.now();
  await Promise.all(Array.from({ length: data.concurrency }, async () => {
    while (next < data.total) latencies.push(await sign(next++));
  }));
  port.postMessage({ type: 'done', seconds: (performance.now() - t) / 1000, latencies } satisfies ClientWorkerMessage);
} catch (err) {
  port.postMessage({ type: 'error', message: (err as Error).message } satisfies ClientWorkerMessage);
} finally {
  client.close();
}
