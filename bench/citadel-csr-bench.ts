// Citadel CSR signing benchmark (a command, not a test):
//   npm run bench:citadel [-- --csrs N --concurrency C --key ECDSA_P256|RSA_2048]
// A client thread pre-generates N CSRs (distinct keys, 100 service accounts),
// then sends them through the real gRPC CA service over TLS on 127.0.0.1 with
// bootstrap tokens, C calls in flight; the CA runs on the main thread. Prints
// certificates signed per second, the per-call latency (p50/p99) and the CPU
// per CSR of the CA's thread and of the whole process. Signing,
// authentication and the gRPC/TLS round trip are measured; key and CSR
// generation are not.

import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import * as grpc from '@grpc/grpc-js';
import { silentLogger } from '../src/common/index.ts';
import { Registry } from '../src/common/metrics.ts';
import { Citadel } from '../src/citadel/index.ts';
import type { KeyAlgorithmName } from '../src/citadel/index.ts';
import type { ClientWorkerData, ClientWorkerMessage } from './citadel-csr/client-worker.ts';

const { values } = parseArgs({ options: { csrs: { type: 'string', default: '5000' }, concurrency: { type: 'string', default: '64' }, key: { type: 'string', default: 'ECDSA_P256' }, workers: { type: 'string' } } });
const total = Number(values.csrs);
const concurrency = Number(values.concurrency);
const keyAlgorithm = values.key as KeyAlgorithmName;
const ACCOUNTS = 100;

const dataDir = mkdtempSync(join(tmpdir(), 'citadel-bench-'));
const metrics = new Registry();
const citadel = new Citadel({ dataDir, trustDomain: 'cluster.local', keyAlgorithm, log: silentLogger(), metrics, ...(values.workers === undefined ? {} : { signingWorkers: Number(values.workers) }) });
await citadel.start();
const server = new grpc.Server();
citadel.register(server);
const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', citadel.serverCredentials(), (err, p) => (err ? reject(err) : resolve(p))));

process.stdout.write(`pre-generating ${total} CSRs (${keyAlgorithm}) in the client thread ... `);
const t = performance.now();
const tokens = await Promise.all(Array.from({ length: ACCOUNTS }, (_, i) => citadel.issueBootstrapToken('bench', `sa-${i}`)));
const client = new Worker(new URL('./citadel-csr/client-worker.ts', import.meta.url), {
  workerData: { port, trustBundlePem: citadel.trustBundlePem().join(''), tokens, total, concurrency } satisfies ClientWorkerData,
});
const fromClient = (): Promise<ClientWorkerMessage> =>
  new Promise((resolve, reject) => {
    client.once('message', (m: ClientWorkerMessage) => (m.type === 'error' ? reject(new Error(`client: ${m.message}`)) : resolve(m)));
    client.once('error', reject);
  });
await fromClient();
console.log(`${((performance.now() - t) / 1000).toFixed(1)} s`);

const serverBefore = process.threadCpuUsage();
const processBefore = process.cpuUsage();
client.postMessage('go');
const done = await fromClient();
if (done.type !== 'done') throw new Error('the client thread did not finish');
const cpuMs = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1000;
const serverMsPerCsr = cpuMs(process.threadCpuUsage(serverBefore)) / total;
const processMsPerCsr = cpuMs(process.cpuUsage(processBefore)) / total;
const latencies = done.latencies.sort((a, b) => a - b);
const pct = (p: number): string => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]!.toFixed(2);
const issued = (await (await metrics.getSingleMetric('citadel_server_success_cert_issuance_count')!.get()).values[0]?.value) ?? 0;
console.log(`signed ${total} CSRs over gRPC+TLS in ${done.seconds.toFixed(2)} s: ${Math.round(total / done.seconds)} CSRs/s (concurrency ${concurrency}, ${keyAlgorithm}, signing workers ${values.workers ?? 'default'}); latency p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms`);
// CPU per CSR survives a busy machine. The CA's thread is what a deployment
// scales; the process figure adds the client thread (and signing workers).
console.log(`CPU per CSR: CA thread ${serverMsPerCsr.toFixed(2)} ms (= ${Math.round(1000 / serverMsPerCsr)} CSRs per CPU-second), whole process incl. the client ${processMsPerCsr.toFixed(2)} ms; cores: ${availableParallelism()}, load average ${loadavg()[0]!.toFixed(1)}; citadel_server_success_cert_issuance_count=${issued}`);

await client.terminate();
server.forceShutdown();
await citadel.stop();
rmSync(dataDir, { recursive: true, force: true });
