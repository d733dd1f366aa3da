// Sends finished spans to a Zipkin collector as JSON v2 (POST
// /api/v2/spans), in batches: a batch goes when min_flush_spans spans are
// buffered or at the flush interval, one POST at a time. The buffer is
// bounded; when it is full a span is dropped and counted. Stats follow
// Envoy's `tracing.zipkin.*` names (plus spans_dropped).

import { Agent, request } from 'node:http';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import type { Counter, StatsStore } from '../stats.ts';

/** A span in Zipkin's JSON v2 model. */
export interface ZipkinSpan {
  traceId: string;
  id: string;
  parentId?: string;
  name: string;
  kind: 'CLIENT' | 'SERVER';
  timestamp: number;
  duration: number;
  shared?: boolean;
  localEndpoint: { serviceName: string; ipv4?: string; ipv6?: string; port?: number };
  remoteEndpoint?: { ipv4?: string; ipv6?: string; port?: number };
  tags: Record<string, string>;
}

export interface ZipkinReporterOptions {
  readonly cluster: string;
  readonly endpoint: string;
  /** Host header of the POST (collector_hostname; the cluster name when empty). */
  readonly hostname: string;
  /** Envoy runtime tracing.zipkin.min_flush_spans (5). */
  readonly minFlushSpans?: number;
  /** Envoy runtime tracing.zipkin.flush_interval_ms (5000). */
  readonly flushIntervalMs?: number;
  /** Spans held at most before dropping (1000). */
  readonly maxBufferedSpans?: number;
}

export class ZipkinReporter {
  private readonly options: ZipkinReporterOptions;
  private readonly clusters: ClusterManager;
  private buffer: ZipkinSpan[] = [];
  private inFlight = false;
  private readonly timer: NodeJS.Timeout;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 1 });
  private readonly stats: Record<'spans_sent' | 'spans_dropped' | 'timer_flushed' | 'reports_sent' | 'reports_dropped' | 'reports_failed' | 'reports_skipped_no_cluster', Counter>;

  constructor(options: ZipkinReporterOptions, clusters: ClusterManager, store: StatsStore) {
    this.options = options;
    this.clusters = clusters;
    const c = (n: string): Counter => store.counter(`tracing.zipkin.${n}`);
    this.stats = { spans_sent: c('spans_sent'), spans_dropped: c('spans_dropped'), timer_flushed: c('timer_flushed'), reports_sent: c('reports_sent'), reports_dropped: c('reports_dropped'), reports_failed: c('reports_failed'), reports_skipped_no_cluster: c('reports_skipped_no_cluster') };
    this.timer = setInterval(() => {
      if (this.buffer.length === 0) return;
      this.stats.timer_flushed.value++;
      this.flush();
    }, options.flushIntervalMs ?? 5000);
    this.timer.unref();
  }

  report(span: ZipkinSpan): void {
    if (this.buffer.length >= (this.options.maxBufferedSpans ?? 1000)) {
      this.stats.spans_dropped.value++;
      return;
    }
    this.buffer.push(span);
    if (this.buffer.length >= (this.options.minFlushSpans ?? 5)) this.flush();
  }

  /** Posts what is buffered unless a POST is already in flight (the next flush takes the rest). */
  flush(): void {
    if (this.inFlight || this.buffer.length === 0) return;
    const host = this.clusters.get(this.options.cluster)?.pickHost();
    if (!host) {
      this.stats.reports_skipped_no_cluster.value++;
      this.stats.spans_dropped.value += this.buffer.length;
      this.buffer = [];
      return;
    }
    const spans = this.buffer;
    this.buffer = [];
    const body = JSON.stringify(spans);
    this.inFlight = true;
    const done = (ok: boolean): void => {
      if (!this.inFlight) return;
      this.inFlight = false;
      if (ok) {
        this.stats.reports_sent.value++;
        this.stats.spans_sent.value += spans.length;
      } else this.stats.reports_failed.value++;
      if (this.buffer.length >= (this.options.minFlushSpans ?? 5)) this.flush();
    };
    const req = request(
      { host: host.address, port: host.port, method: 'POST', path: this.options.endpoint, agent: this.agent, headers: { host: this.options.hostname, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.once('end', () => done((res.statusCode ?? 500) < 300));
        res.once('error', () => done(false));
      },
    );
    req.setTimeout(5000, () => req.destroy());
    req.once('error', () => done(false));
    req.end(body);
  }

  close(): void {
    clearInterval(this.timer);
    this.agent.destroy();
  }
}

const reporters = new WeakMap<StatsStore, Map<string, ZipkinReporter>>();

/** One reporter per proxy and collector, shared by every HCM config version that names it. */
export function zipkinReporterFor(options: ZipkinReporterOptions, clusters: ClusterManager, store: StatsStore): ZipkinReporter {
  let byKey = reporters.get(store);
  if (!byKey) reporters.set(store, (byKey = new Map()));
  const key = `${options.cluster} ${options.endpoint} ${options.hostname}`;
  let r = byKey.get(key);
  if (!r) byKey.set(key, (r = new ZipkinReporter(options, clusters, store)));
  return r;
}
