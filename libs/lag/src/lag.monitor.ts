import { Injectable } from '@nestjs/common';
import { KafkaAdmin } from '@app/kafka';
import { OffsetRepository } from '@app/store';
import type { PartitionLag } from './lag.types.js';

/**
 * Consumer lag per group, topic and partition, from the outside: Kafka's end offsets and committed offsets
 * (admin API) and the applied offsets in Postgres. It needs no consumer process, so it keeps reporting while
 * every consumer is down, which is when it matters.
 *
 * Lag in seconds is the age of the oldest event not yet applied: the timestamp of the message at the
 * partition's position. Kafka's admin API finds offsets by time, not times by offset, so it is found by a
 * binary search over ListOffsets-by-timestamp, between the last known applied time (or the log start) and
 * now, to 0.1% of the age; only lagging partitions are searched.
 */
@Injectable()
export class LagMonitor {
  constructor(
    private readonly admin: KafkaAdmin,
    private readonly offsets: OffsetRepository,
  ) {}

  async snapshot(groupId: string, topics: string[], now = Date.now()): Promise<PartitionLag[]> {
    const applied = new Map(
      (await this.offsets.all(groupId)).map((o) => [`${o.topic}/${o.partition}`, o.nextOffset] as const),
    );
    const perTopic = await Promise.all(
      topics.map(async (topic) => {
        const [ends, committed] = await Promise.all([
          this.admin.partitionOffsets(topic),
          this.admin.committedOffsets(groupId, topic),
        ]);
        return Promise.all(
          ends.map(async ({ partition, low, high }): Promise<PartitionLag> => {
            const appliedOffset = applied.get(`${topic}/${partition}`);
            const committedOffset = committed.get(partition);
            // An applied offset beyond the end belongs to an older log (a recreated topic): none of this log is
            // applied, and the consumers hold the partition until it is re-baselined.
            const position =
              appliedOffset !== undefined && appliedOffset > high
                ? low
                : Math.min(high, Math.max(low, appliedOffset ?? committedOffset ?? low));
            const lagMessages = high - position;
            const lagSeconds =
              lagMessages === 0
                ? 0
                : Math.max(0, (now - (await this.timestampAt(topic, partition, position, now))) / 1000);
            return {
              groupId,
              topic,
              partition,
              committedOffset,
              appliedOffset,
              position,
              endOffset: high,
              lagMessages,
              lagSeconds,
            };
          }),
        );
      }),
    );
    return perTopic.flat();
  }

  /**
   * The timestamp of the message at `offset` (which exists): the largest T whose first offset at or after T
   * is still <= offset. offsetAt(T) grows with T, so a binary search finds it.
   */
  async timestampAt(topic: string, partition: number, offset: number, now = Date.now()): Promise<number> {
    let lo = 0; // offsetAt(0) is the log start <= offset
    let hi = now + 1; // nothing is stamped after now, so offsetAt(hi) is the end > offset
    // Start near the answer: the message's age is usually minutes, not years.
    for (const age of [60_000, 3_600_000, 86_400_000]) {
      const probe = now - age;
      if ((await this.offsetAt(topic, partition, probe)) <= offset) {
        lo = probe;
        break;
      }
      hi = probe;
    }
    while (hi - lo > Math.max(1, (now - lo) / 1000)) {
      const mid = Math.floor((lo + hi) / 2);
      if ((await this.offsetAt(topic, partition, mid)) <= offset) lo = mid;
      else hi = mid;
    }
    return lo;
  }

  private async offsetAt(topic: string, partition: number, timestamp: number): Promise<number> {
    return (await this.admin.offsetsAtTime(topic, timestamp)).get(partition) ?? Number.POSITIVE_INFINITY;
  }
}

/**
 * Per partition, the time before which every event of it is applied: the timestamp of its oldest event not applied,
 * or `now` when it is caught up. (Timestamps are the producer's: the API's clock when it accepted the event.)
 */
export function appliedThrough(lags: readonly PartitionLag[], now: number): Map<number, number> {
  return new Map(lags.map((l) => [l.partition, l.lagMessages > 0 ? now - l.lagSeconds * 1000 : now]));
}
