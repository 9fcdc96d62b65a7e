/**
 * Lets one log line through per interval, counting the ones it held back: a dependency that is down fails
 * every call, and one line per failure would flood the logs (and the disk) during an outage.
 */
export class LogThrottle {
  private last = 0;
  private suppressed = 0;

  constructor(private readonly intervalMs = 10_000) {}

  /** Calls `log` with the number of lines suppressed since the last one, or suppresses this one. */
  run(log: (suppressed: number) => void): void {
    const now = Date.now();
    if (now - this.last < this.intervalMs) {
      this.suppressed += 1;
      return;
    }
    this.last = now;
    const suppressed = this.suppressed;
    this.suppressed = 0;
    log(suppressed);
  }
}
