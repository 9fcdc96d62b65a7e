import { Injectable } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { KafkaAdmin } from '@app/kafka';
import { OffsetRepository, PartitionHoldRepository } from '@app/store';
import { PinoLogger } from 'nestjs-pino';
import { ConsumerMetrics } from './consumer.metrics.js';

/** A stored offset beyond the end of the partition's log: that offset belongs to an older log. */
export interface HoldFinding {
  storedOffset: number;
  logStart: number;
  logEnd: number;
}

/** What to do with a partition Kafka would deliver from `position`. */
export type Decision =
  { action: 'apply' } | { action: 'rewind'; offset: number } | { action: 'hold'; finding: HoldFinding | undefined };

const APPLY: Decision = { action: 'apply' };

/**
 * Postgres' offset is the truth about what is applied, as long as it belongs to the log Kafka has now.
 *
 * - Held: a hold is recorded for the partition (`partition_holds`), or the stored offset is beyond the end of the
 *   log. A log never shrinks below what was read from it, so the topic was recreated or the broker's data lost: the
 *   new log's events below the stored offset were never applied, and skipping them as applied would lose them. The
 *   partition is held (not applied, not committed) until an operator re-baselines it (`wb offsets rebaseline`).
 *   Kafka's topic ids would tell a recreated topic at once, but kafkajs (Metadata v6 at most) does not expose them.
 * - Rewound: Kafka would deliver from beyond the stored offset (Postgres restored from a backup, the group's offsets
 *   moved forward from outside): the events in between were never applied, so the consumer seeks back to it. A
 *   partition Postgres knows nothing of goes back to the log start.
 * - Lost: the stored offset is below the log start: the events in between were deleted by retention and cannot be
 *   re-read. That range (and only it) is counted and logged, the stored offset moves to the log start, and applying
 *   resumes there, not at Kafka's position, since everything from the log start on is still to be read.
 */
@Injectable()
export class OffsetGuard {
  private readonly groupId: string;

  constructor(
    config: AppConfig,
    private readonly offsets: OffsetRepository,
    private readonly holds: PartitionHoldRepository,
    private readonly admin: KafkaAdmin,
    private readonly metrics: ConsumerMetrics,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext('OffsetGuard');
    this.groupId = config.consumer.groupId;
  }

  /**
   * Before a batch that Kafka delivered from `position`, with `highWatermark` from the same fetch. The usual case
   * (a batch that starts at or below the stored offset, inside the log) costs one query.
   */
  async checkBatch(topic: string, partition: number, position: number, highWatermark: number): Promise<Decision> {
    const { next: stored, held } = await this.offsets.position(this.groupId, topic, partition);
    if (held) return { action: 'hold', finding: undefined };
    if (stored !== undefined && position <= stored && stored <= highWatermark) return APPLY;
    const log = (await this.admin.partitionOffsets(topic)).find((p) => p.partition === partition);
    // The fetch's high watermark is fresher than nothing; the admin's end offset is at least as new.
    return this.decide(topic, partition, position, stored, log?.low ?? 0, Math.max(log?.high ?? 0, highWatermark));
  }

  /**
   * After joining: each partition of the assignment, from where Kafka will start it (the group's committed offset,
   * or the log start for a partition the group never committed: kafkajs starts those from the beginning).
   */
  async checkAssignment(
    assignment: Map<string, Set<number>>,
    act: (topic: string, partition: number, decision: Decision) => void,
  ): Promise<void> {
    const stored = new Map<string, number>(
      (await this.offsets.all(this.groupId)).map((o) => [`${o.topic}/${o.partition}`, o.nextOffset]),
    );
    const held = new Set((await this.holds.list(this.groupId)).map((h) => `${h.topic}/${h.partition}`));
    for (const [topic, partitions] of assignment) {
      const [committed, log] = await Promise.all([
        this.admin.committedOffsets(this.groupId, topic),
        this.admin.partitionOffsets(topic),
      ]);
      for (const partition of partitions) {
        const key = `${topic}/${partition}`;
        if (held.has(key)) {
          act(topic, partition, { action: 'hold', finding: undefined });
          continue;
        }
        const { low = 0, high = 0 } = log.find((p) => p.partition === partition) ?? {};
        const position = committed.get(partition) ?? low;
        const decision = await this.decide(topic, partition, position, stored.get(key), low, high);
        if (decision.action !== 'apply') act(topic, partition, decision);
      }
    }
  }

  private async decide(
    topic: string,
    partition: number,
    position: number,
    stored: number | undefined,
    low: number,
    high: number,
  ): Promise<Decision> {
    if (stored !== undefined && stored > high) {
      return { action: 'hold', finding: { storedOffset: stored, logStart: low, logEnd: high } };
    }
    if (stored !== undefined && position <= stored) return APPLY;
    if (stored !== undefined && stored < low) {
      await this.recordLoss(topic, partition, low, position);
      return position > low ? { action: 'rewind', offset: low } : APPLY;
    }
    const target = stored ?? low;
    if (position <= target) return APPLY;
    this.metrics.offsetGaps.inc({ topic, outcome: 'rewound' });
    this.logger.warn(
      { topic, partition, applied: target, position },
      'Kafka is ahead of Postgres on this partition: seeking back to the applied offset',
    );
    return { action: 'rewind', offset: target };
  }

  /** Moves the stored offset to the log start; the process that moved it reports the deleted range once. */
  private async recordLoss(topic: string, partition: number, low: number, position: number): Promise<void> {
    const applied = await this.offsets.skipTo(this.groupId, topic, partition, low);
    if (applied === undefined) return;
    this.metrics.offsetGaps.inc({ topic, outcome: 'lost' });
    this.metrics.eventsLost.inc({ topic }, low - applied);
    this.logger.error(
      { topic, partition, applied, logStart: low, lost: low - applied, position },
      'messages between the applied offset and the log start were deleted by retention before being applied',
    );
  }
}
