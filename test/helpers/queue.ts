// A queue for values that arrive over time (stream messages, child-process
// lines): tests take them in order, and a take that waits too long fails.

/** Values that arrive over time, taken in order; a take that waits too long fails the test. */
export class Queue<T> {
  private readonly items: T[] = [];
  private readonly waiters: Array<(item: T) => void> = [];
  push(item: T): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(item);
    else this.items.push(item);
  }
  get size(): number {
    return this.items.length;
  }
  take(timeoutMs = 5000): Promise<T> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve(item);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`nothing arrived within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (value: T) => {
        clearTimeout(timer);
        resolve(value);
      };
      this.waiters.push(waiter);
    });
  }

  /** Takes values until one matches (skipping the others), within the deadline. */
  async takeUntil(match: (item: T) => boolean, timeoutMs = 10000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const item = await this.take(Math.max(1, deadline - Date.now()));
      if (match(item)) return item;
    }
  }
}
