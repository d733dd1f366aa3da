// Trace context on the wire: B3 (multi headers x-b3-traceid, x-b3-spanid,
// x-b3-parentspanid, x-b3-sampled, x-b3-flags, and the single `b3` header)
// and W3C Trace Context (traceparent, tracestate). Extraction prefers B3, as
// Envoy's Zipkin tracer does, then traceparent; injection writes B3 multi
// headers and traceparent (and `b3` when the request came with one), so apps
// instrumented with either keep one trace.

import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export interface SpanContext {
  /** 16 or 32 lower-case hex digits. */
  readonly traceId: string;
  /** 16 hex digits. */
  readonly spanId: string;
  readonly parentId: string | undefined;
  /** undefined: no decision upstream; the tracer decides. */
  readonly sampled: boolean | undefined;
}

const HEX16 = /^[0-9a-f]{16}$/;
const TRACE_ID = /^(?:[0-9a-f]{16}|[0-9a-f]{32})$/;
const ZERO = /^0+$/;

const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

function sampledOf(v: string | undefined, flags: string | undefined): boolean | undefined {
  if (flags === '1') return true;
  if (v === undefined) return undefined;
  if (v === '1' || v === 'true' || v === 'd') return true;
  if (v === '0' || v === 'false') return false;
  return undefined;
}

/** The single `b3` header: {TraceId}-{SpanId}[-{SamplingState}[-{ParentSpanId}]] or just a sampling state. */
function fromB3Single(b3: string): SpanContext | { sampled: boolean | undefined } | undefined {
  const parts = b3.trim().toLowerCase().split('-');
  if (parts.length === 1) return { sampled: sampledOf(parts[0], undefined) };
  const [traceId, spanId, sampled, parentId] = parts;
  if (!TRACE_ID.test(traceId) || !HEX16.test(spanId) || ZERO.test(traceId)) return undefined;
  if (parentId !== undefined && !HEX16.test(parentId)) return undefined;
  return { traceId, spanId, parentId, sampled: sampledOf(sampled, undefined) };
}

/** traceparent: 00-{32 hex trace id}-{16 hex parent id}-{2 hex flags}. */
function fromTraceparent(tp: string): SpanContext | undefined {
  const m = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})/.exec(tp.trim().toLowerCase());
  if (!m || m[1] === 'ff' || ZERO.test(m[2]) || ZERO.test(m[3])) return undefined;
  return { traceId: m[2], spanId: m[3], parentId: undefined, sampled: (parseInt(m[4], 16) & 1) === 1 };
}

/**
 * The incoming context, or only a sampling decision (B3 `x-b3-sampled` alone
 * or `b3: 0`), or undefined. Malformed headers are ignored, as Envoy does.
 */
export function extractContext(h: IncomingHttpHeaders): SpanContext | { sampled: boolean | undefined } | undefined {
  const traceId = one(h['x-b3-traceid'])?.toLowerCase();
  const spanId = one(h['x-b3-spanid'])?.toLowerCase();
  if (traceId !== undefined && spanId !== undefined) {
    const parentId = one(h['x-b3-parentspanid'])?.toLowerCase();
    if (TRACE_ID.test(traceId) && !ZERO.test(traceId) && HEX16.test(spanId) && (parentId === undefined || HEX16.test(parentId))) {
      return { traceId, spanId, parentId, sampled: sampledOf(one(h['x-b3-sampled']), one(h['x-b3-flags'])) };
    }
  }
  const b3 = one(h.b3);
  if (b3) {
    const c = fromB3Single(b3);
    if (c) return c;
  }
  const tp = one(h.traceparent);
  if (tp) {
    const c = fromTraceparent(tp);
    if (c) return c;
  }
  const s = one(h['x-b3-sampled']);
  return s === undefined ? undefined : { sampled: sampledOf(s, one(h['x-b3-flags'])) };
}

export const newSpanId = (): string => randomBytes(8).toString('hex');
export const newTraceId = (bits128: boolean): string => randomBytes(bits128 ? 16 : 8).toString('hex');

/** Writes `ctx` into request headers for the next hop (tracestate passes through untouched). */
export function injectContext(h: IncomingHttpHeaders, ctx: SpanContext): void {
  const sampled = ctx.sampled ? '1' : '0';
  h['x-b3-traceid'] = ctx.traceId;
  h['x-b3-spanid'] = ctx.spanId;
  if (ctx.parentId) h['x-b3-parentspanid'] = ctx.parentId;
  else delete h['x-b3-parentspanid'];
  h['x-b3-sampled'] = sampled;
  delete h['x-b3-flags'];
  if (h.b3 !== undefined) h.b3 = `${ctx.traceId}-${ctx.spanId}-${sampled}${ctx.parentId ? `-${ctx.parentId}` : ''}`;
  h.traceparent = `00-${ctx.traceId.padStart(32, '0')}-${ctx.spanId}-${ctx.sampled ? '01' : '00'}`;
}
