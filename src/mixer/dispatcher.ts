// The request path over one dispatch table: Check (every matching rule's
// check instances to their handlers; the first denial wins), Quota (a named
// quota instance, or the QuotaSpecs bound to the destination), and Report
// (report instances grouped per handler). Stateless: everything it reads
// comes from the table and the bag.

import { formatValue } from '../api/index.ts';
import type { CheckResult, Handler, Instance, QuotaResult } from './adapters/adapter.ts';
import { StatusCode } from './adapters/adapter.ts';
import type { AttributeBag } from './attribute-bag.ts';
import type { DispatchTable, HeaderOperation, HandlerEntry } from './dispatch-table.ts';
import { buildInstance, ruleApplies } from './dispatch-table.ts';

/** A header edit Mixer asks the proxy to make. */
export interface HeaderEdit {
  readonly name: string;
  readonly values: readonly string[];
  readonly operation: HeaderOperation['operation'];
}

/** The outcome of Check, with the caching hints the proxy may use. */
export interface CheckOutcome extends CheckResult {
  /** Attributes the outcome depends on: a cached answer is valid for requests equal in these. */
  readonly referencedAttributes: readonly string[];
  readonly requestHeaderEdits: readonly HeaderEdit[];
  readonly responseHeaderEdits: readonly HeaderEdit[];
}

export interface QuotaOutcome extends QuotaResult {
  /** The quota instances charged and what each granted. */
  readonly quotas: readonly { readonly name: string; readonly requested: number; readonly granted: number }[];
}

/** Caching hints when no rule limits them (Istio's defaults were similar). */
const DEFAULT_VALID_DURATION_MS = 60_000;
const DEFAULT_VALID_USE_COUNT = 10_000;

export async function dispatchCheck(table: DispatchTable, bag: AttributeBag): Promise<CheckOutcome> {
  let denied: CheckResult | undefined;
  let validDurationMs = DEFAULT_VALID_DURATION_MS;
  let validUseCount = DEFAULT_VALID_USE_COUNT;
  const requestHeaderEdits: HeaderEdit[] = [];
  const responseHeaderEdits: HeaderEdit[] = [];
  for (const rule of table.rules) {
    if (!ruleApplies(rule, table.rootNamespace, bag)) continue;
    for (const action of rule.actions) {
      const handle = action.handler.handler.handleCheck;
      if (!handle) continue;
      for (const entry of action.instances) {
        if (entry.template.variety !== 'check') continue;
        const result = await callCheck(action.handler, handle, buildInstance(entry, bag));
        validDurationMs = Math.min(validDurationMs, result.validDurationMs);
        validUseCount = Math.min(validUseCount, result.validUseCount);
        if (result.code !== StatusCode.OK && !denied) denied = result;
      }
    }
    requestHeaderEdits.push(...edits(rule.requestHeaderOperations, bag));
    responseHeaderEdits.push(...edits(rule.responseHeaderOperations, bag));
  }
  return {
    code: denied?.code ?? StatusCode.OK,
    message: denied?.message ?? '',
    validDurationMs,
    validUseCount,
    referencedAttributes: table.referencedAttributes,
    requestHeaderEdits,
    responseHeaderEdits,
  };
}

async function callCheck(entry: HandlerEntry, handle: NonNullable<Handler['handleCheck']>, instance: Instance): Promise<CheckResult> {
  try {
    return await handle.call(entry.handler, instance);
  } catch (err) {
    // A failing adapter fails closed, as Istio's Mixer did.
    return { code: StatusCode.UNAVAILABLE, message: `${entry.name}: ${(err as Error).message}`, validDurationMs: 0, validUseCount: 0 };
  }
}

function edits(ops: readonly HeaderOperation[], bag: AttributeBag): HeaderEdit[] {
  return ops.map((op) => ({
    name: op.name,
    operation: op.operation,
    values: op.values.flatMap((e) => {
      const v = e.evaluate(bag);
      return v === undefined ? [] : [formatValue(v)];
    }),
  }));
}

/**
 * Charges `amount` of each quota: the named instance when `quota` is given,
 * else the quotas the QuotaSpecs bound to the request's destination select.
 * Granted is the smallest fraction granted (all-or-nothing unless bestEffort).
 */
export async function dispatchQuota(table: DispatchTable, bag: AttributeBag, quota: string | undefined, amount: number, bestEffort = false): Promise<QuotaOutcome> {
  const wanted: { name: string; amount: number }[] = [];
  if (quota !== undefined) wanted.push({ name: quota.includes('.') ? quota : `${quota}.${table.rootNamespace}`, amount });
  else wanted.push(...quotasFromSpecs(table, bag, amount));
  const quotas: { name: string; requested: number; granted: number }[] = [];
  let validDurationMs = Number.POSITIVE_INFINITY;
  let ratio = 1;
  for (const q of wanted) {
    let granted = q.amount;
    for (const rule of table.rules) {
      if (!ruleApplies(rule, table.rootNamespace, bag)) continue;
      for (const action of rule.actions) {
        const handle = action.handler.handler.handleQuota;
        if (!handle) continue;
        for (const entry of action.instances) {
          if (entry.template.variety !== 'quota' || entry.name !== q.name) continue;
          const result = await handle.call(action.handler.handler, buildInstance(entry, bag), { amount: q.amount, bestEffort });
          granted = Math.min(granted, result.granted);
          validDurationMs = Math.min(validDurationMs, result.validDurationMs);
        }
      }
    }
    quotas.push({ name: q.name, requested: q.amount, granted });
    ratio = Math.min(ratio, q.amount === 0 ? 1 : granted / q.amount);
  }
  return { granted: Math.floor(ratio * amount), validDurationMs: Number.isFinite(validDurationMs) ? validDurationMs : 0, quotas };
}

function quotasFromSpecs(table: DispatchTable, bag: AttributeBag, amount: number): { name: string; amount: number }[] {
  const host = bag.get('destination.service.host');
  const out: { name: string; amount: number }[] = [];
  for (const binding of table.quotaBindings) {
    if (binding.host !== '*' && binding.host !== host) continue;
    for (const rule of binding.rules) {
      const matches = rule.clauses.length === 0 || rule.clauses.some((clause) => clause.every((c) => {
        const v = bag.get(c.attribute);
        return v !== undefined && c.test(formatValue(v));
      }));
      if (matches) for (const q of rule.quotas) out.push({ name: q.quota, amount: q.charge * amount });
    }
  }
  return out;
}

/**
 * Sends the report instances of every matching rule to their handlers, one
 * call per handler per batch. Handler failures are returned, never thrown.
 */
export async function dispatchReport(table: DispatchTable, bags: readonly AttributeBag[]): Promise<{ handler: string; error: unknown }[]> {
  const perHandler = new Map<HandlerEntry, Instance[]>();
  for (const bag of bags) {
    for (const rule of table.rules) {
      if (!ruleApplies(rule, table.rootNamespace, bag)) continue;
      for (const action of rule.actions) {
        if (!action.handler.handler.handleReport) continue;
        for (const entry of action.instances) {
          if (entry.template.variety !== 'report') continue;
          let list = perHandler.get(action.handler);
          if (!list) perHandler.set(action.handler, (list = []));
          list.push(buildInstance(entry, bag));
        }
      }
    }
  }
  const failures: { handler: string; error: unknown }[] = [];
  for (const [entry, instances] of perHandler) {
    try {
      await entry.handler.handleReport!(instances);
    } catch (error) {
      failures.push({ handler: entry.name, error });
    }
  }
  return failures;
}
