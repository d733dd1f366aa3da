// Istio's standard metrics (istio_requests_total, istio_request_duration_
// milliseconds, istio_request_bytes, istio_response_bytes, istio_tcp_*) with
// Istio's label set and buckets, one registry per proxy (per StatsStore),
// rendered after Envoy's stats on /stats/prometheus and the stats port.
// A series is keyed by its rendered label string; label values come only from
// workload metadata, cluster names and the fixed request facts Istio uses
// (code, flags, protocol), and the number of series is capped.

import type { Socket } from 'node:net';
import type { StatsStore } from '../stats.ts';
import type { WorkloadInfo } from './peer-metadata.ts';

/** Istio's default buckets for istio_request_duration_milliseconds. */
export const DURATION_BUCKETS_MS: readonly number[] = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];
/** Istio's buckets for the size histograms: 1 B .. 1 GB, by powers of ten. */
export const SIZE_BUCKETS_BYTES: readonly number[] = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000];

/** Series beyond this many are dropped and counted (istio_stats_series_overflow). */
export const MAX_SERIES = 10_000;

class Histogram {
  readonly bounds: readonly number[];
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Array<number>(bounds.length).fill(0);
  }
  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]) i++;
    if (i < b.length) this.counts[i]++;
    this.sum += v;
    this.count++;
  }
  render(name: string, labels: string, out: string[]): void {
    let cum = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      cum += this.counts[i];
      out.push(`${name}_bucket{${labels},le="${this.bounds[i]}"} ${cum}`);
    }
    out.push(`${name}_bucket{${labels},le="+Inf"} ${this.count}`, `${name}_sum{${labels}} ${this.sum}`, `${name}_count{${labels}} ${this.count}`);
  }
}

/** One label set of the HTTP families; callers may hold it and record into it directly. */
export interface HttpSeries {
  requests: number;
  readonly duration: Histogram;
  readonly requestBytes: Histogram;
  readonly responseBytes: Histogram;
}

interface TcpSeries {
  opened: number;
  closed: number;
  sent: number;
  received: number;
  /** Open connections, so a scrape includes bytes moved so far (Istio reports open connections periodically). */
  readonly open: Map<Socket, { read: number; written: number }>;
}

export const escapeLabel = (v: string): string => v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));

/** The label pairs of one side's workload, rendered once per distinct workload. */
export function workloadLabels(side: 'source' | 'destination', w: WorkloadInfo): string {
  const e = escapeLabel;
  if (side === 'source')
    return `source_workload="${e(w.workload)}",source_canonical_service="${e(w.canonicalService)}",source_canonical_revision="${e(w.canonicalRevision)}",source_workload_namespace="${e(w.namespace)}",source_app="${e(w.app)}",source_version="${e(w.version)}",source_cluster="${e(w.cluster)}"`;
  return `destination_workload="${e(w.workload)}",destination_workload_namespace="${e(w.namespace)}",destination_canonical_service="${e(w.canonicalService)}",destination_canonical_revision="${e(w.canonicalRevision)}",destination_app="${e(w.app)}",destination_version="${e(w.version)}",destination_cluster="${e(w.cluster)}"`;
}

/** The standard metrics of one proxy. */
export class IstioMetrics {
  private readonly http = new Map<string, HttpSeries>();
  private readonly tcp = new Map<string, TcpSeries>();
  overflow = 0;

  /** Records one finished HTTP/gRPC request under `labels` (the rendered label set, without braces). */
  recordRequest(labels: string, durationMs: number, requestBytes: number, responseBytes: number): void {
    const s = this.httpSeries(labels);
    if (s) observeRequest(s, durationMs, requestBytes, responseBytes);
  }

  /**
   * The series for `labels`, created on first use; undefined (and counted
   * as overflow) past MAX_SERIES. Hot paths keep the result so a request
   * costs no label string and no lookup by it.
   */
  httpSeries(labels: string): HttpSeries | undefined {
    let s = this.http.get(labels);
    if (!s) {
      if (this.http.size + this.tcp.size >= MAX_SERIES) {
        this.overflow++;
        return undefined;
      }
      s = { requests: 0, duration: new Histogram(DURATION_BUCKETS_MS), requestBytes: new Histogram(SIZE_BUCKETS_BYTES), responseBytes: new Histogram(SIZE_BUCKETS_BYTES) };
      this.http.set(labels, s);
    }
    return s;
  }

  private tcpSeries(labels: string): TcpSeries | undefined {
    let s = this.tcp.get(labels);
    if (!s) {
      if (this.http.size + this.tcp.size >= MAX_SERIES) {
        this.overflow++;
        return undefined;
      }
      this.tcp.set(labels, (s = { opened: 0, closed: 0, sent: 0, received: 0, open: new Map() }));
    }
    return s;
  }

  /** A TCP connection opened; its bytes count until `tcpClosed`. */
  tcpOpened(labels: string, socket: Socket): void {
    const s = this.tcpSeries(labels);
    if (!s) return;
    s.opened++;
    s.open.set(socket, { read: 0, written: 0 });
  }

  tcpClosed(labels: string, socket: Socket): void {
    const s = this.tcp.get(labels);
    const seen = s?.open.get(socket);
    if (!s || !seen) return;
    s.open.delete(socket);
    s.closed++;
    s.received += socket.bytesRead - seen.read;
    s.sent += socket.bytesWritten - seen.written;
  }

  /** Prometheus text of every family (empty families are left out). */
  render(): string {
    const out: string[] = [];
    if (this.http.size > 0) {
      out.push('# TYPE istio_requests_total counter');
      for (const [l, s] of this.http) out.push(`istio_requests_total{${l}} ${s.requests}`);
      const hist = (name: string, pick: (s: HttpSeries) => Histogram): void => {
        out.push(`# TYPE ${name} histogram`);
        for (const [l, s] of this.http) pick(s).render(name, l, out);
      };
      hist('istio_request_duration_milliseconds', (s) => s.duration);
      hist('istio_request_bytes', (s) => s.requestBytes);
      hist('istio_response_bytes', (s) => s.responseBytes);
    }
    if (this.tcp.size > 0) {
      // Bytes of open connections so far move into the totals at scrape time.
      for (const s of this.tcp.values()) {
        for (const [sock, seen] of s.open) {
          s.received += sock.bytesRead - seen.read;
          s.sent += sock.bytesWritten - seen.written;
          seen.read = sock.bytesRead;
          seen.written = sock.bytesWritten;
        }
      }
      const family = (name: string, pick: (s: TcpSeries) => number): void => {
        out.push(`# TYPE ${name} counter`);
        for (const [l, s] of this.tcp) out.push(`${name}{${l}} ${pick(s)}`);
      };
      family('istio_tcp_connections_opened_total', (s) => s.opened);
      family('istio_tcp_connections_closed_total', (s) => s.closed);
      family('istio_tcp_received_bytes_total', (s) => s.received);
      family('istio_tcp_sent_bytes_total', (s) => s.sent);
    }
    if (this.overflow > 0) out.push('# TYPE istio_stats_series_overflow_total counter', `istio_stats_series_overflow_total ${this.overflow}`);
    return out.length ? `${out.join('\n')}\n` : '';
  }
}

/** Counts one finished request in a series found with httpSeries(). */
export function observeRequest(s: HttpSeries, durationMs: number, requestBytes: number, responseBytes: number): void {
  s.requests++;
  s.duration.observe(durationMs);
  s.requestBytes.observe(requestBytes);
  s.responseBytes.observe(responseBytes);
}

const registries = new WeakMap<StatsStore, IstioMetrics>();

/** The proxy's registry (one per StatsStore), created and exposed on first use. */
export function istioMetricsFor(store: StatsStore): IstioMetrics {
  let m = registries.get(store);
  if (!m) {
    const metrics = (m = new IstioMetrics());
    registries.set(store, m);
    store.addPrometheusSource(() => metrics.render());
  }
  return m;
}
