import type { Cluster, Redis } from 'ioredis';
import type { CacheStore } from './cache.types.js';

/** `CacheStore` over ioredis, a single server or a Redis Cluster (the connection's key prefix applies). */
export class RedisCacheStore implements CacheStore {
  constructor(private readonly redis: Redis | Cluster) {}

  get(key: string): Promise<string | null> {
    return this.redis.get(key);
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    await this.redis.set(key, value, 'PX', ttlMs);
  }

  async del(key: string): Promise<void> {
    await this.redis.del(key);
  }
}
