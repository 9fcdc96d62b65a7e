/**
 * Collapses concurrent calls for one key into one: while a load for `key` runs, later callers get its
 * promise. A burst of 1,000 misses on a cold key makes one database read.
 */
export class SingleFlight<V> {
  private readonly inFlight = new Map<string, Promise<V>>();

  do(key: string, load: () => Promise<V>): Promise<V> {
    const running = this.inFlight.get(key);
    if (running) return running;
    const promise = load().finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, promise);
    return promise;
  }

  get size(): number {
    return this.inFlight.size;
  }
}
