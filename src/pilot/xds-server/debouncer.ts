// Istio's push debounce: events are merged until none arrived for
// `debounceMs` (the quiet period) or the first one is `maxDebounceMs` old
// (so a steady stream of changes still gets pushed), then one push fires.
// flushSoon() skips the quiet period for what is pending: for changes that
// already waited for quiet upstream (Galley's snapshots), a second quiet
// period here only adds latency.

import type { PushContextLike } from '../model/index.ts';
import type { Clock } from './clock.ts';
import type { MergedPush } from './push-request.ts';
import { mergePush } from './push-request.ts';

export interface DebouncerOptions<P extends PushContextLike> {
  readonly clock: Clock;
  readonly debounceMs: number;
  readonly maxDebounceMs: number;
  /** Called with the merged request and how many events it holds. */
  readonly fire: (push: MergedPush<P>, events: number, debounceMs: number) => void;
}

export class Debouncer<P extends PushContextLike> {
  private readonly options: DebouncerOptions<P>;
  private pending: MergedPush<P> | undefined;
  private events = 0;
  private firstAt = 0;
  private lastAt = 0;
  private timer: unknown;
  /** flushSoon() was called: the next check fires whatever the quiet period. */
  private urgent = false;

  constructor(options: DebouncerOptions<P>) {
    this.options = options;
  }

  /** The request waiting for its quiet period, if any. */
  get waiting(): MergedPush<P> | undefined {
    return this.pending;
  }

  add(req: MergedPush<P>): void {
    const now = this.options.clock.now();
    if (!this.pending) this.firstAt = now;
    this.pending = this.pending ? mergePush(this.pending, req) : req;
    this.events += 1;
    this.lastAt = now;
    // One timer at a time: when it fires it checks the quiet period and re-arms for the rest.
    if (this.timer === undefined) this.arm(this.options.debounceMs);
  }

  /** Fires what is pending on the next turn of the event loop (so events of the same turn still merge into it). */
  flushSoon(): void {
    if (!this.pending) return;
    this.urgent = true;
    if (this.timer !== undefined) this.options.clock.clearTimeout(this.timer);
    this.arm(0);
  }

  /** Drops what is waiting and the timer. */
  stop(): void {
    if (this.timer !== undefined) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = undefined;
    this.events = 0;
    this.urgent = false;
  }

  private arm(ms: number): void {
    this.timer = this.options.clock.setTimeout(() => this.check(), ms);
  }

  private check(): void {
    this.timer = undefined;
    const pending = this.pending;
    if (!pending) return;
    const now = this.options.clock.now();
    const quiet = now - this.lastAt;
    const age = now - this.firstAt;
    if (this.urgent || quiet >= this.options.debounceMs || age >= this.options.maxDebounceMs) {
      const events = this.events;
      this.pending = undefined;
      this.events = 0;
      this.urgent = false;
      this.options.fire(pending, events, age);
      return;
    }
    this.arm(Math.min(this.options.debounceMs - quiet, this.options.maxDebounceMs - age));
  }
}
