import type { CacheAsideOptions, CacheStore } from './cache.types.js';
import { SingleFlight } from './single-flight.js';
import { jitteredTtl } from './ttl.js';

/** Stored for a cached "not found": JSON never produces it, so it cannot collide with a value. */
const NOT_FOUND = '\u0000nf';

/**
 * Cache-aside: the application reads the cache, and on a miss loads from the database and fills the cache.
 * Concurrent misses of one key make one load (single-flight); TTLs carry jitter; "not found" is cached
 * briefly. When the store fails, reads go to the loader (still single-flight) instead of failing.
 */
export class CacheAside<V> {
  private readonly flights = new SingleFlight<V | null>();

  constructor(
    private readonly store: CacheStore,
    private readonly options: CacheAsideOptions,
  ) {}

  async get(key: string, load: () => Promise<V | null>): Promise<V | null> {
    const fullKey = this.options.namespace + key;
    let cached: string | null = null;
    try {
      cached = await this.store.get(fullKey);
    } catch (error) {
      this.options.events?.storeError?.(error);
    }
    if (cached !== null) {
      this.options.events?.hit?.();
      return cached === NOT_FOUND ? null : (JSON.parse(cached) as V);
    }
    this.options.events?.miss?.();
    return this.flights.do(fullKey, async () => {
      const value = await load();
      await this.fill(fullKey, value);
      return value;
    });
  }

  /** Drops a key, e.g. after a write made it stale. */
  async invalidate(key: string): Promise<void> {
    try {
      await this.store.del(this.options.namespace + key);
    } catch (error) {
      this.options.events?.storeError?.(error);
    }
  }

  private async fill(fullKey: string, value: V | null): Promise<void> {
    const jitter = this.options.jitter ?? 0.1;
    const ttl =
      value === null
        ? jitteredTtl(this.options.negativeTtlMs ?? Math.ceil(this.options.ttlMs / 10), jitter)
        : jitteredTtl(this.options.ttlMs, jitter);
    try {
      await this.store.set(fullKey, value === null ? NOT_FOUND : JSON.stringify(value), ttl);
    } catch (error) {
      this.options.events?.storeError?.(error);
    }
  }
}
