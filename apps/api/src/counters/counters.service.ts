import { Injectable } from '@nestjs/common';
import { WriteBehind, WriteThrough } from '@app/cache';
import { AppConfig } from '@app/config';
import { CounterView } from '@app/counter-view';
import { Database, isPostgresUnavailable } from '@app/db';
import { EVENT_VERSION, type CounterIncremented, encodeEvent } from '@app/events';
import { CounterRepository, type CounterIncrement } from '@app/store';
import { TRACEPARENT_HEADER, type TraceContext, formatTraceparent } from '@app/platform';
import { PinoLogger } from 'nestjs-pino';
import { OverloadedError, ReadUnavailableError, UnavailableError } from '../http/api.error.js';
import { ApiMetrics } from '../ingest/api.metrics.js';
import { EventPublisher } from '../ingest/event-publisher.js';
import { KafkaUnavailableError, PublishQueueFullError } from '../ingest/kafka-unavailable.error.js';

export type WriteModeUsed = 'write-behind' | 'write-through';

export interface Written {
  mode: WriteModeUsed;
  /** Per counter, the value served right after the write; absent when it was not computed or Redis is down. */
  values: Map<string, number>;
}

/**
 * Counter writes and reads. Write-behind (default): the deltas enter the Redis view (`pending`), then the
 * events are published to Kafka; only Kafka's acknowledgement makes the write accepted. When Kafka is
 * unavailable (circuit open, refusal, timeout) the same events are written through: ledger and upsert in one
 * Postgres transaction, then the view is reconciled. With both down: UnavailableError, nothing acknowledged,
 * the pending deltas taken back.
 */
@Injectable()
export class CountersService {
  private readonly writeBehind: WriteBehind<void, void>;
  private readonly writeThrough: WriteThrough<
    Written & { changed: { name: string; value: number; version: number }[] }
  >;

  constructor(
    private readonly config: AppConfig,
    private readonly database: Database,
    private readonly counters: CounterRepository,
    private readonly view: CounterView,
    private readonly publisher: EventPublisher,
    private readonly metrics: ApiMetrics,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext('Counters');
    const cacheError = (error: unknown) => {
      this.metrics.cacheRequests.inc({ cache: 'counter-view', result: 'error' });
      this.logger.warn({ err: error }, 'counter view unavailable');
    };
    this.writeBehind = new WriteBehind({ cacheError });
    this.writeThrough = new WriteThrough({ cacheError });
  }

  /**
   * The served value: the Redis view (read-your-writes); Postgres alone when Redis is unreachable. When Postgres
   * cannot serve (down, or its pool busy past the wait, as under overload) the read is refused with 503: a view miss
   * that failed on Postgres is not sent to Postgres a second time.
   */
  async value(name: string): Promise<number> {
    try {
      const { value, hit, filled } = await this.view.lookup(name);
      this.metrics.cacheLookup('counter-view', hit ? 'hit' : 'miss', filled);
      return value;
    } catch (error) {
      this.metrics.cacheLookup('counter-view', 'error');
      if (isPostgresUnavailable(error)) throw this.readUnavailable(error);
      this.logger.warn({ err: error }, 'counter view unavailable: reading Postgres');
      try {
        return (await this.counters.read(name)).value;
      } catch (readError) {
        if (isPostgresUnavailable(readError)) throw this.readUnavailable(readError);
        throw readError;
      }
    }
  }

  private readUnavailable(cause: unknown): ReadUnavailableError {
    return new ReadUnavailableError('Postgres cannot serve the read now', this.config.api.retryAfterSeconds, {
      cause,
    });
  }

  /**
   * Writes increments (event ids already assigned) in the configured mode. `withValues`: compute the served
   * value of each counter after the write (single writes); batches skip it. `trace`: the request's span, carried
   * by every event in its `traceparent` Kafka header.
   */
  async write(increments: CounterIncrement[], withValues: boolean, trace?: TraceContext): Promise<Written> {
    const mode = this.config.api.writeMode.counters;
    if (increments.length === 0) return { mode, values: new Map() };
    if (mode === 'write-behind' && this.publisher.available) {
      const values = new Map<string, number>();
      try {
        await this.writeBehind.write({
          updateCache: async () => {
            const acceptedAt = Date.now();
            if (withValues) {
              for (const inc of increments) {
                values.set(
                  inc.name,
                  await this.view.addPending(inc.name, { eventId: inc.eventId, delta: inc.by, acceptedAt }),
                );
              }
            } else {
              await this.view.addPendingMany(
                increments.map((inc) => ({
                  name: inc.name,
                  entry: { eventId: inc.eventId, delta: inc.by, acceptedAt },
                })),
              );
            }
          },
          appendToLog: () => {
            const headers = trace ? { [TRACEPARENT_HEADER]: formatTraceparent(trace) } : undefined;
            return this.publisher.publish(increments.map((inc) => this.message(inc, headers)));
          },
          undoCache: () => this.removePending(increments),
        });
        this.metrics.eventsAccepted.inc({ entity: 'counter', mode: 'write-behind' }, increments.length);
        return { mode: 'write-behind', values };
      } catch (error) {
        if (error instanceof PublishQueueFullError) {
          this.metrics.writesRejected.inc({ entity: 'counter', reason: 'overloaded' }, increments.length);
          throw new OverloadedError(error.message, this.config.api.retryAfterSeconds);
        }
        if (!(error instanceof KafkaUnavailableError)) throw error;
        this.logger.debug({ err: error }, 'kafka unavailable: writing through');
      }
    }
    return this.writeThroughNow(increments);
  }

  private async writeThroughNow(increments: CounterIncrement[]): Promise<Written> {
    let written: Written;
    try {
      written = await this.writeThrough.write(
        async () => {
          const applied = await this.database.db.tx((t) =>
            this.counters.applyIncrements(t, increments, 'write-through'),
          );
          // Postgres' own values, replaced by the view's once it is reconciled (they add others' pending).
          const values = new Map(applied.changed.map((c) => [c.name, c.value]));
          return { mode: 'write-through' as const, values, changed: applied.changed };
        },
        async (result) => {
          const served = await this.view.reconcile(increments, result.changed);
          for (const [name, value] of served) result.values.set(name, value);
        },
      );
    } catch (error) {
      // Neither Kafka nor Postgres took it. Take back any pending deltas so reads never show it.
      await this.removePending(increments).catch(() => undefined);
      this.metrics.writesRejected.inc({ entity: 'counter', reason: 'unavailable' }, increments.length);
      throw new UnavailableError('neither Kafka nor Postgres accepted the write', this.config.api.retryAfterSeconds, {
        cause: error,
      });
    }
    this.metrics.eventsAccepted.inc({ entity: 'counter', mode: 'write-through' }, increments.length);
    return { mode: written.mode, values: written.values };
  }

  private async removePending(increments: CounterIncrement[]): Promise<void> {
    const byName = new Map<string, string[]>();
    for (const inc of increments) byName.set(inc.name, [...(byName.get(inc.name) ?? []), inc.eventId]);
    await Promise.all([...byName].map(([name, ids]) => this.view.removePending(name, ids)));
  }

  private message(inc: CounterIncrement, headers: Record<string, string> | undefined) {
    const event: CounterIncremented = {
      v: EVENT_VERSION,
      id: inc.eventId,
      type: 'counter.incremented',
      key: inc.name,
      ts: Date.now(),
      by: inc.by,
    };
    return { topic: this.config.kafka.topics.counters, key: inc.name, value: encodeEvent(event), headers };
  }
}
