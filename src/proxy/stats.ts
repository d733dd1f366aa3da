// Envoy-style stats: flat dotted names (`cluster.<name>.upstream_rq_total`),
// counters and gauges held as plain objects so the hot path increments a
// field it fetched once, with no lookup per request. Rendered as Envoy's text
// (/stats) and as Prometheus with Envoy's tag extraction (/stats/prometheus).

export interface Counter {
  value: number;
}

export interface Gauge {
  value: number;
}

export class StatsStore {
  private readonly counters = new Map<string, Counter>();
  private readonly gauges = new Map<string, Gauge>();
  private readonly scopes = new Map<string, readonly [string, string]>();
  private readonly expositions: Array<() => string> = [];

  /**
   * Adds metric families rendered elsewhere (Istio's standard metrics,
   * telemetry/istio-metrics.ts) to the Prometheus output, after Envoy's.
   */
  addPrometheusSource(render: () => string): void {
    this.expositions.push(render);
  }

  /**
   * Declares a scope (`cluster.<name>.`) whose name Prometheus output turns
   * into a label (`envoy_cluster_name`), as Envoy's tag extractors do.
   */
  scope(kind: 'cluster' | 'http' | 'listener' | 'tcp', name: string): string {
    const prefix = `${kind}.${name}.`;
    const label = { cluster: 'envoy_cluster_name', http: 'envoy_http_conn_manager_prefix', listener: 'envoy_listener_address', tcp: 'envoy_tcp_prefix' }[kind];
    this.scopes.set(prefix, [label, name]);
    return prefix;
  }

  counter(name: string): Counter {
    let c = this.counters.get(name);
    if (!c) this.counters.set(name, (c = { value: 0 }));
    return c;
  }

  gauge(name: string): Gauge {
    let g = this.gauges.get(name);
    if (!g) this.gauges.set(name, (g = { value: 0 }));
    return g;
  }

  /** Current value of a counter or gauge (0 when never touched). */
  get(name: string): number {
    return this.counters.get(name)?.value ?? this.gauges.get(name)?.value ?? 0;
  }

  /** Envoy's /stats text: `name: value`, sorted. */
  text(filter?: RegExp): string {
    const lines: string[] = [];
    for (const [n, c] of [...this.counters, ...this.gauges]) if (!filter || filter.test(n)) lines.push(`${n}: ${c.value}`);
    return lines.sort().join('\n') + '\n';
  }

  json(filter?: RegExp): { stats: Array<{ name: string; value: number }> } {
    const stats = [...this.counters, ...this.gauges].filter(([n]) => !filter || filter.test(n)).map(([name, c]) => ({ name, value: c.value }));
    stats.sort((a, b) => (a.name < b.name ? -1 : 1));
    return { stats };
  }

  /** Prometheus exposition with Envoy's default tag extraction. */
  prometheus(): string {
    const families = new Map<string, { type: string; samples: string[] }>();
    const add = (name: string, value: number, type: string): void => {
      const { metric, labels } = prometheusName(name, this.scopes);
      let f = families.get(metric);
      if (!f) families.set(metric, (f = { type, samples: [] }));
      const l = labels.length ? `{${labels.map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`).join(',')}}` : '';
      f.samples.push(`${metric}${l} ${value}`);
    };
    for (const [n, c] of this.counters) add(n, c.value, 'counter');
    for (const [n, g] of this.gauges) add(n, g.value, 'gauge');
    let out = '';
    for (const [metric, f] of [...families].sort((a, b) => (a[0] < b[0] ? -1 : 1))) out += `# TYPE ${metric} ${f.type}\n${f.samples.sort().join('\n')}\n`;
    for (const render of this.expositions) out += render();
    return out;
  }
}

function prometheusName(name: string, scopes: ReadonlyMap<string, readonly [string, string]>): { metric: string; labels: Array<[string, string]> } {
  const labels: Array<[string, string]> = [];
  let rest = name;
  let scope = '';
  // The longest registered scope that prefixes the name becomes a label:
  // cluster names hold dots (`outbound|80||a.b.svc`), so no regex can split them.
  let best = '';
  for (const prefix of scopes.keys()) if (prefix.length > best.length && name.startsWith(prefix)) best = prefix;
  if (best) {
    const [label, value] = scopes.get(best)!;
    labels.push([label, value]);
    scope = best.slice(0, best.indexOf('.'));
    rest = name.slice(best.length);
  }
  // upstream_rq_200 -> upstream_rq{envoy_response_code="200"}; upstream_rq_2xx -> upstream_rq_xx{envoy_response_code_class="2"}
  const code = /^(.*_rq)_(\d{3})$/.exec(rest);
  const klass = /^(.*_rq)_(\d)xx$/.exec(rest);
  if (code) {
    rest = code[1];
    labels.push(['envoy_response_code', code[2]]);
  } else if (klass) {
    rest = `${klass[1]}_xx`;
    labels.push(['envoy_response_code_class', klass[2]]);
  }
  const full = scope ? `${scope}.${rest}` : rest;
  return { metric: `envoy_${full.replace(/[^a-zA-Z0-9_]/g, '_')}`, labels };
}
