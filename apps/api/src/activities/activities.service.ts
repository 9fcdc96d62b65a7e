import { Injectable } from '@nestjs/common';
import { CacheAside, RedisCacheStore, WriteThrough } from '@app/cache';
import { AppConfig } from '@app/config';
import { Database, isPostgresUnavailable } from '@app/db';
import { type ActivityRecorded, EVENT_VERSION, encodeEvent } from '@app/events';
import { RedisClient } from '@app/redis';
import { type ActivityRecord, ActivityRepository, type FeedCursor } from '@app/store';
import { TRACEPARENT_HEADER, type TraceContext, formatTraceparent } from '@app/platform';
import { PinoLogger } from 'nestjs-pino';
import { OverloadedError, ReadUnavailableError, UnavailableError } from '../http/api.error.js';
import type { WriteModeUsed } from '../counters/counters.service.js';
import { ApiMetrics } from '../ingest/api.metrics.js';
import { EventPublisher } from '../ingest/event-publisher.js';
import { KafkaUnavailableError, PublishQueueFullError } from '../ingest/kafka-unavailable.error.js';
import { FEED_MAX_LIMIT } from './activities.dto.js';

/**
 * Activity writes and the actor feed. Write-behind publishes `activity.recorded` events; the fallback (and
 * write-through mode) inserts them directly, idempotently by id. The feed is cache-aside: an actor's first
 * page (the newest FEED_MAX_LIMIT) is cached briefly under `feed:<actor>`, which the consumer drops when
 * the actor gets a new activity; older pages are read from Postgres.
 */
@Injectable()
export class ActivitiesService {
  private readonly firstPages: CacheAside<ActivityRecord[]>;
  private readonly writeThrough: WriteThrough<ActivityRecord[]>;

  constructor(
    private readonly config: AppConfig,
    private readonly database: Database,
    private readonly activities: ActivityRepository,
    private readonly publisher: EventPublisher,
    private readonly metrics: ApiMetrics,
    redis: RedisClient,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext('Activities');
    const events = {
      hit: () => this.metrics.cacheLookup('feed', 'hit'),
      miss: () => this.metrics.cacheLookup('feed', 'miss'),
      storeError: () => this.metrics.cacheLookup('feed', 'error'),
    };
    this.firstPages = new CacheAside(new RedisCacheStore(redis.redis), {
      namespace: 'feed:',
      ttlMs: config.api.feedCacheTtlMs,
      events,
    });
    this.writeThrough = new WriteThrough({ cacheError: events.storeError });
  }

  /** A page of the feed; 503 (ReadUnavailableError) when Postgres cannot serve it now. */
  async feed(actor: string, limit: number, before: FeedCursor | undefined): Promise<ActivityRecord[]> {
    try {
      if (before !== undefined) return await this.activities.feed(actor, limit, before);
      // The loader runs once per refill (concurrent misses of one actor share it).
      const page = await this.firstPages.get(actor, () => {
        this.metrics.cacheFills.inc({ cache: 'feed' });
        return this.activities.feed(actor, FEED_MAX_LIMIT);
      });
      return (page ?? []).slice(0, limit);
    } catch (error) {
      if (!isPostgresUnavailable(error)) throw error;
      throw new ReadUnavailableError('Postgres cannot serve the feed now', this.config.api.retryAfterSeconds, {
        cause: error,
      });
    }
  }

  /**
   * Writes new activities (ids assigned) in the configured mode; returns the mode used. `trace`: the request's
   * span, carried by every event in its `traceparent` Kafka header.
   */
  async write(records: ActivityRecord[], trace?: TraceContext): Promise<WriteModeUsed> {
    if (records.length === 0) return this.config.api.writeMode.activities;
    if (this.config.api.writeMode.activities === 'write-behind' && this.publisher.available) {
      try {
        const headers = trace ? { [TRACEPARENT_HEADER]: formatTraceparent(trace) } : undefined;
        await this.publisher.publish(records.map((r) => this.message(r, headers)));
        this.metrics.eventsAccepted.inc({ entity: 'activity', mode: 'write-behind' }, records.length);
        return 'write-behind';
      } catch (error) {
        if (error instanceof PublishQueueFullError) {
          this.metrics.writesRejected.inc({ entity: 'activity', reason: 'overloaded' }, records.length);
          throw new OverloadedError(error.message, this.config.api.retryAfterSeconds);
        }
        if (!(error instanceof KafkaUnavailableError)) throw error;
        this.logger.debug({ err: error }, 'kafka unavailable: writing through');
      }
    }
    try {
      await this.writeThrough.write(
        async () => {
          await this.database.db.tx((t) => this.activities.insert(t, records));
          return records;
        },
        async (written) => {
          await Promise.all([...new Set(written.map((r) => r.actor))].map((a) => this.firstPages.invalidate(a)));
        },
      );
    } catch (error) {
      this.metrics.writesRejected.inc({ entity: 'activity', reason: 'unavailable' }, records.length);
      throw new UnavailableError('neither Kafka nor Postgres accepted the write', this.config.api.retryAfterSeconds, {
        cause: error,
      });
    }
    this.metrics.eventsAccepted.inc({ entity: 'activity', mode: 'write-through' }, records.length);
    return 'write-through';
  }

  private message(record: ActivityRecord, headers: Record<string, string> | undefined) {
    const event: ActivityRecorded = {
      v: EVENT_VERSION,
      id: record.id,
      type: 'activity.recorded',
      key: record.actor,
      ts: record.acceptedAt,
      verb: record.verb,
      object: record.object,
      occurredAt: record.occurredAt,
      data: record.data as ActivityRecorded['data'],
    };
    return { topic: this.config.kafka.topics.activities, key: record.actor, value: encodeEvent(event), headers };
  }
}
