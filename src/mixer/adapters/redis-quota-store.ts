// Where `redisquota` keeps its counts: a Redis server, reached through a
// small pool of ioredis connections. Each allocation is one Lua script run
// with EVALSHA, so reading, evicting and charging a window is atomic on the
// Redis side even when several Mixer processes share the server.
//
// Connections are opened on demand (by a quota call) and never reconnect by
// themselves: ioredis's retry timers are off, so a handler has no timers
// running between calls, and after an outage the next call simply opens a new
// connection. Every network step is bounded by REDIS_TIMEOUT_MS; a failure
// throws MESH_ERR_MIXER_REDIS_UNAVAILABLE and the adapter decides the answer.

import { createHash } from 'node:crypto';
import { Redis, ReplyError } from 'ioredis';
import { MixerError, MixerErrorCode } from '../errors.ts';

/** Bound on connecting and on each command. Three steps at most (connect, load scripts, run) stay under the sidecar's 2 s RLS timeout. */
export const REDIS_TIMEOUT_MS = 500;

export type RateLimitAlgorithm = 'FIXED_WINDOW' | 'ROLLING_WINDOW';

/** One allocation against one window key. Times are milliseconds on the caller's clock (Mixer's), as Istio passed its own timestamp. */
export interface WindowRequest {
  /** The key prefix of this quota and these dimension values. */
  readonly key: string;
  readonly maxAmount: number;
  readonly windowMs: number;
  /** ROLLING_WINDOW only: the size of one bucket. */
  readonly bucketMs: number;
  readonly amount: number;
  readonly bestEffort: boolean;
  readonly now: number;
}

export interface WindowAnswer {
  readonly granted: number;
  /** Granted: how long the grant holds. Denied: how long until room is made. */
  readonly validDurationMs: number;
}

// A fixed window: one hash with the amount `used` and the time the window
// `ends`. The window starts at the first allocation after the previous one
// ended. PEXPIRE only cleans up keys nobody asks about any more.
const FIXED_WINDOW_LUA = `
local key = KEYS[1]
local max, window, amount, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[5])
local bestEffort = ARGV[4] == '1'
local used = tonumber(redis.call('HGET', key, 'used'))
local ends = tonumber(redis.call('HGET', key, 'ends'))
if not used or not ends or now >= ends then
  used = 0
  ends = now + window
  redis.call('HSET', key, 'used', 0, 'ends', ends)
  redis.call('PEXPIRE', key, window)
end
local left = math.max(0, max - used)
local granted = amount
if amount > left then
  if bestEffort then granted = left else granted = 0 end
end
if granted > 0 then redis.call('HINCRBY', key, 'used', granted) end
return {granted, ends - now}
`;

// A rolling window of buckets: KEYS[1] is a hash holding the total `used`
// and one field per bucket (`b<start>` = amount), KEYS[2] a sorted set of
// bucket starts. A bucket is evicted once all of it is older than the window
// (start + bucket <= now - window), so an allocation counts for between one
// window and one window plus a bucket: never more than max in any window.
const ROLLING_WINDOW_LUA = `
local counts, starts = KEYS[1], KEYS[2]
local max, window, bucket, amount, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[6])
local bestEffort = ARGV[5] == '1'
local current = ARGV[7]
local horizon = now - window - bucket
local used = tonumber(redis.call('HGET', counts, 'used')) or 0
local old = redis.call('ZRANGEBYSCORE', starts, '-inf', horizon)
for _, start in ipairs(old) do
  used = used - (tonumber(redis.call('HGET', counts, 'b' .. start)) or 0)
  redis.call('HDEL', counts, 'b' .. start)
end
if #old > 0 then redis.call('ZREMRANGEBYSCORE', starts, '-inf', horizon) end
if used < 0 then used = 0 end
local left = math.max(0, max - used)
local granted = amount
if amount > left then
  if bestEffort then granted = left else granted = 0 end
end
if granted > 0 then
  used = used + granted
  redis.call('HINCRBY', counts, 'b' .. current, granted)
  redis.call('ZADD', starts, tonumber(current), current)
end
redis.call('HSET', counts, 'used', used)
redis.call('PEXPIRE', counts, window + bucket)
redis.call('PEXPIRE', starts, window + bucket)
if granted > 0 then return {granted, window} end
local oldest = redis.call('ZRANGE', starts, 0, 0)
if oldest[1] then return {granted, math.max(0, tonumber(oldest[1]) + bucket + window - now)} end
return {granted, window}
`;

interface Script {
  readonly lua: string;
  readonly sha: string;
}

function script(lua: string): Script {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

const SCRIPTS: Readonly<Record<RateLimitAlgorithm, Script>> = {
  FIXED_WINDOW: script(FIXED_WINDOW_LUA),
  ROLLING_WINDOW: script(ROLLING_WINDOW_LUA),
};

/** One pooled connection, opened (and its scripts loaded) on first use and after any failure. */
class PooledConnection {
  readonly #host: string;
  readonly #port: number;
  readonly #timeoutMs: number;
  #client: Redis | undefined;
  #opening: Promise<Redis> | undefined;
  #lastError: Error | undefined;
  #closed = false;

  constructor(host: string, port: number, timeoutMs: number) {
    this.#host = host;
    this.#port = port;
    this.#timeoutMs = timeoutMs;
  }

  /** A connection ready for commands; concurrent callers share one opening attempt. */
  ready(): Promise<Redis> {
    if (this.#closed) return Promise.reject(new Error('the handler is closed'));
    if (this.#client?.status === 'ready') return Promise.resolve(this.#client);
    this.#opening ??= this.open().finally(() => (this.#opening = undefined));
    return this.#opening;
  }

  private async open(): Promise<Redis> {
    this.#client?.disconnect();
    this.#lastError = undefined;
    const client = new Redis({
      host: this.#host,
      port: this.#port,
      lazyConnect: true,
      connectTimeout: this.#timeoutMs,
      commandTimeout: this.#timeoutMs,
      // No reconnect timers and no queue of commands waiting for a connection: a call either runs now or fails now.
      retryStrategy: () => null,
      enableOfflineQueue: false,
      // No handshake round trips (HELLO, CLIENT SETINFO, INFO): connected means usable, within one bound.
      enableReadyCheck: false,
      protocol: 2,
      disableClientInfo: true,
      maxRetriesPerRequest: 0,
    });
    // Failures are answered per call; keep the last one for the message (an 'error' event without a listener is printed).
    client.on('error', (err: Error) => (this.#lastError = err));
    this.#client = client;
    try {
      await client.connect();
      // Loaded once per connection (together, within one bound); the scripts then run by their SHA1.
      await Promise.all(Object.values(SCRIPTS).map((s) => client.script('LOAD', s.lua)));
    } catch (err) {
      client.disconnect();
      this.#client = undefined;
      throw this.#lastError ?? err;
    }
    if (this.#closed) client.disconnect();
    return client;
  }

  /** Drops the connection (after a timeout the server may be stuck); the next call opens a fresh one. */
  reset(): void {
    // ioredis keeps reporting 'ready' until the server acknowledges the close, so forget the client now.
    this.#client?.disconnect();
    this.#client = undefined;
  }

  close(): void {
    this.#closed = true;
    this.#client?.disconnect();
    this.#client = undefined;
  }
}

/** Quota windows on one Redis server, shared by every Mixer process that points at it. */
export class RedisQuotaStore {
  readonly address: string;
  readonly #pool: PooledConnection[];
  #next = 0;

  constructor(host: string, port: number, poolSize: number, timeoutMs = REDIS_TIMEOUT_MS) {
    this.address = `${host}:${port}`;
    this.#pool = Array.from({ length: Math.max(1, poolSize) }, () => new PooledConnection(host, port, timeoutMs));
  }

  /** Charges `amount` to the window (all or nothing unless bestEffort). Throws MESH_ERR_MIXER_REDIS_UNAVAILABLE when Redis does not answer in time. */
  async allocate(algorithm: RateLimitAlgorithm, r: WindowRequest): Promise<WindowAnswer> {
    const conn = this.#pool[this.#next]!;
    this.#next = (this.#next + 1) % this.#pool.length;
    let reply: unknown;
    try {
      reply = await this.run(await conn.ready(), algorithm, r);
    } catch (err) {
      // Anything but an error reply (a timeout, a closed socket) leaves the connection suspect: the next call opens a new one.
      if (!(err instanceof ReplyError)) conn.reset();
      throw new MixerError(MixerErrorCode.REDIS_UNAVAILABLE, `Redis at ${this.address} did not answer: ${(err as Error).message}`, { cause: err });
    }
    if (!Array.isArray(reply) || typeof reply[0] !== 'number' || typeof reply[1] !== 'number') {
      throw new MixerError(MixerErrorCode.REDIS_UNAVAILABLE, `Redis at ${this.address} gave an unexpected reply: ${JSON.stringify(reply)}`);
    }
    return { granted: reply[0], validDurationMs: reply[1] };
  }

  private async run(client: Redis, algorithm: RateLimitAlgorithm, r: WindowRequest): Promise<unknown> {
    const s = SCRIPTS[algorithm];
    const now = Math.floor(r.now);
    const best = r.bestEffort ? '1' : '0';
    const [keys, args] = algorithm === 'FIXED_WINDOW'
      ? [[`${r.key}:fixed`], [r.maxAmount, r.windowMs, r.amount, best, now]]
      : [[`${r.key}:rolling`, `${r.key}:rolling:buckets`], [r.maxAmount, r.windowMs, r.bucketMs, r.amount, best, now, String(now - (now % r.bucketMs))]];
    try {
      return await client.evalsha(s.sha, keys.length, ...keys, ...args);
    } catch (err) {
      // SCRIPT FLUSH (or a failover to a server that never saw the scripts): load it again and retry once.
      if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err;
      await client.script('LOAD', s.lua);
      return client.evalsha(s.sha, keys.length, ...keys, ...args);
    }
  }

  close(): void {
    for (const c of this.#pool) c.close();
  }
}
