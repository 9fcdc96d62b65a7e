import { describe, expect, it } from 'vitest';
import { CacheAside } from './cache-aside.js';
import { MemoryStore } from './memory-store.js';

const deferred = <T>() => {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
};

describe('CacheAside', () => {
  it('loads once for a burst of concurrent misses, then serves hits from the store', async () => {
    const store = new MemoryStore();
    const cache = new CacheAside<{ n: number }>(store, { namespace: 'c:', ttlMs: 10_000 });
    const gate = deferred<{ n: number }>();
    let loads = 0;
    const load = () => {
      loads += 1;
      return gate.promise;
    };
    const burst = Array.from({ length: 1000 }, () => cache.get('k', load));
    gate.resolve({ n: 7 });
    const values = await Promise.all(burst);
    expect(loads).toBe(1);
    expect(values.every((v) => v?.n === 7)).toBe(true);
    expect(await cache.get('k', load)).toEqual({ n: 7 });
    expect(loads).toBe(1);
    expect(store.values.has('c:k')).toBe(true);
  });

  it('caches "not found" with the short negative TTL', async () => {
    const store = new MemoryStore();
    const cache = new CacheAside<string>(store, { namespace: '', ttlMs: 10_000, negativeTtlMs: 500, jitter: 0 });
    let loads = 0;
    const load = async () => {
      loads += 1;
      return null;
    };
    expect(await cache.get('missing', load)).toBeNull();
    expect(await cache.get('missing', load)).toBeNull();
    expect(loads).toBe(1);
    expect(store.values.get('missing')?.ttlMs).toBe(500);
  });

  it('spreads TTLs with jitter', async () => {
    const store = new MemoryStore();
    const cache = new CacheAside<number>(store, { namespace: '', ttlMs: 10_000, jitter: 0.2 });
    await Promise.all(Array.from({ length: 50 }, (_, i) => cache.get(`k${i}`, async () => i)));
    const ttls = [...store.values.values()].map((v) => v.ttlMs);
    expect(Math.min(...ttls)).toBeGreaterThanOrEqual(8000);
    expect(Math.max(...ttls)).toBeLessThanOrEqual(12_000);
    expect(new Set(ttls).size).toBeGreaterThan(1);
  });

  it('falls through to the loader when the store fails, and reports it', async () => {
    const store = new MemoryStore();
    store.failing = true;
    const errors: unknown[] = [];
    const cache = new CacheAside<number>(store, {
      namespace: '',
      ttlMs: 1000,
      events: { storeError: (e) => errors.push(e) },
    });
    expect(await cache.get('k', async () => 42)).toBe(42);
    expect(errors.length).toBeGreaterThan(0);
  });

  it('propagates a loader failure to every waiter and retries on the next call', async () => {
    const cache = new CacheAside<number>(new MemoryStore(), { namespace: '', ttlMs: 1000 });
    const failing = () => Promise.reject(new Error('db down'));
    await expect(Promise.all([cache.get('k', failing), cache.get('k', failing)])).rejects.toThrow('db down');
    expect(await cache.get('k', async () => 5)).toBe(5);
  });

  it('invalidate drops the key', async () => {
    const store = new MemoryStore();
    const cache = new CacheAside<number>(store, { namespace: 'n:', ttlMs: 1000 });
    await cache.get('k', async () => 1);
    await cache.invalidate('k');
    expect(await cache.get('k', async () => 2)).toBe(2);
  });
});
