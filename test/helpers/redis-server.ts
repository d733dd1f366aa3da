// A real Redis server for tests (Debian's redis-server): on a free port of
// 127.0.0.1, in a temp dir, without persistence. It can be stopped and started
// again on the same port (outage tests) or paused with SIGSTOP (a stuck
// server whose socket stays open). Tests skip when it is not installed.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tempDir } from './processes.ts';

export const REDIS_SERVER_BIN = '/usr/bin/redis-server';

/** `false` when redis-server is installed, else the reason to skip (for `test(..., { skip })`). */
export const skipWithoutRedis: false | string = existsSync(REDIS_SERVER_BIN) ? false : `redis-server not installed (Debian: apt-get install -y redis-server)`;

const START_ATTEMPTS = 5;
const READY_TIMEOUT_MS = 10_000;

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  server.close();
  await once(server, 'close');
  return port;
}

/** Sends one inline command and returns the raw reply once `complete` accepts it; undefined on error or after 1 s. */
function inlineCommand(port: number, command: string, complete: (reply: string) => boolean): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const done = (r: string | undefined): void => {
      socket.destroy();
      resolve(r);
    };
    socket.setTimeout(1000, () => done(undefined));
    socket.on('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (d: Buffer) => {
      reply += d.toString();
      if (complete(reply)) done(reply);
    });
    socket.on('error', () => done(undefined));
  });
}

async function ping(port: number): Promise<boolean> {
  return (await inlineCommand(port, 'PING', (r) => r.includes('\r\n')))?.startsWith('+PONG') ?? false;
}

export class RedisServer {
  readonly port: number;
  readonly dir: string;
  /** Lines redis-server printed (its log goes to stdout). */
  readonly logs: string[] = [];
  #child: ChildProcess | undefined;
  readonly #killOnExit = (): void => void this.#child?.kill('SIGKILL');

  private constructor(port: number, dir: string) {
    this.port = port;
    this.dir = dir;
  }

  /** `127.0.0.1:<port>`, as redisquota's `redisServerUrl`. */
  get url(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Starts a server on a free port (redis cannot bind port 0: a port taken in the meantime is retried with another). */
  static async start(): Promise<RedisServer> {
    const dir = tempDir('mesh-redis-');
    let lastError: unknown;
    for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
      const server = new RedisServer(await freePort(), dir);
      try {
        await server.resume();
        return server;
      } catch (err) {
        lastError = err;
        await server.stop(false);
      }
    }
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`redis-server did not start after ${START_ATTEMPTS} attempts`, { cause: lastError });
  }

  /** (Re)starts redis-server on this server's port and waits until PING answers. */
  async resume(): Promise<void> {
    if (this.#child) throw new Error('redis-server is already running');
    const child = spawn(REDIS_SERVER_BIN, ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, '--daemonize', 'no', '--logfile', ''], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    process.once('exit', this.#killOnExit);
    const collect = (d: Buffer): void => void this.logs.push(...d.toString().split('\n').filter((l) => l !== ''));
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    let exited = false;
    child.once('exit', () => (exited = true));
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!(await ping(this.port))) {
      if (exited) {
        this.#child = undefined;
        process.removeListener('exit', this.#killOnExit);
        throw new Error(`redis-server exited on port ${this.port}: ${this.logs.slice(-3).join(' | ')}`);
      }
      if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not answer PING within ${READY_TIMEOUT_MS} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stops redis-server (the port stays this server's for `resume`); `removeDir` also deletes its temp dir. */
  async stop(removeDir = true): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    process.removeListener('exit', this.#killOnExit);
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await exited;
    }
    if (removeDir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Client connections the server has open, not counting the one asking. */
  async connectedClients(): Promise<number> {
    // A bulk reply: `$<length>\r\n<text>\r\n`.
    const reply = await inlineCommand(this.port, 'INFO clients', (r) => {
      const m = /^\$(\d+)\r\n/.exec(r);
      return m !== null && Buffer.byteLength(r) >= m[0].length + Number(m[1]) + 2;
    });
    const m = /connected_clients:(\d+)/.exec(reply ?? '');
    if (!m) throw new Error(`redis-server on port ${this.port} did not answer INFO clients`);
    return Number(m[1]) - 1;
  }

  /** SIGSTOP: the socket stays open but nothing answers (a stuck server). */
  pause(): void {
    this.#child?.kill('SIGSTOP');
  }

  /** SIGCONT after pause(). */
  unpause(): void {
    this.#child?.kill('SIGCONT');
  }
}
