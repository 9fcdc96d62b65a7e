import { describe, expect, it } from 'vitest';
import { WriteBehind } from './write-behind.js';
import { WriteThrough } from './write-through.js';

describe('WriteThrough', () => {
  it('writes the database, then the cache', async () => {
    const order: string[] = [];
    const result = await new WriteThrough<number>().write(
      async () => {
        order.push('db');
        return 3;
      },
      async (r) => {
        order.push(`cache:${r}`);
      },
    );
    expect(result).toBe(3);
    expect(order).toEqual(['db', 'cache:3']);
  });

  it('leaves the cache alone when the database fails', async () => {
    let cacheTouched = false;
    await expect(
      new WriteThrough<number>().write(
        () => Promise.reject(new Error('db down')),
        async () => {
          cacheTouched = true;
        },
      ),
    ).rejects.toThrow('db down');
    expect(cacheTouched).toBe(false);
  });

  it('keeps the committed write when the cache fails, and lets the caller drop the stale entry', async () => {
    const dropped: number[] = [];
    const errors: unknown[] = [];
    const result = await new WriteThrough<number>({
      cacheError: (e) => errors.push(e),
      onCacheFailure: async (_e, r) => {
        dropped.push(r);
      },
    }).write(
      async () => 9,
      () => Promise.reject(new Error('cache down')),
    );
    expect(result).toBe(9);
    expect(dropped).toEqual([9]);
    expect(errors).toHaveLength(1);
  });
});

describe('WriteBehind', () => {
  it('updates the cache, then appends to the log', async () => {
    const order: string[] = [];
    const out = await new WriteBehind<string, string>().write({
      updateCache: async () => {
        order.push('cache');
        return 'c';
      },
      appendToLog: async () => {
        order.push('log');
        return 'l';
      },
      undoCache: async () => {
        order.push('undo');
      },
    });
    expect(out).toEqual({ cache: 'c', log: 'l' });
    expect(order).toEqual(['cache', 'log']);
  });

  it('undoes the cache change when the log refuses, and fails', async () => {
    const order: string[] = [];
    await expect(
      new WriteBehind<string, string>().write({
        updateCache: async () => {
          order.push('cache');
          return 'c';
        },
        appendToLog: () => Promise.reject(new Error('kafka down')),
        undoCache: async () => {
          order.push('undo');
        },
      }),
    ).rejects.toThrow('kafka down');
    expect(order).toEqual(['cache', 'undo']);
  });

  it('still appends to the log when the cache is down, says the cache has nothing, and undoes a late update', async () => {
    const order: string[] = [];
    const out = await new WriteBehind<string, string>().write({
      updateCache: () => Promise.reject(new Error('redis timed out')),
      appendToLog: async () => {
        order.push('log');
        return 'l';
      },
      undoCache: async () => {
        order.push('undo');
      },
    });
    expect(out).toEqual({ cache: undefined, log: 'l' });
    // The update may still be carried out by a slow server: it is undone once the log has the write.
    expect(order).toEqual(['log', 'undo']);
  });
});
