// The HCM's per-stream timeouts, run as the first HTTP filter of every
// stream (the HCM adds it when any is set): stream_idle_timeout (Envoy's
// default 5 min: no bytes either way on the stream -> 408 "stream timeout",
// flag SI, or a reset once the response started), request_timeout (the
// whole request not received in time -> 408 "request timeout") and the
// HCM's common_http_protocol_options.max_stream_duration (408
// "downstream duration timeout", flag DT) unless the route sets its own
// (the router enforces that one). All on the proxy's Clock.

import type { Socket } from 'node:net';
import type { Clock, TimerHandle } from '../../../clock.ts';
import { realClock } from '../../../clock.ts';
import { durationMs } from '../../../config/values.ts';
import type { FactoryContext, HttpFilterFactory } from '../../../registry.ts';
import type { FilterStatus, HttpFilter, HttpStream } from '../../http/http-filter.ts';

type D = Record<string, any>;

export interface StreamTimeoutSettings {
  /** 0 disables each. */
  readonly streamIdleTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly maxStreamDurationMs: number;
}

export function decodeStreamTimeouts(c: D): StreamTimeoutSettings {
  return {
    streamIdleTimeoutMs: durationMs(c.stream_idle_timeout, 300_000),
    requestTimeoutMs: durationMs(c.request_timeout, 0),
    maxStreamDurationMs: durationMs(c.common_http_protocol_options?.max_stream_duration, 0),
  };
}

/** The factory the HCM prepends to its filters; undefined when every timeout is disabled. */
export function streamTimeoutsFactory(settings: StreamTimeoutSettings, ctx: FactoryContext): HttpFilterFactory | undefined {
  if (!settings.streamIdleTimeoutMs && !settings.requestTimeoutMs && !settings.maxStreamDurationMs) return undefined;
  const clock = ctx.clock ?? realClock;
  return { name: 'envoy.hcm.stream_timeouts', terminal: false, create: () => new StreamTimeoutsFilter(settings, clock) };
}

function bytes(socket: Socket | null | undefined): number {
  return socket ? socket.bytesRead + socket.bytesWritten : 0;
}

export class StreamTimeoutsFilter implements HttpFilter {
  private readonly settings: StreamTimeoutSettings;
  private readonly clock: Clock;
  private idleTimer: TimerHandle | undefined;
  private requestTimer: TimerHandle | undefined;
  private durationTimer: TimerHandle | undefined;
  private lastBytes = 0;

  constructor(settings: StreamTimeoutSettings, clock: Clock) {
    this.settings = settings;
    this.clock = clock;
  }

  decodeHeaders(s: HttpStream): FilterStatus {
    const t = this.settings;
    if (t.streamIdleTimeoutMs > 0) this.armIdle(s);
    if (t.requestTimeoutMs > 0 && !s.req.complete) {
      this.requestTimer = this.clock.setTimeout(() => {
        this.requestTimer = undefined;
        if (s.ended || s.req.complete) return;
        if (!s.res.headersSent) s.sendLocalReply(408, 'request timeout');
        else s.res.destroy();
      }, t.requestTimeoutMs);
    }
    const action = s.route.action;
    const routeOwn = action.type === 'cluster' && action.maxStreamDurationMs !== undefined;
    if (t.maxStreamDurationMs > 0 && !routeOwn) {
      this.durationTimer = this.clock.setTimeout(() => {
        this.durationTimer = undefined;
        if (s.ended) return;
        if (!s.res.headersSent) s.sendLocalReply(408, 'downstream duration timeout', 'DT');
        else {
          s.addResponseFlag('DT');
          s.res.destroy();
        }
      }, t.maxStreamDurationMs);
    }
    return 'continue';
  }

  /** Activity is read from the socket's byte counters when the timer fires: no per-chunk work. */
  private armIdle(s: HttpStream): void {
    this.lastBytes = bytes(s.req.socket);
    this.idleTimer = this.clock.setTimeout(() => {
      this.idleTimer = undefined;
      if (s.ended) return;
      const now = bytes(s.req.socket);
      if (now !== this.lastBytes) return this.armIdle(s);
      if (!s.res.headersSent) s.sendLocalReply(408, 'stream timeout', 'SI');
      else {
        s.addResponseFlag('SI');
        s.res.destroy();
      }
    }, this.settings.streamIdleTimeoutMs);
  }

  onDestroy(): void {
    this.clock.clearTimeout(this.idleTimer);
    this.clock.clearTimeout(this.requestTimer);
    this.clock.clearTimeout(this.durationTimer);
  }
}
