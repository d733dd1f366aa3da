// Mixer as a control-plane module: follows Galley's snapshots, keeps the
// current dispatch table (the last good one when a snapshot's policy config
// is unusable), and serves the data path on gRPC:
//   envoy.service.auth.v3.Authorization/Check            -> Check
//   envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit -> Quota
//   envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs -> Report (batched, async)
//   istio.mixer.v1.Mixer/Report (Istio 1.4's dictionary-encoded batches) -> Report (async)
// The same three operations are methods for in-process callers.

import * as grpc from '@grpc/grpc-js';
import { Counter, Gauge } from 'prom-client';
import type { AttributeValue } from '../api/index.ts';
import type { Logger, Registry } from '../common/index.ts';
import { silentLogger } from '../common/index.ts';
import { Registry as PromRegistry } from '../common/metrics.ts';
import type { ConfigSnapshot } from '../galley/index.ts';
import { loadXdsProtos, mixerReportServiceDefinition } from '../xds/index.ts';
import type { AdapterEnv, AdapterInfo } from './adapters/adapter.ts';
import { StatusCode } from './adapters/adapter.ts';
import { BUILTIN_ADAPTERS, adapterRegistry } from './adapters/index.ts';
import { AttributeBag } from './attribute-bag.ts';
import type { ConfigProblem, DispatchTable } from './dispatch-table.ts';
import { buildDispatchTable } from './dispatch-table.ts';
import type { CheckOutcome, HeaderEdit, QuotaOutcome } from './dispatcher.ts';
import { dispatchCheck, dispatchQuota, dispatchReport } from './dispatcher.ts';
import { attributesFromAccessLog, attributesFromCheckRequest, attributesFromDescriptor, toStruct } from './envoy-attributes.ts';
import { MixerError, MixerErrorCode } from './errors.ts';
import { REPORT_LIMITS, bagsFromReport } from './report-decoder.ts';

export const AUTHORIZATION_SERVICE = 'envoy.service.auth.v3.Authorization';
export const RATE_LIMIT_SERVICE = 'envoy.service.ratelimit.v3.RateLimitService';
export const ACCESS_LOG_SERVICE = 'envoy.service.accesslog.v3.AccessLogService';

/** The dynamic_metadata namespace of CheckResponse caching hints (see docs/mixer.md). */
export const CHECK_CACHE_METADATA = 'istio.mixer';

export interface SnapshotSource {
  subscribe(listener: (snapshot: ConfigSnapshot) => void): () => void;
}

export interface MixerOptions {
  readonly snapshots: SnapshotSource;
  /** Rules here apply to every request; elsewhere only to their namespace's destinations. Default `istio-system`. */
  readonly rootNamespace?: string;
  /** The adapters compiled in; the built-in five by default. */
  readonly adapters?: readonly AdapterInfo<any>[];
  /** Where adapters register metrics (prometheus); the process registry in the control plane. */
  readonly metrics?: Registry;
  /** Clock for adapters (memquota windows); Date.now by default. */
  readonly now?: () => number;
  /** Output of line adapters (stdio); process.stdout/stderr by default. */
  readonly write?: (stream: 'stdout' | 'stderr', line: string) => void;
  readonly log?: Logger;
}

/**
 * Contract: after start() the current table reflects the newest snapshot
 * whose policy config compiles; problems() lists what kept the newest one
 * out. Check/quota/report never throw for bad input; report returns once the
 * batch is queued, and flushReports() waits for the queue to drain.
 */
export class Mixer {
  readonly #options: MixerOptions;
  readonly #adapters: ReadonlyMap<string, AdapterInfo<any>>;
  readonly #log: Logger;
  readonly #metrics: Registry;
  readonly #now: () => number;
  #table: DispatchTable | undefined;
  #problems: readonly ConfigProblem[] = [];
  #unsubscribe: (() => void) | undefined;
  #reportQueue: AttributeBag[][] = [];
  #draining: Promise<void> | undefined;
  #stopped = false;
  readonly #stats: { checks: Counter; quotas: Counter; rlsCalls: Counter; prefetched: Counter; reports: Counter; version: Gauge; problems: Gauge };

  constructor(options: MixerOptions) {
    this.#options = options;
    this.#adapters = adapterRegistry(options.adapters ?? BUILTIN_ADAPTERS);
    this.#log = options.log ?? silentLogger();
    this.#metrics = options.metrics ?? new PromRegistry();
    this.#now = options.now ?? Date.now;
    const registers = [this.#metrics];
    this.#stats = {
      checks: new Counter({ name: 'mixer_check_total', help: 'Check calls, by gRPC status code of the answer', labelNames: ['code'], registers }),
      quotas: new Counter({ name: 'mixer_quota_total', help: 'Quota calls, by outcome (granted, limited)', labelNames: ['outcome'], registers }),
      rlsCalls: new Counter({ name: 'mixer_rls_calls_total', help: 'RLS ShouldRateLimit calls, by whether the client asked for an allotment (prefetch)', labelNames: ['prefetch'], registers }),
      prefetched: new Counter({ name: 'mixer_quota_prefetched_total', help: 'Requests granted ahead in RLS quota allotments', registers }),
      reports: new Counter({ name: 'mixer_report_attribute_bags_total', help: 'Attribute bags received for Report', registers }),
      version: new Gauge({ name: 'mixer_config_snapshot_version', help: 'Version of the snapshot the current dispatch table was built from', registers }),
      problems: new Gauge({ name: 'mixer_config_problems', help: 'Problems that kept the newest snapshot out (0 when it was taken)', registers }),
    };
  }

  async start(): Promise<void> {
    if (this.#unsubscribe) throw new Error('Mixer started twice');
    this.#unsubscribe = this.#options.snapshots.subscribe((snapshot) => this.applySnapshot(snapshot));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    await this.flushReports();
    const table = this.#table;
    this.#table = undefined;
    for (const h of table?.handlers.values() ?? []) await Promise.resolve(h.handler.close()).catch(() => undefined);
  }

  /** The current dispatch table (undefined before the first good snapshot). */
  table(): DispatchTable | undefined {
    return this.#table;
  }

  /** Why the newest snapshot's config was not taken (empty when it was). */
  problems(): readonly ConfigProblem[] {
    return this.#problems;
  }

  /** Builds a table from `snapshot` and swaps it in, or keeps the last good one and logs each bad object. */
  applySnapshot(snapshot: ConfigSnapshot): void {
    const previous = this.#table;
    const result = buildDispatchTable(snapshot, {
      adapters: this.#adapters,
      rootNamespace: this.#options.rootNamespace ?? 'istio-system',
      ...(previous ? { previous } : {}),
      env: (handlerName) => this.adapterEnv(handlerName),
    });
    this.#stats.problems.set(result.problems.length);
    if (!result.table) {
      this.#problems = result.problems;
      for (const p of result.problems) {
        this.#log.warn({ code: p.code, object: p.object, path: p.path, version: snapshot.version }, `policy config rejected: ${p.message}`);
      }
      this.#log.warn({ code: MixerErrorCode.CONFIG, version: snapshot.version, keeping: previous?.version ?? null }, 'keeping the last good Mixer config');
      return;
    }
    this.#table = result.table;
    this.#problems = [];
    this.#stats.version.set(snapshot.version);
    // Handlers the new table did not take over are closed after the swap.
    const kept = new Set([...result.table.handlers.values()].map((h) => h.handler));
    for (const h of previous?.handlers.values() ?? []) {
      if (!kept.has(h.handler)) void Promise.resolve().then(() => h.handler.close()).catch((err: unknown) => this.#log.warn({ err, handler: h.name }, 'closing a handler failed'));
    }
    this.#log.info({ version: snapshot.version, handlers: result.table.handlers.size, instances: result.table.instances.size, rules: result.table.rules.length }, 'Mixer config applied');
  }

  private adapterEnv(handlerName: string): AdapterEnv {
    const write = this.#options.write ?? ((stream: 'stdout' | 'stderr', line: string) => void process[stream].write(`${line}\n`));
    return { now: this.#now, metrics: this.#metrics, write, handlerName };
  }

  /** Check: OK, or the first denial of any matching rule's check instances. */
  async check(bag: AttributeBag): Promise<CheckOutcome> {
    const table = this.#table;
    if (!table) return { code: StatusCode.OK, message: '', validDurationMs: 0, validUseCount: 0, referencedAttributes: [], requestHeaderEdits: [], responseHeaderEdits: [] };
    const outcome = await dispatchCheck(table, bag);
    this.#stats.checks.inc({ code: String(outcome.code) });
    return outcome;
  }

  /** Quota: `amount` of the named quota instance, or of the QuotaSpecs bound to the destination; limited when less than `needed` is granted. */
  async quota(bag: AttributeBag, quota: string | undefined, amount: number, bestEffort = false, needed = amount): Promise<QuotaOutcome> {
    const table = this.#table;
    if (!table) return { granted: amount, validDurationMs: 0, quotas: [] };
    const outcome = await dispatchQuota(table, bag, quota, amount, bestEffort);
    this.#stats.quotas.inc({ outcome: outcome.granted < needed ? 'limited' : 'granted' });
    return outcome;
  }

  /** Report: queues the bags; adapters see them asynchronously, in order. */
  report(bags: readonly AttributeBag[]): void {
    if (this.#stopped || bags.length === 0) return;
    this.#stats.reports.inc(bags.length);
    this.#reportQueue.push([...bags]);
    this.#draining ??= this.drain();
  }

  /** Resolves once every queued report has been dispatched. */
  async flushReports(): Promise<void> {
    while (this.#draining) await this.#draining;
  }

  private async drain(): Promise<void> {
    // Yield first, so the RPC that queued the batch is answered before adapters run.
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      while (this.#reportQueue.length > 0) {
        const batch = this.#reportQueue.shift()!;
        const table = this.#table;
        if (!table) continue;
        for (const f of await dispatchReport(table, batch)) this.#log.warn({ handler: f.handler, err: f.error }, 'a report handler failed');
      }
    } finally {
      this.#draining = undefined;
    }
  }

  /** Adds the Authorization (ext_authz v3), RateLimitService (RLS v3), AccessLogService (ALS v3) and Mixer (Report) services. */
  register(server: grpc.Server): void {
    const protos = loadXdsProtos();
    server.addService(protos.serviceDefinition(AUTHORIZATION_SERVICE), {
      Check: (call: grpc.ServerUnaryCall<any, any>, callback: grpc.sendUnaryData<any>) => {
        this.handleCheck(call.request).then((res) => callback(null, res), (err: Error) => callback({ code: grpc.status.INTERNAL, details: err.message }));
      },
    });
    server.addService(protos.serviceDefinition(RATE_LIMIT_SERVICE), {
      ShouldRateLimit: (call: grpc.ServerUnaryCall<any, any>, callback: grpc.sendUnaryData<any>) => {
        let prefetch: number | undefined;
        try {
          prefetch = prefetchAmount(call.metadata.get(QUOTA_PREFETCH_METADATA));
        } catch (err) {
          callback({ code: grpc.status.INVALID_ARGUMENT, details: (err as Error).message });
          return;
        }
        this.handleRateLimit(call.request, prefetch).then((res) => callback(null, res), (err: Error) => callback({ code: grpc.status.INTERNAL, details: err.message }));
      },
    });
    server.addService(rawAccessLogService(), {
      StreamAccessLogs: (call: grpc.ServerReadableStream<any, any>, callback: grpc.sendUnaryData<any>) => {
        let identifier: any;
        call.on('data', (msg: any) => {
          // Envoy sends the identifier on the first message of a stream only.
          if (msg.identifier) identifier = msg.identifier;
          const table = this.#table;
          const vocabulary = table?.vocabulary;
          if (!vocabulary) return;
          const entries = (msg.http_logs?.log_entry ?? []) as any[];
          if (entries.length > 0) this.report(entries.map((e) => attributesFromAccessLog(e, identifier, vocabulary)));
        });
        call.on('end', () => callback(null, {}));
        call.on('error', () => undefined);
      },
    });
    server.addService(mixerReportServiceDefinition(reportRequestBytes), {
      Report: (call: grpc.ServerUnaryCall<any, any>, callback: grpc.sendUnaryData<any>) => {
        const request = call.request as Buffer;
        if (request.length > REPORT_LIMITS.maxMessageBytes) {
          callback({ code: grpc.status.INVALID_ARGUMENT, details: `${MixerErrorCode.REPORT}: ReportRequest: ${request.length} bytes, more than ${REPORT_LIMITS.maxMessageBytes}` });
          return;
        }
        const vocabulary = this.#table?.vocabulary;
        if (!vocabulary) {
          callback(null, {});
          return;
        }
        let bags: AttributeBag[];
        try {
          bags = bagsFromReport(request, vocabulary);
        } catch (err) {
          callback({ code: grpc.status.INVALID_ARGUMENT, details: `${MixerErrorCode.REPORT}: ${(err as Error).message}` });
          return;
        }
        // Answered before the adapters run (report() queues): a slow adapter never holds a proxy's call.
        this.report(bags);
        callback(null, {});
      },
    });
  }

  private async handleCheck(request: any): Promise<any> {
    const vocabulary = this.#table?.vocabulary;
    if (!vocabulary) return checkResponse({ code: StatusCode.OK, message: '', validDurationMs: 0, validUseCount: 0, referencedAttributes: [], requestHeaderEdits: [], responseHeaderEdits: [] });
    const bag = attributesFromCheckRequest(request, vocabulary, this.#now());
    return checkResponse(await this.check(bag));
  }

  /**
   * RLS v3. With `prefetch` (the client asked for an allotment), each
   * descriptor takes up to `prefetch` requests' worth from its quotas with
   * bestEffort (really deducted, so the limit holds across proxies) and the
   * answer's `quota` grants the smallest of them until `valid_until`; an
   * over-limit answer always says how long it holds (duration_until_reset).
   */
  private async handleRateLimit(request: any, prefetch: number | undefined): Promise<any> {
    this.#stats.rlsCalls.inc({ prefetch: prefetch === undefined ? 'false' : 'true' });
    const table = this.#table;
    const hits = Number(request.hits_addend ?? 0) || 1;
    const descriptors = (request.descriptors ?? []) as any[];
    if (!table) return { overall_code: 'OK', statuses: descriptors.map(() => ({ code: 'OK' })) };
    const now = this.#now();
    const base: Record<string, AttributeValue | undefined> = { 'context.time': new Date(now) };
    const asked = prefetch === undefined ? hits : hits * Math.max(1, prefetch);
    let over = false;
    let grantedRequests = Number.POSITIVE_INFINITY;
    let validMs = MAX_QUOTA_VALIDITY_MS;
    const statuses = [];
    for (const d of descriptors) {
      const { quota, bag } = attributesFromDescriptor(d.entries ?? [], table.vocabulary, base);
      const outcome = await this.quota(bag, quota, asked, prefetch !== undefined, hits);
      const limited = outcome.granted < hits;
      over ||= limited;
      grantedRequests = Math.min(grantedRequests, Math.floor(outcome.granted / hits));
      // A window's tokens are only good within it; a pool that never refills (0) still expires them.
      if (outcome.validDurationMs > 0) validMs = Math.min(validMs, outcome.validDurationMs);
      const resetMs = outcome.validDurationMs > 0 ? outcome.validDurationMs : prefetch !== undefined ? MAX_QUOTA_VALIDITY_MS : 0;
      statuses.push({ code: limited ? 'OVER_LIMIT' : 'OK', ...(resetMs > 0 ? { duration_until_reset: msToDuration(resetMs) } : {}) });
    }
    const response: any = { overall_code: over ? 'OVER_LIMIT' : 'OK', statuses };
    if (prefetch !== undefined && !over && Number.isFinite(grantedRequests)) {
      this.#stats.prefetched.inc(grantedRequests);
      response.quota = { requests: grantedRequests, valid_until: msToTimestamp(now + validMs) };
    }
    return response;
  }
}

/**
 * AccessLogService with messages handed over as protobufjs decoded them,
 * without proto-loader's toObject pass (defaults for every field of every
 * entry): that pass cost more than the decoding. attributesFromAccessLog
 * reads either form.
 */
function rawAccessLogService(): grpc.ServiceDefinition {
  const protos = loadXdsProtos();
  const method = protos.serviceDefinition(ACCESS_LOG_SERVICE).StreamAccessLogs!;
  const type = protos.root.lookupType('envoy.service.accesslog.v3.StreamAccessLogsMessage');
  return { StreamAccessLogs: { ...method, requestDeserialize: (bytes: Buffer) => type.decode(bytes) } } as grpc.ServiceDefinition;
}

/** ReportRequests stay bytes: bagsFromReport reads them (report-decoder.ts). */
function reportRequestBytes(bytes: Buffer): Buffer {
  return bytes;
}

/** Tokens of a grant (or an over-limit answer) expire after at most this. */
export const MAX_QUOTA_VALIDITY_MS = 10_000;
/** The largest allotment one RLS call may ask for. */
export const MAX_QUOTA_PREFETCH = 100_000;
/** gRPC request metadata of RLS calls: the allotment the client asks for (src/proxy/filters/http/ratelimit). */
export const QUOTA_PREFETCH_METADATA = 'x-mesh-quota-prefetch';

/** The allotment asked for in `x-mesh-quota-prefetch`, undefined without it. Throws on a bad value. */
export function prefetchAmount(values: readonly (string | Buffer)[]): number | undefined {
  if (values.length === 0) return undefined;
  const text = String(values[0]);
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > MAX_QUOTA_PREFETCH) {
    throw new MixerError(MixerErrorCode.QUOTA_PREFETCH, `RateLimitRequest metadata ${QUOTA_PREFETCH_METADATA}: "${text.slice(0, 40)}" is not an integer from 1 to ${MAX_QUOTA_PREFETCH}`);
  }
  return n;
}

function msToTimestamp(ms: number): { seconds: string; nanos: number } {
  return { seconds: String(Math.floor(ms / 1000)), nanos: Math.floor((ms % 1000) * 1e6) };
}

function msToDuration(ms: number): { seconds: string; nanos: number } {
  return { seconds: String(Math.floor(ms / 1000)), nanos: Math.round((ms % 1000) * 1e6) };
}

function headerOptions(edits: readonly HeaderEdit[]): any[] {
  return edits.filter((e) => e.operation !== 'REMOVE').flatMap((e) =>
    e.values.map((value, i) => ({
      header: { key: e.name, value },
      append_action: e.operation === 'APPEND' || i > 0 ? 'APPEND_IF_EXISTS_OR_ADD' : 'OVERWRITE_IF_EXISTS_OR_ADD',
    })),
  );
}

/** The ext_authz v3 CheckResponse for an outcome, with Mixer's caching hints in dynamic_metadata. */
export function checkResponse(outcome: CheckOutcome): any {
  const dynamic_metadata = toStruct({
    [CHECK_CACHE_METADATA]: {
      valid_duration_ms: outcome.validDurationMs,
      valid_use_count: outcome.validUseCount,
      referenced_attributes: [...outcome.referencedAttributes],
    },
  });
  if (outcome.code === StatusCode.OK) {
    return {
      status: { code: 0, message: '' },
      ok_response: {
        headers: headerOptions(outcome.requestHeaderEdits),
        headers_to_remove: outcome.requestHeaderEdits.filter((e) => e.operation === 'REMOVE').map((e) => e.name),
        response_headers_to_add: headerOptions(outcome.responseHeaderEdits),
      },
      dynamic_metadata,
    };
  }
  const httpStatus = outcome.code === StatusCode.UNAUTHENTICATED ? 401 : outcome.code === StatusCode.RESOURCE_EXHAUSTED ? 429 : outcome.code === StatusCode.UNAVAILABLE ? 503 : 403;
  return {
    status: { code: outcome.code, message: outcome.message },
    denied_response: {
      status: { code: httpStatus },
      headers: headerOptions(outcome.responseHeaderEdits),
      body: outcome.message,
    },
    dynamic_metadata,
  };
}

export { AttributeBag };
