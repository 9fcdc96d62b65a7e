import { ThrottlerStorageService } from '@nestjs/throttler';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RateLimitStorage } from './rate-limit.storage.js';

/** A small deterministic generator, so a failure replays the same sequence. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 2 ** 32;
  };
}

describe('RateLimitStorage', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(1_764_000_000_000);
  });
  afterEach(() => vi.useRealTimers());

  // The library's storage is the reference: every answer must be the same, call for call.
  for (const blockDuration of [0, 1000, 2500]) {
    it(`answers as @nestjs/throttler's own storage does (block duration ${blockDuration} ms)`, async () => {
      const reference = new ThrottlerStorageService();
      const storage = new RateLimitStorage();
      const next = random(blockDuration + 7);
      try {
        for (let i = 0; i < 5000; i++) {
          vi.advanceTimersByTime(Math.floor(next() * next() * 400));
          const key = `client-${Math.floor(next() * 3)}`;
          const args = [key, 1000, 5, blockDuration, 'default'] as const;
          expect(await storage.increment(...args), `call ${i}`).toEqual(await reference.increment(...args));
        }
      } finally {
        reference.onApplicationShutdown();
        storage.close();
      }
    });
  }

  it('counts a large window (200,000 hits: the library copies its whole log on each of them)', async () => {
    const storage = new RateLimitStorage();
    try {
      for (let i = 0; i < 200_000; i++) await storage.increment('busy', 1000, 1_000_000, 1000, 'default');
      const answer = await storage.increment('busy', 1000, 1_000_000, 1000, 'default');
      expect(answer.totalHits).toBe(200_001);
    } finally {
      storage.close();
    }
  });
});
