// Citadel CSR signing benchmark (a command, not a test):
//   npm run bench:citadel [-- --csrs N --concurrency C --key ECDSA_P256|RSA_2048]
// Pre-generates N CSRs (distinct keys, 100 service accounts), then sends them
// through the real gRPC CA service over TLS on 127.0.0.1 with bootstrap
// tokens, C calls in flight, and prints certificates signed per second plus
// the per-call latency (p50/p99). Signing, authentication and the gRPC/TLS
// round trip are measured; key and CSR generation are not.

import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { Registry, silentLogger } from '../src/common/index.ts';
import { Citadel } from '../src/citadel/index.ts';
import type { KeyAlgorithmName } from '../src/citadel/index.ts';
import { createWorkloadKey } from '../src/agent/index.ts';
import { loadCaService } from '../src/xds/index.ts';
import type { IstioCertificateResponse } from '../src/xds/index.ts';

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

process.stdout.write(`pre-generating ${total} CSRs (${keyAlgorithm}) ... `);
let t = performance.now();
const tokens = await Promise.all(Array.from({ length: ACCOUNTS }, (_, i) => citadel.issueBootstrapToken('bench', `sa-${i}`)));
const csrs: string[] = [];
for (let i = 0; i < total; i++) csrs.push((await createWorkloadKey(`spiffe://cluster.local/ns/bench/sa/sa-${i % ACCOUNTS}`)).csrPem);
console.log(`${((performance.now() - t) / 1000).toFixed(1)} s`);

const { Client } = loadCaService();
const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createSsl(Buffer.from(citadel.trustBundlePem().join(''))), { 'grpc.ssl_target_name_override': 'istiod.istio-system.svc' }) as unknown as grpc.Client & {
  CreateCertificate(r: unknown, m: grpc.Metadata, cb: (e: grpc.ServiceError | null, v?: IstioCertificateResponse) => void): void;
};
const metadataFor = tokens.map((token) => {
  const m = new grpc.Metadata();
  m.set('authorization', `Bearer ${token}`);
  return m;
});
function sign(i: number): Promise<number> {
  const start = performance.now();
  return new Promise((resolve, reject) =>
    client.CreateCertificate({ csr: csrs[i], validity_duration: '86400' }, metadataFor[i % ACCOUNTS]!, (err, res) => (err || !res?.cert_chain.length ? reject(err ?? new Error('empty chain')) : resolve(performance.now() - start))),
  );
}

// Warm up the connection and the JIT.
for (let i = 0; i < Math.min(200, total); i++) await sign(i);

const latencies: number[] = [];
let next = 0;
t = performance.now();
const cpuBefore = process.cpuUsage();
await Promise.all(Array.from({ length: concurrency }, async () => {
  while (next < total) latencies.push(await sign(next++));
}));
const seconds = (performance.now() - t) / 1000;
const cpu = process.cpuUsage(cpuBefore);
const cpuMsPerCsr = (cpu.user + cpu.system) / 1000 / total;
latencies.sort((a, b) => a - b);
const pct = (p: number): string => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]!.toFixed(2);
const issued = (await (await metrics.getSingleMetric('citadel_server_success_cert_issuance_count')!.get()).values[0]?.value) ?? 0;
console.log(`signed ${total} CSRs over gRPC+TLS in ${seconds.toFixed(2)} s: ${Math.round(total / seconds)} CSRs/s (concurrency ${concurrency}, ${keyAlgorithm}, signing workers ${values.workers ?? 'default'}); latency p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms`);
// CPU per CSR is the figure that survives a busy machine: it counts the client's share too (same process).
console.log(`CPU ${cpuMsPerCsr.toFixed(2)} ms per CSR (server + client, all threads) = ${Math.round(1000 / cpuMsPerCsr)} CSRs per CPU-second; cores: ${availableParallelism()}, load average ${loadavg()[0]!.toFixed(1)}; citadel_server_success_cert_issuance_count=${issued}`);

client.close();
server.forceShutdown();
await citadel.stop();
rmSync(dataDir, { recursive: true, force: true });
