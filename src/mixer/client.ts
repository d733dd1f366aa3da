// A Mixer client for services that call Mixer directly (without a proxy):
// Check over ext_authz v3, Quota over RLS v3, Report over Istio 1.4's
// Report API (istio.mixer.v1.Mixer/Report, dictionary-encoded, typed by the
// built-in vocabulary: IP addresses as bytes, durations as Durations).
// Reports are batched: report() buffers, and a batch goes out when it is
// full or on flush().

import * as grpc from '@grpc/grpc-js';
import type { AttributeValue } from '../api/index.ts';
import { AttributeVocabulary, formatValue } from '../api/index.ts';
import type { MixerReportClient, ReportBag } from '../xds/index.ts';
import { encodeReports, loadXdsProtos, mixerReportClient } from '../xds/index.ts';
import { QUOTA_DESCRIPTOR_KEY, fromStruct } from './envoy-attributes.ts';
import { MixerError, MixerErrorCode } from './errors.ts';
import { AUTHORIZATION_SERVICE, CHECK_CACHE_METADATA, RATE_LIMIT_SERVICE } from './mixer.ts';
import { REPORT_LIMITS } from './report-decoder.ts';

export type Attributes = Readonly<Record<string, AttributeValue>>;

export interface CheckReply {
  readonly allowed: boolean;
  /** gRPC status code: 0 OK, 7 PERMISSION_DENIED, 5 NOT_FOUND, ... */
  readonly code: number;
  readonly message: string;
  readonly validDurationMs: number;
  readonly validUseCount: number;
  readonly referencedAttributes: readonly string[];
}

export interface MixerClientOptions {
  /** `host:port` of Mixer's gRPC server. */
  readonly address: string;
  /** Reports per batch before one is sent without waiting for flush(). Default 100. */
  readonly reportBatchSize?: number;
  readonly credentials?: grpc.ChannelCredentials;
  readonly deadlineMs?: number;
}

/** Contract: one channel for all three services (grpc-js shares it per target); close() flushes pending reports first. */
export class MixerClient {
  readonly #authz: grpc.Client;
  readonly #rls: grpc.Client;
  readonly #reports: MixerReportClient;
  readonly #typeOf: (name: string) => string | undefined;
  readonly #batchSize: number;
  readonly #deadlineMs: number;
  #pending: Attributes[] = [];

  constructor(options: MixerClientOptions) {
    const protos = loadXdsProtos();
    const creds = options.credentials ?? grpc.credentials.createInsecure();
    this.#authz = new (protos.service(AUTHORIZATION_SERVICE))(options.address, creds);
    // The three share one channel: grpc-js reuses subchannels for the same target and options.
    this.#rls = new (protos.service(RATE_LIMIT_SERVICE))(options.address, creds);
    this.#reports = mixerReportClient(options.address, creds);
    const vocabulary = AttributeVocabulary.builtin();
    this.#typeOf = (name) => vocabulary.typeOf(name);
    this.#batchSize = options.reportBatchSize ?? 100;
    this.#deadlineMs = options.deadlineMs ?? 5000;
  }

  /** Check the request described by `attributes`. */
  async check(attributes: Attributes): Promise<CheckReply> {
    const context_extensions: Record<string, string> = {};
    for (const [k, v] of Object.entries(attributes)) context_extensions[k] = formatValue(v);
    const res = await this.unary(this.#authz, 'Check', { attributes: { context_extensions } });
    const hints = (fromStruct(res.dynamic_metadata)[CHECK_CACHE_METADATA] ?? {}) as Record<string, unknown>;
    const code = Number(res.status?.code ?? 0);
    return {
      allowed: code === 0,
      code,
      message: String(res.status?.message ?? ''),
      validDurationMs: Number(hints.valid_duration_ms ?? 0),
      validUseCount: Number(hints.valid_use_count ?? 0),
      referencedAttributes: (hints.referenced_attributes as string[] | undefined) ?? [],
    };
  }

  /** Asks for `amount` of the quota instance `quota`; true when granted. */
  async quota(quota: string, attributes: Attributes = {}, amount = 1): Promise<boolean> {
    const entries = [{ key: QUOTA_DESCRIPTOR_KEY, value: quota }];
    for (const [k, v] of Object.entries(attributes)) {
      if (v instanceof Map) for (const [mk, mv] of v) entries.push({ key: `${k}.${mk}`, value: String(mv) });
      else entries.push({ key: k, value: formatValue(v) });
    }
    const res = await this.unary(this.#rls, 'ShouldRateLimit', { domain: 'mixer', descriptors: [{ entries }], hits_addend: amount });
    return res.overall_code === 'OK';
  }

  /** Buffers one report; a full batch is sent right away. */
  report(attributes: Attributes): Promise<void> {
    this.#pending.push(attributes);
    return this.#pending.length >= this.#batchSize ? this.flush() : Promise.resolve();
  }

  /** Sends buffered reports as ReportRequests (one unless a batch exceeds Mixer's message bound). */
  async flush(): Promise<void> {
    if (this.#pending.length === 0) return;
    const batch = this.#pending;
    this.#pending = [];
    const bags: ReportBag[] = batch.map((attrs) => new Map(Object.entries(attrs)));
    const { messages, tooLarge } = encodeReports(bags, REPORT_LIMITS.maxMessageBytes, { typeOf: this.#typeOf });
    if (tooLarge > 0) throw new MixerError(MixerErrorCode.REPORT, `${tooLarge} report(s) larger than ${REPORT_LIMITS.maxMessageBytes} bytes were not sent`);
    await Promise.all(messages.map((m) => new Promise<void>((resolve, reject) => {
      this.#reports.Report(m.bytes, { deadline: Date.now() + this.#deadlineMs }, (err) =>
        err ? reject(new MixerError(MixerErrorCode.RPC, `Mixer report failed: ${err.message}`, { cause: err })) : resolve(),
      );
    })));
  }

  async close(): Promise<void> {
    await this.flush().catch(() => undefined);
    this.#authz.close();
    this.#rls.close();
    this.#reports.close();
  }

  private unary(client: grpc.Client, method: string, request: unknown): Promise<any> {
    return new Promise((resolve, reject) => {
      (client as any)[method](request, { deadline: Date.now() + this.#deadlineMs }, (err: grpc.ServiceError | null, res: unknown) =>
        err ? reject(new MixerError(MixerErrorCode.RPC, `Mixer ${method} failed: ${err.message}`, { cause: err })) : resolve(res),
      );
    });
  }
}
