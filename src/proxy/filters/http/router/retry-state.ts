// Per-request retry bookkeeping for the router, with Envoy's semantics:
// retry_on conditions (HTTP and gRPC), num_retries, the cluster's
// max_retries circuit breaker (overflow -> UO), fully jittered exponential
// backoff in [0, (2^N - 1) x base) capped at max (25 ms and 10x base by
// default), and the previous_hosts predicate. Also the request body buffer
// that lets an attempt be replayed (Envoy gives up retrying past 1 MiB).

import type { IncomingHttpHeaders } from 'node:http';
import type { RetryPolicy } from '../../../config/route-resilience.ts';
import type { Cluster } from '../../../upstream/cluster.ts';
import type { Host } from '../../../upstream/host.ts';

/** How an attempt failed before a response: connect failure, reset/disconnect, per-try timeout. */
export type ResetReason = 'connect-failure' | 'reset' | 'timeout';

export type RetryDecision = 'retry' | 'no' | 'limit' | 'overflow';

export class RetryState {
  readonly policy: RetryPolicy;
  private readonly cluster: Cluster;
  private readonly random: () => number;
  private retriesDone = 0;
  /** A retry counts against max_retries from when it is scheduled until its attempt ends. */
  private holdingRetry = false;
  private readonly previousHosts: Host[] = [];

  constructor(policy: RetryPolicy, cluster: Cluster, random: () => number = Math.random) {
    this.policy = policy;
    this.cluster = cluster;
    this.random = random;
  }

  /** 1 for the first attempt, then one more per retry (x-envoy-attempt-count). */
  get attemptCount(): number {
    return this.retriesDone + 1;
  }

  /** Whether retry_on covers this response. */
  retriableResponse(status: number, headers: IncomingHttpHeaders): boolean {
    const on = this.policy.retryOn;
    if (on.has('5xx') && status >= 500) return true;
    if (on.has('gateway-error') && (status === 502 || status === 503 || status === 504)) return true;
    if (on.has('retriable-4xx') && status === 409) return true;
    if (on.has('retriable-status-codes') && this.policy.retriableStatusCodes.has(status)) return true;
    if (on.has('envoy-ratelimited') && headers['x-envoy-ratelimited'] !== undefined) return true;
    if (this.policy.grpcStatuses.size > 0) {
      const g = headers['grpc-status'];
      if (g !== undefined && this.policy.grpcStatuses.has(Number(g))) return true;
    }
    return false;
  }

  /** Whether retry_on covers a failure before any response. */
  retriableReset(reason: ResetReason): boolean {
    const on = this.policy.retryOn;
    if (on.has('5xx') || on.has('gateway-error') || on.has('reset')) return true;
    return reason === 'connect-failure' && (on.has('connect-failure') || on.has('reset-before-request'));
  }

  /** Claims one retry: 'limit' when num_retries is used up, 'overflow' when the cluster's max_retries is reached. */
  tryRetry(): RetryDecision {
    const stats = this.cluster.retryStats;
    this.releaseRetry();
    if (this.retriesDone >= this.policy.numRetries) {
      stats.upstream_rq_retry_limit_exceeded.value++;
      return 'limit';
    }
    if (this.cluster.activeRetries >= this.cluster.config.circuitBreakers.maxRetries) {
      stats.upstream_rq_retry_overflow.value++;
      return 'overflow';
    }
    this.retriesDone++;
    this.cluster.activeRetries++;
    this.holdingRetry = true;
    stats.upstream_rq_retry.value++;
    return 'retry';
  }

  /** The attempt made by a retry ended (or the stream did): free its circuit-breaker slot. */
  releaseRetry(): void {
    if (!this.holdingRetry) return;
    this.holdingRetry = false;
    this.cluster.activeRetries--;
  }

  /** A retried request got a response that was not retried again. */
  succeeded(): void {
    if (this.retriesDone > 0) this.cluster.retryStats.upstream_rq_retry_success.value++;
  }

  /** Backoff before the retry just claimed: uniform in [0, (2^N - 1) x base), capped at max. */
  backoffMs(): number {
    const { backoffBaseMs, backoffMaxMs } = this.policy;
    const ceiling = Math.min(backoffMaxMs, (2 ** this.retriesDone - 1) * backoffBaseMs);
    return Math.floor(this.random() * ceiling);
  }

  recordHost(host: Host): void {
    if (this.policy.avoidPreviousHosts) this.previousHosts.push(host);
  }

  /** The previous_hosts predicate: reject hosts tried before. */
  rejectsHost(host: Host): boolean {
    return this.previousHosts.includes(host);
  }
}

/** Envoy's per_connection_buffer_limit_bytes default: larger bodies are not replayed. */
export const RETRY_BUFFER_LIMIT = 1024 * 1024;

/** The downstream request body kept for replay (retries) and copying (mirrors). */
export class BufferedBody {
  readonly chunks: Buffer[] = [];
  size = 0;
  complete = false;
  /** False once the body outgrew the limit: no further replays. */
  replayable = true;
  private readonly sinks: Array<{ write(b: Buffer): unknown; end(): unknown }> = [];

  push(chunk: Buffer): void {
    if (this.replayable) {
      this.size += chunk.length;
      if (this.size > RETRY_BUFFER_LIMIT) {
        this.replayable = false;
        this.chunks.length = 0;
      } else this.chunks.push(chunk);
    }
    for (const s of this.sinks) s.write(chunk);
  }

  end(): void {
    this.complete = true;
    for (const s of this.sinks) s.end();
    this.sinks.length = 0;
  }

  /** Replays what has arrived into `sink`, then streams the rest as it comes. */
  attach(sink: { write(b: Buffer): unknown; end(): unknown }): void {
    for (const c of this.chunks) sink.write(c);
    if (this.complete) sink.end();
    else this.sinks.push(sink);
  }

  detach(sink: { write(b: Buffer): unknown; end(): unknown }): void {
    const i = this.sinks.indexOf(sink);
    if (i >= 0) this.sinks.splice(i, 1);
  }
}
