import { Injectable } from '@nestjs/common';
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

/**
 * Brings Redis up to date after a Postgres commit: the counter view (base forward, applied ids out of pending)
 * and the actors' cached feed pages. Best effort by design: Redis is a view, Postgres and the offsets are already
 * committed, so a failure here is logged and counted, never retried in a loop and never holds offsets back. The
 * view heals on its own: a refill after the base expires drops the ids the ledger holds.
 */
@Injectable()
export class ViewSyncService {
  private lastWarning = 0;

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

  private async reconcileCounters({ increments, changed, dropped }: CommittedChanges): Promise<void> {
    try {
      if (increments.length > 0) {
        // A counter touched only by duplicates (or by skipped messages) is not in `changed`. Its ids must still
        // leave pending, and only together with a base that includes them: with the old base, removing them
        // would make the view undercount. So its current row is read (after the commit, so it includes them).
        const known = new Set(changed.map((c) => c.name));
        const missing = [...new Set(increments.map((i) => i.name))].filter((name) => !known.has(name));
        const current = missing.length > 0 ? await this.counters.readMany(missing) : [];
        await this.view.reconcile(increments, [...changed, ...current]);
      }
      const droppedByName = new Map<string, string[]>();
      for (const inc of dropped) droppedByName.set(inc.name, [...(droppedByName.get(inc.name) ?? []), inc.eventId]);
      await Promise.all([...droppedByName].map(([name, ids]) => this.view.removePending(name, ids)));
    } catch (error) {
      this.failed('counter_view', error);
    }
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
    this.logger.warn({ err: error, target }, 'post-commit Redis update failed; the view heals on refill');
  }
}
