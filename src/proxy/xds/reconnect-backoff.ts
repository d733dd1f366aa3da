// When an ADS stream (SotW or delta) drops: reconnect after a delay that
// doubles up to a cap, and starts over once the control plane answers again.

export class ReconnectBackoff {
  private readonly initialMs: number;
  private readonly maxMs: number;
  private delayMs: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: { readonly initialBackoffMs?: number; readonly maxBackoffMs?: number }) {
    this.initialMs = options.initialBackoffMs ?? 500;
    this.maxMs = options.maxBackoffMs ?? 30_000;
    this.delayMs = this.initialMs;
  }

  /** The control plane answered: the next drop waits the initial delay again. */
  reset(): void {
    this.delayMs = this.initialMs;
  }

  /** Runs `reconnect` after the current delay (a timer that never keeps the process alive); returns that delay. */
  schedule(reconnect: () => void): number {
    const delay = this.delayMs;
    this.timer = setTimeout(reconnect, delay);
    this.timer.unref();
    this.delayMs = Math.min(this.delayMs * 2, this.maxMs);
    return delay;
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}
