import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { CounterView } from '@app/counter-view';
import { RedisClient } from '@app/redis';
import { CounterRepository, type CounterIncrement, type CounterState } from '@app/store';
import { PinoLogger } from 'nestjs-pino';
import { ConsumerMetrics } from './consumer.metrics.js';

/** The API caches an actor's first feed page under this key (ioredis adds REDIS_KEY_PREFIX). */
export const feedCacheKey = (actor: string) => `feed:${actor}`;

export interface CommittedChanges {
  /**
   * Every counter increment of the committed batch, duplicates and increments skipped below the stored offset
   * included: all of them are applied in Postgres now, so all of their ids leave the view's pending set.
   */
  increments: CounterIncrement[];
  /** The counters the transactions changed, with their new (value, version). */
  changed: CounterState[];
  /** Actors that got a new activity. */
  actors: Iterable<string>;
  /** Counter increments dead-lettered: they will never be applied, so they leave pending too. */
  dropped: CounterIncrement[];
}

/** Most increments whose reconcile waits to be tried again; past it the oldest are left to the view sweep. */
const MAX_RETRY_INCREMENTS = 100_000;
const RETRY_DELAY_MS = 1000;

/**
 * Brings Redis up to date after a Postgres commit: the counter view (base forward, applied ids out of pending)
 * and the actors' cached feed pages. Redis is a view: Postgres and the offsets are already committed, so a failure
 * here never holds offsets back. A failed reconcile is kept and tried again every second, in the background, until
 * Redis takes it: left undone, its applied ids would stay pending while later reconciles move the base past them, an
 * over-count that never heals on a counter whose base never expires. The queue is bounded; what falls out of it (and
 * what a crash loses) is the view sweep's (ViewSweeper).
 */
@Injectable()
export class ViewSyncService implements OnApplicationShutdown {
  private lastWarning = 0;
  private retries: CommittedChanges[] = [];
  private retryIncrements = 0;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly view: CounterView,
    private readonly counters: CounterRepository,
    private readonly redisClient: RedisClient,
    private readonly metrics: ConsumerMetrics,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext('ViewSync');
  }

  async afterCommit(changes: CommittedChanges): Promise<void> {
    await Promise.all([this.reconcileCounters(changes), this.invalidateFeeds(changes.actors)]);
  }

  private async reconcileCounters(changes: CommittedChanges): Promise<void> {
    try {
      await this.reconcile(changes);
    } catch (error) {
      this.failed('counter_view', error);
      this.retryLater(changes);
    }
  }

  private async reconcile({ increments, changed, dropped }: CommittedChanges): Promise<void> {
    if (increments.length > 0) {
      // A counter touched only by duplicates (or by skipped messages) is not in `changed`. Its ids must still
      // leave pending, and only together with a base that includes them: with the old base, removing them
      // would make the view undercount. So its current row is read (after the commit, so it includes them).
      const known = new Set(changed.map((c) => c.name));
      const missing = [...new Set(increments.map((i) => i.name))].filter((name) => !known.has(name));
      const current = missing.length > 0 ? await this.counters.readMany(missing) : [];
      await this.view.reconcile(increments, [...changed, ...current]);
    }
    await this.view.removePendingMany(dropped);
  }

  private retryLater(changes: CommittedChanges): void {
    this.retries.push({ ...changes, actors: [] });
    this.retryIncrements += changes.increments.length + changes.dropped.length;
    while (this.retryIncrements > MAX_RETRY_INCREMENTS && this.retries.length > 1) {
      const oldest = this.retries.shift();
      this.retryIncrements -= (oldest?.increments.length ?? 0) + (oldest?.dropped.length ?? 0);
      this.metrics.reconcileRetriesDropped.inc();
    }
    this.retryTimer ??= setTimeout(() => void this.retryNow(), RETRY_DELAY_MS).unref();
  }

  /** Tries the failed reconciles again, oldest first; at the first failure the rest wait for the next turn. */
  private async retryNow(): Promise<void> {
    this.retryTimer = undefined;
    const queued = this.retries.splice(0);
    this.retryIncrements = 0;
    for (const [i, changes] of queued.entries()) {
      try {
        await this.reconcile(changes);
      } catch (error) {
        this.failed('counter_view', error);
        for (const rest of queued.slice(i)) this.retryLater(rest);
        return;
      }
    }
  }

  onApplicationShutdown(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  private async invalidateFeeds(actors: Iterable<string>): Promise<void> {
    const keys = [...new Set(actors)].map(feedCacheKey);
    if (keys.length === 0) return;
    try {
      // One DEL per key, all sent at once (one round trip of latency): a multi-key DEL or a pipeline over these
      // keys would fail on Redis Cluster, where they hash to different slots.
      await Promise.all(keys.map((key) => this.redisClient.redis.del(key)));
    } catch (error) {
      this.failed('feed_cache', error);
    }
  }

  private failed(target: 'counter_view' | 'feed_cache', error: unknown): void {
    this.metrics.redisFailures.inc({ target });
    // Redis down means a failure per batch: one line per 10 s is enough to see it.
    if (Date.now() - this.lastWarning < 10_000) return;
    this.lastWarning = Date.now();
    this.logger.warn({ err: error, target }, 'post-commit Redis update failed; tried again in the background');
  }
}
