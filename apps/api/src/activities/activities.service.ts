import { Injectable } from '@nestjs/common';
import { CacheAside, RedisCacheStore } from '@app/cache';
import { AppConfig } from '@app/config';
import { Database, isPostgresUnavailable } from '@app/db';
import { type ActivityRecorded, EVENT_VERSION, activityFingerprint, eventBody, eventId } from '@app/events';
import { type HeldKey, IdempotencyService, type KeyState } from '@app/idempotency';
import { type TraceContext, formatTraceparent } from '@app/platform';
import { RedisClient } from '@app/redis';
import { type ActivityRecord, ActivityRepository, type FeedCursor } from '@app/store';
import { ReadUnavailableError } from '../http/api.error.js';
import { type Answer, answerHeld, statusOf } from '../ingest/answers.js';
import { ApiMetrics } from '../ingest/api.metrics.js';
import type { OutgoingMessage } from '../ingest/event-publisher.js';
import { requestKeys } from '../ingest/write-keys.js';
import { WritePath, type WriteModeUsed } from '../ingest/write-path.js';
import { type ActivityInput, FEED_MAX_LIMIT } from './activities.schemas.js';

/** One activity of a request, planned: its record (id = event id) and what its key (if any) said. */
interface Planned {
  record: ActivityRecord;
  key: string;
  print: string;
  clientKey: string | undefined;
  held?: HeldKey | undefined;
  state?: KeyState | undefined;
}

/**
 * Activity writes and the actor feed. Write-behind publishes `activity.recorded` events; the fallback (and
 * write-through mode) inserts them directly, idempotently by id (WritePath). The feed is cache-aside: an actor's
 * first page (the newest FEED_MAX_LIMIT) is cached briefly under `feed:<actor>`, which the consumer drops when the
 * actor gets a new activity; older pages are read from Postgres.
 */
@Injectable()
export class ActivitiesService {
  private readonly firstPages: CacheAside<ActivityRecord[]>;

  constructor(
    private readonly config: AppConfig,
    private readonly database: Database,
    private readonly activities: ActivityRepository,
    private readonly idempotency: IdempotencyService,
    private readonly writes: WritePath,
    private readonly metrics: ApiMetrics,
    redis: RedisClient,
  ) {
    this.firstPages = new CacheAside(new RedisCacheStore(redis.redis), {
      namespace: 'feed:',
      ttlMs: config.api.feedCacheTtlMs,
      events: {
        hit: () => this.metrics.cacheLookup('feed', 'hit'),
        miss: () => this.metrics.cacheLookup('feed', 'miss'),
        storeError: () => this.metrics.cacheLookup('feed', 'error'),
      },
    });
  }

  /** One activity: `{id, mode}`, or the first answer of its key. */
  async record(clientId: string, input: ActivityInput, trace: TraceContext): Promise<Answer> {
    const [write] = await this.write(clientId, [input], trace);
    const { planned, mode } = write as { planned: Planned; mode: WriteModeUsed };
    if (planned.state) return answerHeld(this.metrics, 'activity', planned.state);
    return { status: statusOf(mode), body: answerBody(planned, mode) };
  }

  /** A batch: per item accepted, or what its `id` said (duplicate, in flight, conflict). */
  async recordBatch(clientId: string, inputs: ActivityInput[], trace: TraceContext): Promise<Answer> {
    const written = await this.write(clientId, inputs, trace);
    const modes = written.flatMap(({ planned, mode }) => (planned.state ? [] : [mode]));
    const mode = modes[0] ?? this.config.api.writeMode.activities;
    const results = written.map(({ planned, mode: itemMode }) => {
      const id = planned.record.id;
      switch (planned.state?.kind) {
        case undefined:
          return { id, status: 'accepted', mode: itemMode };
        case 'replay': {
          const first = JSON.parse(planned.state.body) as { id: string; mode: string };
          return { id: first.id, status: 'duplicate', mode: first.mode };
        }
        case 'in-flight':
          return { id, status: 'in-flight' };
        case 'mismatch':
          return { id, status: 'conflict' };
      }
    });
    for (const r of results) {
      if (r.status === 'duplicate') this.metrics.idempotency('activity', 'replayed');
      else if (r.status === 'in-flight') this.metrics.idempotency('activity', 'in_flight');
      else if (r.status === 'conflict') this.metrics.idempotency('activity', 'conflict');
    }
    return { status: statusOf(mode), body: JSON.stringify({ accepted: modes.length, mode, results }) };
  }

  /** A page of the feed; 503 (ReadUnavailableError) when Postgres cannot serve it now. */
  async feed(actor: string, limit: number, before: FeedCursor | undefined): Promise<ActivityRecord[]> {
    try {
      if (before !== undefined) return await this.activities.feed(actor, limit, before);
      // The loader runs once per refill (concurrent misses of one actor share it).
      const page = await this.firstPages.get(actor, () => {
        this.metrics.cacheFilled('feed');
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

  /** Takes the keys, writes the activities whose key is free (or who have none), stores their answers. */
  private async write(
    clientId: string,
    inputs: ActivityInput[],
    trace: TraceContext,
  ): Promise<{ planned: Planned; mode: WriteModeUsed }[]> {
    const acceptedAt = Date.now();
    const newKey = requestKeys();
    const planned = inputs.map((input) => this.plan(clientId, input, acceptedAt, newKey));
    await this.idempotency.claimKeyed(clientId, planned);
    const fresh = planned.filter((p) => p.state === undefined);
    let mode = this.config.api.writeMode.activities;
    if (fresh.length > 0) {
      const records = fresh.map((p) => p.record);
      const traceparent = formatTraceparent(trace);
      const held = fresh.flatMap((p) => (p.held ? [p.held] : []));
      try {
        const done = await this.writes.write(mode, {
          entity: 'activity',
          messages: records.map((r) => this.message(r, traceparent)),
          writeThrough: async () => {
            await this.database.db.tx((t) => this.activities.insert(t, records));
            await Promise.all([...new Set(records.map((r) => r.actor))].map((a) => this.firstPages.invalidate(a)));
          },
          retry:
            fresh.length === 1 && fresh[0]
              ? { idempotencyKey: fresh[0].key, eventId: fresh[0].record.id }
              : { items: fresh.map((p) => ({ id: p.key, eventId: p.record.id })) },
        });
        mode = done.mode;
        this.metrics.idempotency('activity', 'accepted', fresh.length);
      } catch (error) {
        if (held.length > 0) await this.idempotency.release(held);
        throw error;
      }
      await this.idempotency.complete(
        fresh.flatMap((p) =>
          p.held ? [{ held: p.held, fingerprint: p.print, status: statusOf(mode), body: answerBody(p, mode) }] : [],
        ),
      );
    }
    return planned.map((p) => ({ planned: p, mode }));
  }

  private plan(clientId: string, input: ActivityInput, acceptedAt: number, newKey: () => string): Planned {
    const data = input.data ?? null;
    const print = activityFingerprint(input);
    const key = input.id ?? newKey();
    const record: ActivityRecord = {
      id: eventId(clientId, key, print),
      actor: input.actor,
      verb: input.verb,
      object: input.object,
      occurredAt: new Date(input.occurredAt ?? acceptedAt).toISOString(),
      data,
      acceptedAt,
    };
    return { record, key, print, clientKey: input.id };
  }

  private message(record: ActivityRecord, traceparent: string): OutgoingMessage {
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
    return { topic: this.config.kafka.topics.activities, key: record.actor, body: eventBody(event), traceparent };
  }
}

/** The answer to one activity, and what its key replays. */
function answerBody(planned: Planned, mode: WriteModeUsed): string {
  return JSON.stringify({ id: planned.record.id, mode });
}
