import type { CacheStore } from './cache.types.js';

/** An in-memory `CacheStore` for unit tests: records TTLs and can be made to fail. */
export class MemoryStore implements CacheStore {
  readonly values = new Map<string, { value: string; ttlMs: number }>();
  failing = false;

  private check(): void {
    if (this.failing) throw new Error('store down');
  }

  async get(key: string): Promise<string | null> {
    this.check();
    return this.values.get(key)?.value ?? null;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.check();
    this.values.set(key, { value, ttlMs });
  }

  async del(key: string): Promise<void> {
    this.check();
    this.values.delete(key);
  }
}
