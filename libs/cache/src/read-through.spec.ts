import { describe, expect, it } from 'vitest';
import { MemoryStore } from './memory-store.js';
import { ReadThroughCache } from './read-through.js';

describe('ReadThroughCache', () => {
  it('loads through the registered loader once per key', async () => {
    const loaded: string[] = [];
    const cache = new ReadThroughCache<string>(
      new MemoryStore(),
      async (key) => {
        loaded.push(key);
        return key.toUpperCase();
      },
      { namespace: 'rt:', ttlMs: 1000 },
    );
    expect(await Promise.all([cache.get('a'), cache.get('a'), cache.get('b')])).toEqual(['A', 'A', 'B']);
    expect(await cache.get('a')).toBe('A');
    expect(loaded.sort()).toEqual(['a', 'b']);
  });
});
