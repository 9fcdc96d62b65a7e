/**
 * Requests per client in a sliding window, approximated from two fixed windows (the current one, and the previous
 * one weighted by how much of it the sliding window still covers): O(1) time and memory per client, and no burst of
 * twice the limit at a window's edge as a plain fixed window allows.
 */
export class RateLimiter {
  private readonly clients = new Map<string, { start: number; current: number; previous: number }>();
  private sweptAt = 0;

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  /** Counts one request of `client`; `undefined` when it is within the limit, else the seconds until it would be. */
  hit(client: string, now = Date.now()): number | undefined {
    const start = now - (now % this.windowMs);
    let window = this.clients.get(client);
    if (window === undefined) {
      window = { start, current: 0, previous: 0 };
      this.clients.set(client, window);
    } else if (window.start !== start) {
      window.previous = start - window.start === this.windowMs ? window.current : 0;
      window.current = 0;
      window.start = start;
    }
    const weight = 1 - (now - start) / this.windowMs;
    if (window.previous * weight + window.current >= this.limit) {
      return Math.max(1, Math.ceil((start + this.windowMs - now) / 1000));
    }
    window.current += 1;
    this.sweep(now);
    return undefined;
  }

  /** Forgets clients idle for two windows, at most once per window, so the map does not grow for ever. */
  private sweep(now: number): void {
    if (now - this.sweptAt < this.windowMs) return;
    this.sweptAt = now;
    for (const [client, window] of this.clients) {
      if (now - window.start >= 2 * this.windowMs) this.clients.delete(client);
    }
  }
}
