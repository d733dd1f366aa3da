// `prometheus`: turns metric instances into Prometheus counters, gauges and
// histograms ("distributions") on a prom-client Registry, named
// `<namespace>_<name>` (namespace `istio` unless given) with the instance's
// dimensions as labels. Istio's mixer/adapter/prometheus.

import { Counter, Gauge, Histogram, linearBuckets, exponentialBuckets } from 'prom-client';
import type { Registry } from 'prom-client';
import { formatValue } from '../../api/index.ts';
import type { AttributeValue } from '../../api/index.ts';
import type { AdapterInfo, Instance, ParamError } from './adapter.ts';
import { isRecord } from './adapter.ts';

export interface MetricInfo {
  /** The full Prometheus name, namespace included. */
  readonly fullName: string;
  /** The metric instance that feeds it (`name` or `name.namespace`). */
  readonly instanceName: string;
  readonly description: string;
  readonly kind: 'COUNTER' | 'GAUGE' | 'DISTRIBUTION';
  readonly labelNames: readonly string[];
  readonly buckets?: readonly number[];
}

export interface PrometheusParams {
  readonly metrics: readonly MetricInfo[];
}

type PromMetric = Counter | Gauge | Histogram;
interface Shared {
  metric: PromMetric;
  signature: string;
  refs: number;
}
// One registry holds a name once; handlers for the same metric share it, so a
// new config can be built before the old one is closed.
const shared = new WeakMap<Registry, Map<string, Shared>>();

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

export const prometheusAdapter: AdapterInfo<PrometheusParams> = {
  name: 'prometheus',
  description: 'Exposes metric instances as Prometheus metrics',
  templates: ['metric'],
  defaultConfig: { metrics: [] },
  validate(raw) {
    const errors: ParamError[] = [];
    const metrics: MetricInfo[] = [];
    const list = raw.metrics ?? [];
    if (!Array.isArray(list)) return { errors: [{ path: 'metrics', message: 'must be a list' }] };
    const names = new Set<string>();
    list.forEach((m: unknown, i) => {
      const at = `metrics[${i}]`;
      if (!isRecord(m)) return void errors.push({ path: at, message: 'must be an object' });
      const namespace = m.namespace === undefined || m.namespace === '' ? 'istio' : String(m.namespace);
      const fullName = `${namespace}_${String(m.name ?? '')}`;
      if (typeof m.name !== 'string' || !NAME.test(fullName)) errors.push({ path: `${at}.name`, message: `"${String(m.name)}" is not a valid Prometheus metric name` });
      else if (names.has(fullName)) errors.push({ path: `${at}.name`, message: `duplicate metric ${fullName}` });
      names.add(fullName);
      if (typeof m.instanceName !== 'string' || m.instanceName === '') errors.push({ path: `${at}.instanceName`, message: 'must name the metric instance' });
      const kind = m.kind;
      if (kind !== 'COUNTER' && kind !== 'GAUGE' && kind !== 'DISTRIBUTION') errors.push({ path: `${at}.kind`, message: 'must be COUNTER, GAUGE or DISTRIBUTION' });
      const labelNames = m.labelNames ?? m.label_names ?? [];
      if (!Array.isArray(labelNames) || !labelNames.every((l) => typeof l === 'string' && /^[a-zA-Z_][a-zA-Z0-9_]*$/.test(l))) {
        errors.push({ path: `${at}.labelNames`, message: 'must be a list of Prometheus label names' });
      }
      let buckets: number[] | undefined;
      if (kind === 'DISTRIBUTION') {
        buckets = bucketsOf(m.buckets, `${at}.buckets`, errors);
      }
      metrics.push({
        fullName,
        instanceName: String(m.instanceName ?? ''),
        description: typeof m.description === 'string' && m.description !== '' ? m.description : fullName,
        kind: kind as MetricInfo['kind'],
        labelNames: labelNames as string[],
        ...(buckets ? { buckets } : {}),
      });
    });
    if (errors.length > 0) return { errors };
    return { params: { metrics }, errors };
  },
  build(params, env) {
    const registry = env.metrics as unknown as Registry;
    let byName = shared.get(registry);
    if (!byName) {
      byName = new Map();
      shared.set(registry, byName);
    }
    const table = byName;
    const acquired: Shared[] = [];
    // instance name -> the metrics it feeds
    const feeds = new Map<string, { info: MetricInfo; metric: PromMetric }[]>();
    for (const info of params.metrics) {
      const signature = JSON.stringify([info.kind, info.labelNames, info.buckets ?? [], info.description]);
      let entry = table.get(info.fullName);
      if (!entry || entry.signature !== signature) {
        if (entry) registry.removeSingleMetric(info.fullName);
        entry = { metric: createMetric(info, registry), signature, refs: 0 };
        table.set(info.fullName, entry);
      }
      entry.refs++;
      acquired.push(entry);
      for (const key of instanceKeys(info.instanceName)) {
        const list = feeds.get(key) ?? [];
        list.push({ info, metric: entry.metric });
        feeds.set(key, list);
      }
    }
    return {
      handleReport(instances: readonly Instance[]) {
        for (const inst of instances) {
          const targets = feeds.get(inst.name) ?? feeds.get(inst.name.split('.')[0]!);
          if (!targets) continue;
          const value = toNumber(inst.fields.value as AttributeValue | undefined);
          if (value === undefined) continue;
          const dims = inst.fields.dimensions as ReadonlyMap<string, AttributeValue> | undefined;
          for (const { info, metric } of targets) {
            const labels: Record<string, string> = {};
            for (const l of info.labelNames) {
              const v = dims?.get(l);
              labels[l] = v === undefined ? '' : formatValue(v);
            }
            if (info.kind === 'COUNTER') (metric as Counter).inc(labels, value);
            else if (info.kind === 'GAUGE') (metric as Gauge).set(labels, value);
            else (metric as Histogram).observe(labels, value);
          }
        }
      },
      close() {
        for (const entry of acquired) {
          entry.refs--;
          if (entry.refs === 0) {
            for (const [name, e] of table) {
              if (e === entry) {
                table.delete(name);
                registry.removeSingleMetric(name);
              }
            }
          }
        }
        acquired.length = 0;
      },
    };
  },
};

function instanceKeys(name: string): string[] {
  const parts = name.split('.');
  // `requestcount.metric.istio-system` (Istio 1.0's name.kind.namespace) is `requestcount.istio-system`.
  if (parts.length === 3) return [`${parts[0]}.${parts[2]}`];
  return [name];
}

function toNumber(v: AttributeValue | undefined): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v))) return Number(v);
  return undefined;
}

function createMetric(info: MetricInfo, registry: Registry): PromMetric {
  const common = { name: info.fullName, help: info.description, labelNames: [...info.labelNames], registers: [registry] };
  if (info.kind === 'COUNTER') return new Counter(common);
  if (info.kind === 'GAUGE') return new Gauge(common);
  return new Histogram({ ...common, buckets: [...(info.buckets ?? [])] });
}

/** Istio's bucket definitions: explicitBuckets.bounds, linearBuckets or exponentialBuckets. */
function bucketsOf(raw: unknown, path: string, errors: ParamError[]): number[] | undefined {
  if (raw === undefined) return [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
  if (!isRecord(raw)) return void errors.push({ path, message: 'must be an object' });
  const explicit = raw.explicitBuckets;
  if (isRecord(explicit)) {
    const bounds = explicit.bounds;
    if (!Array.isArray(bounds) || bounds.length === 0 || !bounds.every((b, i) => typeof b === 'number' && (i === 0 || b > (bounds[i - 1] as number)))) {
      return void errors.push({ path: `${path}.explicitBuckets.bounds`, message: 'must be a non-empty, increasing list of numbers' });
    }
    return bounds as number[];
  }
  const linear = raw.linearBuckets;
  if (isRecord(linear)) {
    const n = Number(linear.numFiniteBuckets);
    const width = Number(linear.width);
    if (!(n > 0) || !(width > 0)) return void errors.push({ path: `${path}.linearBuckets`, message: 'numFiniteBuckets and width must be positive' });
    return linearBuckets(Number(linear.offset ?? 0), width, n);
  }
  const exp = raw.exponentialBuckets;
  if (isRecord(exp)) {
    const n = Number(exp.numFiniteBuckets);
    const factor = Number(exp.growthFactor);
    const scale = Number(exp.scale);
    if (!(n > 0) || !(factor > 1) || !(scale > 0)) return void errors.push({ path: `${path}.exponentialBuckets`, message: 'numFiniteBuckets and scale must be positive, growthFactor above 1' });
    return exponentialBuckets(scale, factor, n);
  }
  errors.push({ path, message: 'set one of explicitBuckets, linearBuckets or exponentialBuckets' });
  return undefined;
}
