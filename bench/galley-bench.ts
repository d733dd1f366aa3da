// Galley benchmark (a command, not a test): `npm run bench:galley [-- --objects N --samples M]`.
// Reports
//  1. parse + validate + apply of N objects (default 10,000) into the durable
//     store: time, objects/s, RSS;
//  2. the delay from an acknowledged apply to a subscriber seeing the snapshot
//     that contains it (p50/p99), in-process and over gRPC (GalleyClient).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { istioKinds, istioTypeUrl, validateText } from '../src/api/index.ts';
import { silentLogger } from '../src/common/index.ts';
import { DurableStore, GalleyClient, GalleyDistributionServer, ingest, SnapshotDistributor } from '../src/galley/index.ts';
import type { ConfigSnapshot } from '../src/galley/index.ts';

const { values } = parseArgs({ options: { objects: { type: 'string', default: '10000' }, samples: { type: 'string', default: '200' }, 'debounce-ms': { type: 'string', default: '100' } } });
const total = Number(values.objects);
const samples = Number(values.samples);
const debounceMs = Number(values['debounce-ms']);

function virtualService(i: number): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: svc-${i}
  namespace: ns-${i % 100}
spec:
  hosts:
  - svc-${i}
  http:
  - match:
    - uri:
        prefix: /api/v${i % 3}
      headers:
        end-user:
          exact: user-${i}
    route:
    - destination:
        host: svc-${i}
        subset: v1
      weight: 80
    - destination:
        host: svc-${i}
        subset: v2
      weight: 20
    timeout: 3s
    retries:
      attempts: 2
      perTryTimeout: 1s
`;
}

function destinationRule(i: number): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: svc-${i}
  namespace: ns-${i % 100}
spec:
  host: svc-${i}
  trafficPolicy:
    loadBalancer:
      simple: LEAST_REQUEST
    connectionPool:
      http:
        http1MaxPendingRequests: 100
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
`;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;

async function measureDelay(label: string, store: DurableStore, waitFor: (revision: number) => Promise<void>): Promise<void> {
  const delays: number[] = [];
  for (let i = 0; i < samples; i++) {
    const started = performance.now();
    const { object } = await store.apply({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'probe', namespace: 'bench' }, spec: { hosts: ['probe'], http: [{ route: [{ destination: { host: `probe-${i}` } }] }] } });
    const applied = performance.now();
    await waitFor(Number(object.metadata.resourceVersion));
    delays.push(performance.now() - applied);
    if (i === 0 && applied - started > 1000) console.log('  (first apply was slow)');
  }
  delays.sort((a, b) => a - b);
  console.log(`  ${label.padEnd(34)} p50 ${percentile(delays, 50).toFixed(1)} ms   p99 ${percentile(delays, 99).toFixed(1)} ms   (n=${samples}, debounce ${debounceMs} ms)`);
}

/** Resolves when `latest()` reflects `revision`, checking on every snapshot. */
function snapshotWaiter(): { onSnapshot: (s: ConfigSnapshot) => void; waitFor: (revision: number) => Promise<void> } {
  let current = 0;
  let pending: { revision: number; resolve: () => void } | undefined;
  return {
    onSnapshot(s) {
      current = Math.max(current, s.revision);
      if (pending && current >= pending.revision) {
        pending.resolve();
        pending = undefined;
      }
    },
    waitFor(revision) {
      if (current >= revision) return Promise.resolve();
      return new Promise((resolve) => (pending = { revision, resolve }));
    },
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-bench-'));
  try {
    console.log(`Galley benchmark: ${total} objects (half VirtualService, half DestinationRule), Node ${process.version}`);
    const docs: string[] = [];
    for (let i = 0; i < total; i++) docs.push(i % 2 === 0 ? virtualService(i) : destinationRule(i));
    const text = docs.join('---\n');
    const rssBefore = process.memoryUsage().rss;

    let t = performance.now();
    const results = validateText(text, istioKinds, { file: 'bench.yaml' });
    const validateMs = performance.now() - t;
    const errors = results.filter((r) => r.diagnostics.some((d) => d.severity === 'error')).length;
    if (errors > 0) throw new Error(`${errors} generated objects are invalid`);

    const store = await DurableStore.open(join(dir, 'store'));
    t = performance.now();
    await ingest(store, istioKinds, results);
    const applyMs = performance.now() - t;
    const rssAfter = process.memoryUsage().rss;
    console.log(`  parse + validate                   ${validateMs.toFixed(0)} ms   (${((total / validateMs) * 1000).toFixed(0)} objects/s)`);
    console.log(`  apply to the durable store         ${applyMs.toFixed(0)} ms   (${((total / applyMs) * 1000).toFixed(0)} objects/s, each write committed with fsync)`);
    console.log(`  validate + apply total             ${(validateMs + applyMs).toFixed(0)} ms`);
    console.log(`  RSS                                ${mib(rssBefore)} before, ${mib(rssAfter)} after (${store.revision()} objects stored)`);

    const distributor = new SnapshotDistributor({ store, registry: istioKinds, debounceMs });
    await distributor.start();
    const local = snapshotWaiter();
    distributor.subscribe(local.onSnapshot);
    await measureDelay('apply -> in-process subscriber', store, local.waitFor);

    const server = new grpc.Server();
    new GalleyDistributionServer({ distributor, registry: istioKinds, log: silentLogger() }).register(server);
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    const vsType = istioTypeUrl(istioKinds.resolve('virtualservice')!);
    const client = new GalleyClient({ address: `127.0.0.1:${port}`, registry: istioKinds, typeUrls: [vsType] });
    const remote = snapshotWaiter();
    client.subscribe(remote.onSnapshot);
    await remote.waitFor(store.revision());
    await measureDelay('apply -> gRPC subscriber (xDS)', store, remote.waitFor);
    client.close();
    server.forceShutdown();
    distributor.stop();
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
