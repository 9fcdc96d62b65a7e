import { Injectable } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { KafkaAdmin } from '@app/kafka';
import { OffsetRepository } from '@app/store';
import { PinoLogger } from 'nestjs-pino';
import { ConsumerMetrics } from './consumer.metrics.js';

/**
 * Postgres' offset is the truth about what is applied. When Kafka would deliver a partition from beyond it
 * (Postgres restored from a backup, or the group's offsets moved forward from outside), the messages in
 * between were never applied here, and the consumer must go back to Postgres' offset. A partition Postgres
 * knows nothing of goes back to the log start. When Postgres' offset is below the log start, the messages in
 * between were deleted by retention and cannot be re-read: that loss (and only it) is counted and logged, the
 * stored offset moves to the log start, and applying resumes there, not at Kafka's position, since everything
 * from the log start on is still to be read.
 */
@Injectable()
export class OffsetGuard {
  private readonly groupId: string;

  constructor(
    config: AppConfig,
    private readonly offsets: OffsetRepository,
    private readonly admin: KafkaAdmin,
    private readonly metrics: ConsumerMetrics,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext('OffsetGuard');
    this.groupId = config.consumer.groupId;
  }

  /** The offset to seek back to when Kafka would start the partition at `position`; undefined when fine. */
  async rewindTarget(topic: string, partition: number, position: number): Promise<number | undefined> {
    const stored = await this.offsets.next(this.groupId, topic, partition);
    if (stored !== undefined && position <= stored) return undefined;
    const log = await this.admin.partitionOffsets(topic);
    const low = log.find((p) => p.partition === partition)?.low ?? 0;
    if (stored !== undefined && stored < low) {
      await this.recordLoss(topic, partition, low, position);
      return position > low ? low : undefined;
    }
    const target = stored ?? low;
    if (position <= target) return undefined;
    this.metrics.offsetGaps.inc({ topic, outcome: 'rewound' });
    this.logger.warn(
      { topic, partition, applied: target, position },
      'Kafka is ahead of Postgres on this partition: seeking back to the applied offset',
    );
    return target;
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

  /** After joining: the group's committed offsets of the partitions it was given, checked one by one. */
  async checkAssignment(
    assignment: Map<string, Set<number>>,
    seek: (topic: string, partition: number, offset: number) => void,
  ): Promise<void> {
    for (const [topic, partitions] of assignment) {
      const committed = await this.admin.committedOffsets(this.groupId, topic);
      for (const partition of partitions) {
        const position = committed.get(partition);
        // Never committed: kafkajs starts at the log start (fromBeginning), where nothing can be skipped.
        if (position === undefined) continue;
        const target = await this.rewindTarget(topic, partition, position);
        if (target !== undefined) seek(topic, partition, target);
      }
    }
  }
}
