// Istio's per-proxy push queue: each connection is queued at most once; a
// push for a connection already queued merges into the queued one, and a push
// for a connection being pushed right now waits and is re-queued when that
// push is done. A few workers drain the queue, yielding to the event loop
// between proxies so a mesh-wide push never blocks the process.

import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { PushContextLike } from '../model/index.ts';
import type { MergedPush } from './push-request.ts';
import { mergePush } from './push-request.ts';

export class PushQueue<K, P extends PushContextLike> {
  private readonly queued = new Map<K, MergedPush<P>>();
  private readonly busy = new Set<K>();
  /** Pushes that arrived for a busy key; they re-enter the queue when it is done. */
  private readonly later = new Map<K, MergedPush<P>>();
  private readonly concurrency: number;
  private readonly handle: (key: K, push: MergedPush<P>) => Promise<void>;
  private workers = 0;
  private closed = false;

  constructor(concurrency: number, handle: (key: K, push: MergedPush<P>) => Promise<void>) {
    this.concurrency = Math.max(1, concurrency);
    this.handle = handle;
  }

  get size(): number {
    return this.queued.size + this.later.size;
  }

  /** No push queued or in progress. */
  get idle(): boolean {
    return this.workers === 0 && this.queued.size === 0 && this.later.size === 0;
  }

  enqueue(key: K, push: MergedPush<P>): void {
    if (this.closed) return;
    if (this.busy.has(key)) {
      const prev = this.later.get(key);
      this.later.set(key, prev ? mergePush(prev, push) : push);
      return;
    }
    const prev = this.queued.get(key);
    // Map insertion order is the queue order; a merge keeps the original place.
    this.queued.set(key, prev ? mergePush(prev, push) : push);
    while (this.workers < this.concurrency && this.workers < this.queued.size) this.startWorker();
  }

  /** Forgets a key (its connection closed). */
  remove(key: K): void {
    this.queued.delete(key);
    this.later.delete(key);
  }

  close(): void {
    this.closed = true;
    this.queued.clear();
    this.later.clear();
  }

  private startWorker(): void {
    this.workers += 1;
    void this.work().finally(() => {
      this.workers -= 1;
    });
  }

  private async work(): Promise<void> {
    for (;;) {
      const next = this.queued.entries().next();
      if (next.done) return;
      const [key, push] = next.value;
      this.queued.delete(key);
      this.busy.add(key);
      try {
        await this.handle(key, push);
      } finally {
        this.busy.delete(key);
        const waiting = this.later.get(key);
        if (waiting) {
          this.later.delete(key);
          this.enqueue(key, waiting);
        }
      }
      await yieldToLoop();
    }
  }
}
