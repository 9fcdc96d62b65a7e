import type { ThrottlerStorage } from '@nestjs/throttler';

/** What ThrottlerStorage.increment answers (@nestjs/throttler's ThrottlerStorageRecord). */
export interface RateLimitRecord {
  totalHits: number;
  timeToExpire: number;
  isBlocked: boolean;
  timeToBlockExpire: number;
}

/** The hits of one (client, throttler) still in the window: expiry times in order, oldest at `head`. */
class Hits {
  private times: number[] = [];
  private head = 0;

  get count(): number {
    return this.times.length - this.head;
  }

  push(expiresAt: number): void {
    this.times.push(expiresAt);
  }

  /** Drops the hits expired by `now`. Amortized O(1): hits expire in the order they came. */
  prune(now: number): void {
    while (this.head < this.times.length && (this.times[this.head] ?? 0) <= now) this.head++;
    if (this.head > 1024 && this.head * 2 > this.times.length) {
      this.times = this.times.slice(this.head);
      this.head = 0;
    }
  }

  /** The expiry of the oldest hit in the window (call only when `count` > 0). */
  peek(): number {
    return this.times[this.head] ?? 0;
  }

  clear(): void {
    this.times = [];
    this.head = 0;
  }
}

interface ClientRecord {
  hits: Map<string, Hits>;
  expiresAt: number;
  blockExpiresAt: number;
  isBlocked: boolean;
}

/**
 * The rate limit's in-memory storage: @nestjs/throttler's own ThrottlerStorageService (a sliding log of hits per
 * client, with blocking), with the same answers, but O(1) per request. The library's copies and filters the
 * client's whole log on every request (and spreads it into Math.min), so a client at the default limit of 20,000
 * requests per second cost 20,000 steps per request: in a CPU profile of the ingest benchmark it grew with the
 * request rate to one of the largest costs of the API. Here the log is a queue pruned from its oldest end.
 */
export class RateLimitStorage implements ThrottlerStorage {
  private readonly records = new Map<string, ClientRecord>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly sweepIntervalMs = 60_000) {}

  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<RateLimitRecord> {
    this.sweeper ??= setInterval(() => this.sweep(), this.sweepIntervalMs).unref();
    const now = Date.now();
    let record = this.records.get(key);
    if (!record) {
      record = { hits: new Map(), expiresAt: now + ttl, blockExpiresAt: 0, isBlocked: false };
      this.records.set(key, record);
    }
    let hits = record.hits.get(throttlerName);
    if (!hits) record.hits.set(throttlerName, (hits = new Hits()));
    hits.prune(now);

    let timeToExpire = Math.ceil((record.expiresAt - now) / 1000);
    if (timeToExpire <= 0) {
      record.expiresAt = now + ttl;
      timeToExpire = Math.ceil(ttl / 1000);
    }
    if (blockDuration <= 0) {
      const isBlocked = hits.count >= limit;
      if (!isBlocked) hits.push(now + ttl);
      return {
        totalHits: hits.count + (isBlocked ? 1 : 0),
        timeToExpire,
        isBlocked,
        timeToBlockExpire: isBlocked ? (hits.count > 0 ? Math.ceil((hits.peek() - now) / 1000) : timeToExpire) : 0,
      };
    }
    if (!record.isBlocked) hits.push(now + ttl);
    if (hits.count > limit && !record.isBlocked) {
      record.isBlocked = true;
      record.blockExpiresAt = now + blockDuration;
    }
    const timeToBlockExpire = Math.ceil((record.blockExpiresAt - now) / 1000);
    if (timeToBlockExpire <= 0 && record.isBlocked) {
      record.isBlocked = false;
      hits.clear();
      hits.push(now + ttl);
    }
    return { totalHits: hits.count, timeToExpire, isBlocked: record.isBlocked, timeToBlockExpire };
  }

  /** Forgets clients that are neither blocked nor have hits in their window, so the map does not grow for ever. */
  private sweep(now = Date.now()): void {
    for (const [key, record] of this.records) {
      if (record.isBlocked && record.blockExpiresAt > now) continue;
      if (record.expiresAt > now) continue;
      let live = false;
      for (const hits of record.hits.values()) {
        hits.prune(now);
        if (hits.count > 0) live = true;
      }
      if (!live) this.records.delete(key);
    }
  }

  /** Stops the sweep timer (tests; the timer never keeps a process alive). */
  close(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
    this.records.clear();
  }
}
