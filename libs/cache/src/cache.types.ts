/** The little a cache strategy needs from a key-value store (Redis here; a Map in unit tests). */
export interface CacheStore {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, ttlMs: number): Promise<void>;
  del(key: string): Promise<void>;
}

export interface CacheEvents {
  hit?: () => void;
  miss?: () => void;
  /** The store failed; the strategy went on without it. */
  storeError?: (error: unknown) => void;
}

export interface CacheAsideOptions {
  /** Prefix of every key, e.g. `feed:`. */
  namespace: string;
  ttlMs: number;
  /** ± fraction of the TTL, default 0.1. */
  jitter?: number;
  /**
   * How long a "not found" (the loader returned null) is cached, default 1/10 of ttlMs. Short, so that a
   * thing created just after a miss shows up soon, but long enough that a storm of lookups of a missing key
   * does not each reach the database.
   */
  negativeTtlMs?: number;
  events?: CacheEvents;
}
