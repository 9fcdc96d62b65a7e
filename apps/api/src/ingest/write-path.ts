import { Injectable } from '@nestjs/common';
import { AppConfig, type WriteMode } from '@app/config';
import { ApiError, OutcomeUnknownError, OverloadedError, UnavailableError } from '../http/api.error.js';
import { ApiMetrics, type Entity } from './api.metrics.js';
import { EventPublisher, type OutgoingMessage } from './event-publisher.js';
import { KafkaUnavailableError, PublishQueueFullError } from './kafka-unavailable.error.js';

export type WriteModeUsed = WriteMode;

/** A write about to take the ladder: its events, how to write it through, and what a retry must send. */
export interface LadderWrite<T> {
  entity: Entity;
  /** The events, for Kafka (write-behind). */
  messages: OutgoingMessage[];
  /** The same write, applied in Postgres (and the cache) synchronously: the fallback, or the configured mode. */
  writeThrough: () => Promise<T>;
  /** What a client must send again if the outcome is unknown (see OutcomeUnknownError). */
  retry: ConstructorParameters<typeof OutcomeUnknownError>[2];
}

/**
 * The one write path of counters and activities: Kafka (write-behind) while it takes events, else write-through,
 * else 503. Every rung is counted in the metrics.
 * - Kafka acknowledged (acks=all): write-behind.
 * - Too many events already wait for Kafka: 503 overloaded, nothing applied.
 * - Kafka is unavailable (circuit open, refused, timed out): the same events are written through.
 * - Write-through failed too: 503. If the events were sent to Kafka and may still land there, the answer says so
 *   (OutcomeUnknownError, with the key to retry with): a 503 that promised "nothing applied" would make a client
 *   count the write twice.
 */
@Injectable()
export class WritePath {
  constructor(
    private readonly publisher: EventPublisher,
    private readonly metrics: ApiMetrics,
    private readonly config: AppConfig,
  ) {}

  /** Whether a write in `mode` goes to Kafka now (false: straight to write-through). */
  behind(mode: WriteMode): boolean {
    return mode === 'write-behind' && this.publisher.available;
  }

  async write<T>(
    mode: WriteMode,
    write: LadderWrite<T>,
  ): Promise<{ mode: 'write-behind' } | { mode: 'write-through'; result: T }> {
    const events = write.messages.length;
    let mayHaveLanded = false;
    if (this.behind(mode)) {
      try {
        await this.publisher.publish(write.messages);
        this.metrics.accepted(write.entity, 'write-behind', events);
        return { mode: 'write-behind' };
      } catch (error) {
        if (error instanceof PublishQueueFullError) {
          this.metrics.rejected(write.entity, 'overloaded', events);
          throw new OverloadedError(error.message, this.config.api.retryAfterSeconds);
        }
        if (!(error instanceof KafkaUnavailableError)) throw error;
        mayHaveLanded = error.mayHaveLanded;
      }
    }
    let result: T;
    try {
      result = await write.writeThrough();
    } catch (error) {
      // A refusal of the write itself (a counter past its bound) is the client's answer, not an outage.
      if (error instanceof ApiError) throw error;
      this.metrics.rejected(write.entity, 'unavailable', events);
      const retryAfter = this.config.api.retryAfterSeconds;
      if (mayHaveLanded) {
        throw new OutcomeUnknownError(
          'Kafka did not confirm the write and Postgres did not take it',
          retryAfter,
          write.retry,
          {
            cause: error,
          },
        );
      }
      throw new UnavailableError('neither Kafka nor Postgres accepted the write', retryAfter, { cause: error });
    }
    this.metrics.accepted(write.entity, 'write-through', events);
    return { mode: 'write-through', result };
  }
}
