// Instances to the wire and results back: builds each template's InstanceMsg
// (Istio's template_handler_service.proto) from an Instance, typing dynamic
// fields as istio.policy.v1beta1.Value by the expression's declared type, and
// reads CheckResult / QuotaResult into Mixer's results.

import type { AttributeValue } from '../../api/index.ts';
import type { CheckResult, Instance, InstanceFieldTypes, InstanceValue, QuotaResult } from '../adapters/adapter.ts';

type Wire = Record<string, unknown>;

/** google.protobuf.Duration / Timestamp from milliseconds. */
function secondsNanos(ms: number): Wire {
  const seconds = Math.floor(ms / 1000);
  return { seconds: String(seconds), nanos: Math.round((ms - seconds * 1000) * 1e6) };
}

/** Milliseconds from a decoded google.protobuf.Duration (absent is 0). */
export function durationMs(d: unknown): number {
  if (!d || typeof d !== 'object') return 0;
  const { seconds, nanos } = d as { seconds?: string | number; nanos?: number };
  return Number(seconds ?? 0) * 1000 + Math.round((nanos ?? 0) / 1e6);
}

/** The network-order bytes of an IPv4 or IPv6 address in text form; undefined when malformed. */
export function ipBytes(text: string): Uint8Array | undefined {
  const v4 = (s: string): number[] | undefined => {
    const parts = s.split('.');
    if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return undefined;
    return parts.map(Number);
  };
  if (!text.includes(':')) {
    const b = v4(text);
    return b && Uint8Array.from(b);
  }
  // IPv6: an optional dotted IPv4 tail (::ffff:1.2.3.4) counts as two groups.
  let head = text;
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    const b = v4(text.slice(lastColon + 1));
    if (!b) return undefined;
    tail = b;
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = head.split('::');
  if (halves.length > 2) return undefined;
  const groups = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const left = groups(halves[0]!);
  const right = halves.length === 2 ? groups(halves[1]!) : [];
  const missing = 8 - left.length - right.length;
  if (missing < 0 || (halves.length === 1 && missing !== 0)) return undefined;
  const all = [...left, ...Array<string>(missing).fill('0'), ...right];
  if (all.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    const n = parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  });
  if (tail.length === 4) out.set(tail, 12);
  return out;
}

/**
 * An attribute value as istio.policy.v1beta1.Value, by its declared type;
 * for ANY (or no type) by its JavaScript shape. BYTES has no Value member and
 * is left out (undefined), like an absent value.
 */
export function wireValue(value: AttributeValue, type: string | undefined): Wire | undefined {
  switch (type) {
    case 'STRING': return { string_value: String(value) };
    case 'INT64': return { int64_value: String(Math.trunc(Number(value))) };
    case 'DOUBLE': return { double_value: Number(value) };
    case 'BOOL': return { bool_value: value === true };
    case 'IP_ADDRESS': {
      const bytes = typeof value === 'string' ? ipBytes(value) : value instanceof Uint8Array ? value : undefined;
      return bytes ? { ip_address_value: { value: bytes } } : undefined;
    }
    case 'TIMESTAMP': return value instanceof Date ? { timestamp_value: { value: secondsNanos(value.getTime()) } } : undefined;
    case 'DURATION': return typeof value === 'number' ? { duration_value: { value: secondsNanos(value) } } : undefined;
    case 'EMAIL_ADDRESS': return { email_address_value: { value: String(value) } };
    case 'DNS_NAME': return { dns_name_value: { value: String(value) } };
    case 'URI': return { uri_value: { value: String(value) } };
    case 'STRING_MAP': return value instanceof Map ? { string_map_value: { value: Object.fromEntries(value) } } : undefined;
    case 'BYTES': return undefined;
    default: break;
  }
  if (typeof value === 'string') return { string_value: value };
  if (typeof value === 'number') return Number.isInteger(value) ? { int64_value: String(value) } : { double_value: value };
  if (typeof value === 'boolean') return { bool_value: value };
  if (value instanceof Date) return { timestamp_value: { value: secondsNanos(value.getTime()) } };
  if (value instanceof Map) return { string_map_value: { value: Object.fromEntries(value) } };
  return undefined;
}

function valueMap(field: unknown, types: InstanceFieldTypes | string | undefined): Wire {
  const out: Wire = {};
  if (!(field instanceof Map)) return out;
  const typeOf = typeof types === 'object' ? types : {};
  for (const [k, v] of field as ReadonlyMap<string, AttributeValue>) {
    const w = wireValue(v, typeOf[k] as string | undefined);
    if (w) out[k] = w;
  }
  return out;
}

const text = (v: unknown): string => (v === undefined ? '' : v instanceof Date ? v.toISOString() : v instanceof Map ? JSON.stringify(Object.fromEntries(v)) : String(v));
const sub = (v: unknown): InstanceValue => (v && typeof v === 'object' && !(v instanceof Map) && !(v instanceof Date) && !(v instanceof Uint8Array) ? (v as InstanceValue) : {});
const subTypes = (t: InstanceFieldTypes | undefined, k: string): InstanceFieldTypes | undefined => (typeof t?.[k] === 'object' ? (t[k] as InstanceFieldTypes) : undefined);

/** The template's InstanceMsg for `instance` (fields by Istio's proto names). */
export function instanceMessage(instance: Instance): Wire {
  const f = instance.fields;
  const t = instance.types;
  const name = instance.name;
  switch (instance.template) {
    case 'metric': {
      const value = f['value'] === undefined ? undefined : wireValue(f['value'] as AttributeValue, t?.['value'] as string | undefined);
      return {
        name,
        ...(value ? { value } : {}),
        dimensions: valueMap(f['dimensions'], t?.['dimensions']),
        monitored_resource_type: text(f['monitoredResourceType']),
        monitored_resource_dimensions: valueMap(f['monitoredResourceDimensions'], t?.['monitoredResourceDimensions']),
      };
    }
    case 'logentry': {
      const ts = f['timestamp'];
      return {
        name,
        variables: valueMap(f['variables'], t?.['variables']),
        ...(ts instanceof Date ? { timestamp: { value: secondsNanos(ts.getTime()) } } : {}),
        severity: text(f['severity']),
        monitored_resource_type: text(f['monitoredResourceType']),
        monitored_resource_dimensions: valueMap(f['monitoredResourceDimensions'], t?.['monitoredResourceDimensions']),
      };
    }
    case 'listentry':
      return { name, value: text(f['value']) };
    case 'authorization': {
      const subject = sub(f['subject']);
      const action = sub(f['action']);
      const st = subTypes(t, 'subject');
      const at = subTypes(t, 'action');
      return {
        name,
        subject: { user: text(subject['user']), groups: text(subject['groups']), properties: valueMap(subject['properties'], st?.['properties']) },
        action: {
          namespace: text(action['namespace']), service: text(action['service']), method: text(action['method']), path: text(action['path']),
          properties: valueMap(action['properties'], at?.['properties']),
        },
      };
    }
    case 'quota':
      return { name, dimensions: valueMap(f['dimensions'], t?.['dimensions']) };
    default:
      // checknothing, reportnothing: the name is the whole payload.
      return { name };
  }
}

/** A decoded istio.mixer.adapter.model.v1beta1.CheckResult as Mixer's CheckResult. */
export function checkResultFrom(wire: Wire): CheckResult {
  const status = (wire['status'] ?? {}) as { code?: number; message?: string };
  return { code: status.code ?? 0, message: status.message ?? '', validDurationMs: durationMs(wire['valid_duration']), validUseCount: Number(wire['valid_use_count'] ?? 0) };
}

/** The grant for `instanceName` in a decoded QuotaResult (nothing granted when the adapter left it out). */
export function quotaResultFrom(wire: Wire, instanceName: string): QuotaResult {
  const r = ((wire['quotas'] ?? {}) as Record<string, { granted_amount?: string | number; valid_duration?: unknown }>)[instanceName];
  return { granted: Number(r?.granted_amount ?? 0), validDurationMs: durationMs(r?.valid_duration) };
}
