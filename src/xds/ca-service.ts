// Istio's CA service (istio.v1.auth.IstioCertificateService), loaded from
// src/xds/protos/ca.proto: the one wire contract between the agent and
// Citadel, so both sides import it from here.

import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import type { ServiceClientConstructor, ServiceDefinition } from '@grpc/grpc-js';

const require = createRequire(import.meta.url);
const protoLoader = require('@grpc/proto-loader') as typeof import('@grpc/proto-loader');

export const CA_SERVICE = 'istio.v1.auth.IstioCertificateService';

/** The request as grpc-js hands it over (keepCase, 64-bit integers as strings). */
export interface IstioCertificateRequest {
  readonly csr: string;
  /** Seconds; a decimal string when decoded, a number or string when sent. */
  readonly validity_duration: string | number;
  readonly metadata?: { readonly fields?: Record<string, unknown> } | null;
}

export interface IstioCertificateResponse {
  /** PEM certificates, the workload's first and the root last. */
  readonly cert_chain: string[];
}

export interface CaServiceProtos {
  readonly definition: ServiceDefinition;
  readonly Client: ServiceClientConstructor;
}

let loaded: CaServiceProtos | undefined;

/** Loads the CA service once per process. */
export function loadCaService(): CaServiceProtos {
  if (loaded) return loaded;
  const file = fileURLToPath(new URL('./protos/ca.proto', import.meta.url));
  const definition = protoLoader.loadSync(file, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { istio: { v1: { auth: { IstioCertificateService: ServiceClientConstructor } } } };
  const Client = pkg.istio.v1.auth.IstioCertificateService;
  loaded = { definition: Client.service, Client };
  return loaded;
}
