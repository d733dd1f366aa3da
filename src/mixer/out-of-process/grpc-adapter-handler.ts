// A Handler whose adapter runs in another process: each check, quota and
// report becomes one of Istio's template calls (HandleListEntry,
// HandleQuota, HandleMetric ...) on the adapter's gRPC channel. Check and
// quota carry a deadline, so a slow or dead adapter fails the check closed
// (the dispatcher turns the rejection into UNAVAILABLE) and never holds a
// request. Reports are batched: one call per template per dispatch.

import { randomBytes } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import type { CheckResult, Handler, Instance, QuotaArgs, QuotaResult } from '../adapters/adapter.ts';
import { MixerError, MixerErrorCode } from '../errors.ts';
import type { PackedConfig } from './adapter-config.ts';
import type { AdapterConnection } from './adapter-connections.ts';
import { ADAPTER_PROTO_OPTIONS, TEMPLATE_CALLS, adapterType } from './adapter-protos.ts';
import type { TemplateCall } from './adapter-protos.ts';
import { checkResultFrom, instanceMessage, quotaResultFrom } from './wire-instance.ts';

/** Time and size limits of one handler's calls. */
export interface AdapterCallLimits {
  /** Deadline of a check or quota call (ms). Below the sidecar's 2 s ext_authz timeout. */
  readonly checkTimeoutMs: number;
  /** Deadline of a report call (ms). */
  readonly reportTimeoutMs: number;
  /** Instances per report call; a larger batch is split. */
  readonly maxInstancesPerReportCall: number;
  /** Report calls waiting for the adapter; more are refused instead of queued. */
  readonly maxReportCallsInFlight: number;
}

export const DEFAULT_CALL_LIMITS: AdapterCallLimits = { checkTimeoutMs: 1000, reportTimeoutMs: 5000, maxInstancesPerReportCall: 1000, maxReportCallsInFlight: 16 };

export interface GrpcAdapterHandlerOptions {
  readonly templates: readonly string[];
  readonly config: PackedConfig;
  readonly connection: AdapterConnection;
  readonly limits: AdapterCallLimits;
}

type Wire = Record<string, unknown>;

function unary(client: grpc.Client, call: TemplateCall, request: Wire, timeoutMs: number): Promise<Wire> {
  const req = adapterType(call.requestType);
  const res = adapterType(call.responseType);
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      call.path,
      (m: Wire) => Buffer.from(req.encode(req.fromObject(m)).finish()),
      (b: Buffer) => res.toObject(res.decode(b), ADAPTER_PROTO_OPTIONS) as Wire,
      request,
      { deadline: Date.now() + timeoutMs },
      (err, reply) => {
        if (err) reject(new MixerError(MixerErrorCode.ADAPTER_CALL, `out-of-process adapter call ${call.path} to ${client.getChannel().getTarget()} failed: ${err.details || err.message}`, { cause: err }));
        else resolve(reply!);
      },
    );
  });
}

/** Builds the handler; its methods exist only for the varieties its templates have. */
export function grpcAdapterHandler(options: GrpcAdapterHandlerOptions): Handler {
  const { connection, config, limits } = options;
  const calls = options.templates.map((t) => TEMPLATE_CALLS[t]!);
  // dedup_id: unique per call, so an adapter can drop a duplicate delivery.
  const idPrefix = randomBytes(6).toString('hex');
  let sequence = 0;
  const dedupId = (): string => `${idPrefix}-${++sequence}`;
  let inFlight = 0;
  let closed = false;
  const callFor = (template: string): TemplateCall => {
    const c = TEMPLATE_CALLS[template];
    if (!c || !options.templates.includes(template)) throw new MixerError(MixerErrorCode.ADAPTER_CALL, `the adapter does not handle template ${template}`);
    if (closed) throw new MixerError(MixerErrorCode.ADAPTER_CALL, 'the handler is closed');
    return c;
  };

  const handler: Handler = {
    close() {
      if (closed) return;
      closed = true;
      connection.release();
    },
  };
  if (calls.some((c) => c.variety === 'check')) {
    handler.handleCheck = async (instance: Instance): Promise<CheckResult> => {
      const c = callFor(instance.template);
      const reply = await unary(connection.client, c, { instance: instanceMessage(instance), adapter_config: config, dedup_id: dedupId() }, limits.checkTimeoutMs);
      return checkResultFrom(reply);
    };
  }
  if (calls.some((c) => c.variety === 'quota')) {
    handler.handleQuota = async (instance: Instance, args: QuotaArgs): Promise<QuotaResult> => {
      const c = callFor(instance.template);
      const request = {
        instance: instanceMessage(instance),
        adapter_config: config,
        dedup_id: dedupId(),
        quota_request: { quotas: { [instance.name]: { amount: String(args.amount), best_effort: args.bestEffort } } },
      };
      return quotaResultFrom(await unary(connection.client, c, request, limits.checkTimeoutMs), instance.name);
    };
  }
  if (calls.some((c) => c.variety === 'report')) {
    handler.handleReport = async (instances: readonly Instance[]): Promise<void> => {
      const byTemplate = new Map<string, Wire[]>();
      for (const inst of instances) {
        callFor(inst.template);
        let list = byTemplate.get(inst.template);
        if (!list) byTemplate.set(inst.template, (list = []));
        list.push(instanceMessage(inst));
      }
      const pending: Promise<Wire>[] = [];
      for (const [template, msgs] of byTemplate) {
        for (let i = 0; i < msgs.length; i += limits.maxInstancesPerReportCall) {
          if (inFlight >= limits.maxReportCallsInFlight) {
            pending.push(Promise.reject(new MixerError(MixerErrorCode.ADAPTER_CALL, `${inFlight} report calls are waiting for the adapter; ${msgs.length - i} ${template} instances dropped`)));
            break;
          }
          inFlight++;
          const chunk = msgs.slice(i, i + limits.maxInstancesPerReportCall);
          pending.push(unary(connection.client, TEMPLATE_CALLS[template]!, { instances: chunk, adapter_config: config, dedup_id: dedupId() }, limits.reportTimeoutMs).finally(() => void inFlight--));
        }
      }
      const failed = (await Promise.allSettled(pending)).filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed.length > 0) throw failed[0]!.reason;
    };
  }
  return handler;
}
