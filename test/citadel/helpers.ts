// Shared setup for Citadel tests: a fake clock, a started Citadel serving the
// CA service over real TLS on 127.0.0.1:0, and raw gRPC calls to it.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { silentLogger } from '../../src/common/index.ts';
import { Registry } from '../../src/common/metrics.ts';
import { Citadel } from '../../src/citadel/index.ts';
import type { CitadelOptions } from '../../src/citadel/index.ts';
import { loadCaService } from '../../src/xds/index.ts';
import type { IstioCertificateResponse } from '../../src/xds/index.ts';
import { FakeClock as SharedFakeClock } from '../helpers/fake-clock.ts';

/** The shared fake clock, starting at the real time so certificates look current to TLS. */
export class FakeClock extends SharedFakeClock {
  constructor(start = Date.now()) {
    super(start);
  }
}

export const TRUST_DOMAIN = 'cluster.local';

export interface RunningCitadel {
  readonly citadel: Citadel;
  readonly address: string;
  readonly metrics: Registry;
  readonly dataDir: string;
  close(): Promise<void>;
}

export async function startCitadel(options: Partial<CitadelOptions> = {}): Promise<RunningCitadel> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'citadel-test-')));
  const metrics = new Registry();
  const citadel = new Citadel({ trustDomain: TRUST_DOMAIN, log: silentLogger(), metrics, ...options, dataDir });
  await citadel.start();
  const server = new grpc.Server();
  citadel.register(server);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', citadel.serverCredentials(), (err, p) => (err ? reject(err) : resolve(p))));
  return {
    citadel,
    address: `127.0.0.1:${port}`,
    metrics,
    dataDir,
    async close() {
      await citadel.stop();
      server.forceShutdown();
      if (!options.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export async function metricValue(registry: Registry, name: string): Promise<number> {
  const metric = await registry.getSingleMetric(name)?.get();
  return metric?.values[0]?.value ?? 0;
}

/** One raw CreateCertificate call; resolves with the chain or the gRPC error. */
export function createCertificate(
  address: string,
  rootsPem: string,
  request: { csr: string; validity_duration?: number },
  auth: { token?: string; clientKeyPem?: string; clientCertPem?: string } = {},
): Promise<{ chain?: string[]; error?: grpc.ServiceError }> {
  const { Client } = loadCaService();
  const creds = auth.clientKeyPem
    ? grpc.credentials.createSsl(Buffer.from(rootsPem), Buffer.from(auth.clientKeyPem), Buffer.from(auth.clientCertPem!))
    : grpc.credentials.createSsl(Buffer.from(rootsPem));
  const client = new Client(address, creds, { 'grpc.ssl_target_name_override': 'istiod.istio-system.svc', 'grpc.use_local_subchannel_pool': 1 });
  const metadata = new grpc.Metadata();
  if (auth.token !== undefined) metadata.set('authorization', `Bearer ${auth.token}`);
  return new Promise((resolve) => {
    (client as unknown as { CreateCertificate: (r: unknown, m: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, v?: IstioCertificateResponse) => void) => void })
      .CreateCertificate({ csr: request.csr, validity_duration: String(request.validity_duration ?? 0) }, metadata, { deadline: Date.now() + 10_000 }, (error, value) => {
        client.close();
        resolve(error ? { error } : { chain: value!.cert_chain });
      });
  });
}
