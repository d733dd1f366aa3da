// A real Prometheus server for tests: /usr/bin/prometheus (Debian's package,
// installed by CI through .ci/run) with a generated prometheus.yml that
// scrapes the targets a test gives it every second, its TSDB in a temp dir,
// and the HTTP API for queries (/api/v1/query) and target health
// (/api/v1/targets). Tests skip, saying how to install it, when it is absent.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { tempDir } from './processes.ts';

/** The binary; MESH_PROMETHEUS_BIN points elsewhere (another version, another distribution). */
export const PROMETHEUS_BIN = process.env.MESH_PROMETHEUS_BIN ?? '/usr/bin/prometheus';

/** Why Prometheus tests cannot run here, or undefined when they can (for `test(..., { skip })`). */
export function prometheusSkipReason(): string | undefined {
  try {
    accessSync(PROMETHEUS_BIN, constants.X_OK);
    return undefined;
  } catch {
    return `no Prometheus at ${PROMETHEUS_BIN}: apt-get install -y prometheus (or set MESH_PROMETHEUS_BIN)`;
  }
}

/** One scrape job: static `host:port` targets, all with the same metrics path. */
export interface ScrapeJob {
  readonly name: string;
  readonly targets: readonly string[];
  /** Default /metrics; Envoy-style proxies serve /stats/prometheus. */
  readonly metricsPath?: string;
}

/** One series of an instant vector: its labels (with `job` and `instance`) and value. */
export interface PromSample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** A scrape target as /api/v1/targets reports it. */
export interface PromTarget {
  readonly job: string;
  readonly instance: string;
  readonly scrapeUrl: string;
  readonly health: 'up' | 'down' | 'unknown';
  readonly lastError: string;
}

const START_ATTEMPTS = 5;
const READY_TIMEOUT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 10_000;

export class PrometheusServer {
  readonly url: string;
  private readonly child: ChildProcess;
  private readonly dir: string;
  private readonly output: string[];

  private constructor(url: string, child: ChildProcess, dir: string, output: string[]) {
    this.url = url;
    this.child = child;
    this.dir = dir;
    this.output = output;
  }

  /** Starts Prometheus on a free 127.0.0.1 port (another one if that port is taken meanwhile) and waits for /-/ready. */
  static async start(jobs: readonly ScrapeJob[]): Promise<PrometheusServer> {
    const dir = tempDir('mesh-prometheus-');
    try {
      const configFile = join(dir, 'prometheus.yml');
      writeFileSync(configFile, prometheusConfig(jobs));
      for (let attempt = 1; ; attempt++) {
        const port = await freeLoopbackPort();
        const output: string[] = [];
        const child = spawn(PROMETHEUS_BIN, [`--config.file=${configFile}`, `--web.listen-address=127.0.0.1:${port}`, `--storage.tsdb.path=${join(dir, 'data')}`, '--log.level=warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
        child.stdout!.on('data', (d: Buffer) => output.push(d.toString()));
        child.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
        const server = new PrometheusServer(`http://127.0.0.1:${port}`, child, dir, output);
        try {
          await server.waitReady();
          return server;
        } catch (err) {
          await server.kill();
          const portTaken = output.join('').includes('address already in use');
          if (!portTaken || attempt >= START_ATTEMPTS) throw err;
        }
      }
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** Evaluates an instant PromQL query now; a vector's series (a scalar is one series without labels). */
  async query(promql: string): Promise<PromSample[]> {
    const data = (await this.api(`/api/v1/query?query=${encodeURIComponent(promql)}`)) as { resultType: string; result: unknown };
    if (data.resultType === 'scalar') return [{ labels: {}, value: Number((data.result as [number, string])[1]) }];
    if (data.resultType !== 'vector') throw new Error(`Prometheus query ${promql}: a ${data.resultType}, not a vector`);
    return (data.result as { metric: Record<string, string>; value: [number, string] }[]).map((r) => ({ labels: r.metric, value: Number(r.value[1]) }));
  }

  /** The active scrape targets and their health. */
  async targets(): Promise<PromTarget[]> {
    const data = (await this.api('/api/v1/targets?state=active')) as { activeTargets: { labels: Record<string, string>; scrapeUrl: string; health: PromTarget['health']; lastError: string }[] };
    return data.activeTargets.map((t) => ({ job: t.labels.job ?? '', instance: t.labels.instance ?? '', scrapeUrl: t.scrapeUrl, health: t.health, lastError: t.lastError }));
  }

  /** Prometheus' own output so far (for failure messages). */
  log(): string {
    return this.output.join('');
  }

  /** Stops the server and removes its config and TSDB. */
  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async api(path: string): Promise<unknown> {
    const res = await fetch(this.url + path, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const body = (await res.json()) as { status: string; data?: unknown; error?: string };
    if (body.status !== 'success') throw new Error(`Prometheus ${path}: ${body.error ?? res.status}`);
    return body.data;
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`prometheus exited (${this.child.exitCode ?? this.child.signalCode}) before it was ready:\n${this.log()}`);
      const ready = await fetch(`${this.url}/-/ready`, { signal: AbortSignal.timeout(1_000) }).then((r) => r.ok, () => false);
      if (ready) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`prometheus not ready after ${READY_TIMEOUT_MS} ms:\n${this.log()}`);
  }

  private async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

/** prometheus.yml: one job per ScrapeJob, scraped every second. */
export function prometheusConfig(jobs: readonly ScrapeJob[]): string {
  // JSON is YAML: no YAML writer needed, and every string is quoted.
  const config = {
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    scrape_configs: jobs.map((j) => ({ job_name: j.name, metrics_path: j.metricsPath ?? '/metrics', static_configs: [{ targets: [...j.targets] }] })),
  };
  return JSON.stringify(config, null, 2) + '\n';
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}
