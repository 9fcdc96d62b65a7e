import { describe, expect, it } from 'vitest';
import { RateLimiter } from './rate-limiter.js';

describe('RateLimiter', () => {
  it('lets a client through up to its limit in a window, then answers the seconds to wait', () => {
    const limiter = new RateLimiter(3, 1000);
    const answers = [0, 10, 20, 30].map((t) => limiter.hit('a', 1_000_000 + t));
    expect(answers).toEqual([undefined, undefined, undefined, 1]);
  });

  it('counts each client on its own', () => {
    const limiter = new RateLimiter(1, 1000);
    expect(limiter.hit('a', 5_000)).toBeUndefined();
    expect(limiter.hit('b', 5_000)).toBeUndefined();
    expect(limiter.hit('a', 5_001)).toBe(1);
  });

  it('slides: the previous window weighs by how much of it is still inside the last window', () => {
    const limiter = new RateLimiter(10, 1000);
    for (let i = 0; i < 10; i++) expect(limiter.hit('a', 10_900 + i)).toBeUndefined();
    // 100 ms into the next window, 90% of the previous one's 10 still count: one more request fits, not ten.
    expect(limiter.hit('a', 11_100)).toBeUndefined();
    expect(limiter.hit('a', 11_100)).toBe(1);
    // Half way through, half of them count: four more fit.
    const later = [0, 1, 2, 3, 4].map(() => limiter.hit('a', 11_500));
    expect(later).toEqual([undefined, undefined, undefined, undefined, 1]);
  });

  it('forgets a window that is more than one window old', () => {
    const limiter = new RateLimiter(1, 1000);
    expect(limiter.hit('a', 1_000)).toBeUndefined();
    expect(limiter.hit('a', 3_500)).toBeUndefined();
  });
});
