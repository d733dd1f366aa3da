// Starts the four Bookinfo services WITHOUT a mesh, wired together through
// the Kubernetes-style <SVC>_SERVICE_HOST / <SVC>_SERVICE_PORT variables:
// ratings, details, reviews v1, v2 and v3 (each on a free port) and
// productpage, whose "reviews" is the one version chosen.
//
//   node samples/bookinfo/run-all.ts [--reviews v1|v2|v3] [--port 9080] [--host 127.0.0.1] [--quiet]
//
// Also a library for tests: startService() and startBookinfo().

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export type ServiceName = 'productpage' | 'details' | 'reviews' | 'ratings';
export type ReviewsVersion = 'v1' | 'v2' | 'v3';

export interface LogEntry {
  readonly [key: string]: unknown;
  readonly msg?: string;
  readonly method?: string;
  readonly path?: string;
  readonly status?: number;
  readonly headers?: Record<string, string>;
}

export interface ServiceProcess {
  readonly service: ServiceName;
  readonly instance: string;
  readonly port: number;
  readonly host: string;
  readonly child: ChildProcess;
  /** Every JSON line the service printed so far. */
  readonly logs: LogEntry[];
  /** Resolves with the first log line (past or future) that matches. */
  waitForLog(match: (entry: LogEntry) => boolean, timeoutMs?: number): Promise<LogEntry>;
  stop(): Promise<void>;
}

const HERE = fileURLToPath(new URL('.', import.meta.url));

/** Variables from the launcher's own environment that would change the wiring. */
const WIRING = /^(PORT|HOST|POD_NAME|HOSTNAME|SERVICE_VERSION|ENABLE_RATINGS|STAR_COLOR|CLUSTER_NAME|SERVICES_DOMAIN|[A-Z0-9_]+_SERVICE_(HOST|PORT)|[A-Z0-9_]+_HOSTNAME)$/;

function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !WIRING.test(k)) env[k] = v;
  return env;
}

/**
 * Starts one service as a real process (`node samples/bookinfo/<service>.ts`)
 * and resolves once it listens. `env` adds to a clean environment: PORT
 * defaults to 0 (a free port) and HOST to 127.0.0.1.
 */
export async function startService(service: ServiceName, env: Record<string, string> = {}, options: { echo?: boolean } = {}): Promise<ServiceProcess> {
  const host = env.HOST ?? '127.0.0.1';
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', `${HERE}${service}.ts`], {
    env: { ...baseEnv(), PORT: '0', HOST: host, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogEntry[] = [];
  const waiters = new Set<{ match: (e: LogEntry) => boolean; resolve: (e: LogEntry) => void }>();
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (options.echo) process.stderr.write(d);
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let entry: LogEntry;
    try {
      entry = JSON.parse(line) as LogEntry;
    } catch {
      entry = { msg: line };
    }
    logs.push(entry);
    if (options.echo) process.stdout.write(`${line}\n`);
    for (const w of waiters) {
      if (w.match(entry)) {
        waiters.delete(w);
        w.resolve(entry);
      }
    }
  });
  const waitForLog = (match: (e: LogEntry) => boolean, timeoutMs = 5_000): Promise<LogEntry> => {
    const found = logs.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const w = {
        match,
        resolve: (e: LogEntry) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      const timer = setTimeout(() => {
        waiters.delete(w);
        reject(new Error(`${service}: no matching log line within ${timeoutMs} ms; stderr: ${stderr}`));
      }, timeoutMs);
      timer.unref();
      waiters.add(w);
    });
  };
  const exited = once(child, 'exit');
  const listening = await Promise.race([
    waitForLog((e) => e.msg === 'listening', 10_000),
    exited.then(([code]) => {
      throw new Error(`${service} exited with ${String(code)} before listening: ${stderr}`);
    }),
  ]);
  return {
    service,
    instance: String(listening.instance),
    port: Number(listening.port),
    host,
    child,
    logs,
    waitForLog,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export interface Bookinfo {
  readonly productpage: ServiceProcess;
  readonly details: ServiceProcess;
  readonly ratings: ServiceProcess;
  readonly reviews: Readonly<Record<ReviewsVersion, ServiceProcess>>;
  /** http://host:port of productpage. */
  readonly url: string;
  stop(): Promise<void>;
}

export interface BookinfoOptions {
  /** The reviews version productpage talks to (default v1). */
  readonly reviews?: ReviewsVersion;
  /** productpage's port (default 0: a free one). */
  readonly port?: number;
  readonly host?: string;
  readonly echo?: boolean;
  /** Extra env per service. */
  readonly env?: Partial<Record<ServiceName, Record<string, string>>>;
}

const addr = (p: ServiceProcess, name: string): Record<string, string> => ({
  [`${name.toUpperCase()}_SERVICE_HOST`]: p.host,
  [`${name.toUpperCase()}_SERVICE_PORT`]: String(p.port),
});

/** Starts ratings, details, reviews v1/v2/v3 and productpage, wired by env. */
export async function startBookinfo(options: BookinfoOptions = {}): Promise<Bookinfo> {
  const host = options.host ?? '127.0.0.1';
  const echo = options.echo ?? false;
  const started: ServiceProcess[] = [];
  const start = async (service: ServiceName, env: Record<string, string>): Promise<ServiceProcess> => {
    const p = await startService(service, { HOST: host, ...env, ...options.env?.[service] }, { echo });
    started.push(p);
    return p;
  };
  try {
    const [ratings, details] = await Promise.all([start('ratings', { POD_NAME: 'ratings-v1-local' }), start('details', { POD_NAME: 'details-v1-local' })]);
    const versions: ReviewsVersion[] = ['v1', 'v2', 'v3'];
    const list = await Promise.all(versions.map((v) => start('reviews', { SERVICE_VERSION: v, POD_NAME: `reviews-${v}-local`, ...addr(ratings, 'ratings') })));
    const reviews = { v1: list[0], v2: list[1], v3: list[2] };
    const productpage = await start('productpage', {
      POD_NAME: 'productpage-v1-local',
      PORT: String(options.port ?? 0),
      ...addr(details, 'details'),
      ...addr(reviews[options.reviews ?? 'v1'], 'reviews'),
      ...addr(ratings, 'ratings'),
    });
    const urlHost = host === '0.0.0.0' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
    return {
      productpage,
      details,
      ratings,
      reviews,
      url: `http://${urlHost}:${productpage.port}`,
      async stop() {
        await Promise.all(started.map((p) => p.stop()));
      },
    };
  } catch (err) {
    await Promise.all(started.map((p) => p.stop()));
    throw err;
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      reviews: { type: 'string', default: process.env.BOOKINFO_REVIEWS ?? 'v1' },
      port: { type: 'string', default: process.env.PORT ?? '9080' },
      host: { type: 'string', default: process.env.HOST ?? '127.0.0.1' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('usage: node samples/bookinfo/run-all.ts [--reviews v1|v2|v3] [--port 9080] [--host 127.0.0.1] [--quiet]\n');
    process.exit(0);
  }
  if (!['v1', 'v2', 'v3'].includes(values.reviews)) {
    process.stderr.write(`--reviews: expected v1, v2 or v3, got "${values.reviews}"\n`);
    process.exit(2);
  }
  const bookinfo = await startBookinfo({ reviews: values.reviews as ReviewsVersion, port: Number(values.port), host: values.host, echo: !values.quiet }).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
  for (const p of [bookinfo.ratings, bookinfo.details, bookinfo.reviews.v1, bookinfo.reviews.v2, bookinfo.reviews.v3, bookinfo.productpage]) {
    process.stdout.write(`# ${p.instance.padEnd(22)} http://${values.host}:${p.port}\n`);
  }
  process.stdout.write(`productpage: ${bookinfo.url}/productpage (reviews ${values.reviews})\n`);
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void bookinfo.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  for (const p of [bookinfo.ratings, bookinfo.details, bookinfo.reviews.v1, bookinfo.reviews.v2, bookinfo.reviews.v3, bookinfo.productpage]) {
    p.child.on('exit', (code) => {
      if (!stopping) process.stderr.write(`${p.instance} exited (${String(code)})\n`);
    });
  }
}
