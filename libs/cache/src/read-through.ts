import { CacheAside } from './cache-aside.js';
import type { CacheAsideOptions, CacheStore } from './cache.types.js';

/**
 * Read-through: the loader is registered with the cache once, and callers only ask the cache. Same
 * guarantees as cache-aside (single-flight, jitter, negative caching, store failures fall through).
 */
export class ReadThroughCache<V> {
  private readonly aside: CacheAside<V>;

  constructor(
    store: CacheStore,
    private readonly loader: (key: string) => Promise<V | null>,
    options: CacheAsideOptions,
  ) {
    this.aside = new CacheAside<V>(store, options);
  }

  get(key: string): Promise<V | null> {
    return this.aside.get(key, () => this.loader(key));
  }

  invalidate(key: string): Promise<void> {
    return this.aside.invalidate(key);
  }
}
