import { hostname } from 'node:os';
import { Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { LogThrottle } from '@app/platform';
import { OffsetRepository, PartitionHoldRepository } from '@app/store';
import type { Consumer } from 'kafkajs';
import { PinoLogger } from 'nestjs-pino';
import { ConsumerStatus } from '../health/consumer-status.service.js';
import { ConsumerMetrics } from './consumer.metrics.js';
import type { HoldFinding } from './offset-guard.js';

const POLL_MS = 1000;

interface LocalHold {
  topic: string;
  partition: number;
  /** A finding not written to `partition_holds` yet (Postgres away): written at the next poll. */
  unsaved: HoldFinding | undefined;
}

/**
 * The partitions this process holds: paused in kafkajs (no fetch, no apply, no commit), shown in readiness, a metric
 * and the log, and recorded in `partition_holds` so that every member and every restart holds them too. Each second
 * it looks for the holds `wb offsets rebaseline` removed, then seeks those partitions to their new stored offset and
 * resumes them.
 */
@Injectable()
export class PartitionHolds implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly held = new Map<string, LocalHold>();
  private consumer: Consumer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private readonly errorLog = new LogThrottle();
  private readonly groupId: string;

  constructor(
    config: AppConfig,
    private readonly holds: PartitionHoldRepository,
    private readonly offsets: OffsetRepository,
    private readonly status: ConsumerStatus,
    private readonly metrics: ConsumerMetrics,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext('PartitionHolds');
    this.groupId = config.consumer.groupId;
  }

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.poll(), POLL_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** A new kafkajs consumer (a start, a restart after a crash): the old one's pauses went with it. */
  attach(consumer: Consumer): void {
    this.consumer = consumer;
    this.releaseAll();
  }

  /** Forgets every local hold (kafkajs lost its pauses); the next join holds again what Postgres records. */
  releaseAll(): void {
    for (const key of [...this.held.keys()]) this.forget(key);
  }

  /**
   * After a join: pauses of partitions this member no longer owns are lifted; their new owner checks them. Every
   * partition it owns and does not hold is exported as 0, so that the alert on held partitions has a series to
   * evaluate before anything is held.
   */
  onJoined(assignment: Map<string, Set<number>>): void {
    for (const [key, hold] of this.held) {
      if (assignment.get(hold.topic)?.has(hold.partition)) continue;
      this.consumer?.resume([{ topic: hold.topic, partitions: [hold.partition] }]);
      this.forget(key);
    }
    for (const [topic, partitions] of assignment) {
      for (const partition of partitions) {
        if (!this.held.has(`${topic}/${partition}`)) {
          this.metrics.heldPartitions.set({ topic, partition: String(partition) }, 0);
        }
      }
    }
  }

  /** Stops applying the partition; `finding` is recorded when it is new. */
  async hold(topic: string, partition: number, finding: HoldFinding | undefined): Promise<void> {
    const key = `${topic}/${partition}`;
    if (!this.held.has(key)) {
      this.pause(topic, partition);
      this.held.set(key, { topic, partition, unsaved: finding });
      this.metrics.heldPartitions.set({ topic, partition: String(partition) }, 1);
      const what = finding
        ? `the offset stored in Postgres (${finding.storedOffset}) is beyond the end of the log (${finding.logEnd})`
        : 'a hold is recorded for it';
      this.status.onHeld(
        key,
        `holding ${key}: ${what}; the topic was recreated or its data lost, nothing is applied there until ` +
          `\`wb offsets rebaseline --topic ${topic} --partitions ${partition}\``,
      );
      this.logger.error(
        { topic, partition, ...finding },
        finding
          ? 'the offset stored in Postgres is beyond the end of the log: the topic was recreated or its data lost; ' +
              'holding the partition (nothing skipped, nothing applied) until `wb offsets rebaseline`'
          : 'partition held (partition_holds) until `wb offsets rebaseline`',
      );
    }
    await this.save(key).catch((error: unknown) =>
      this.logger.warn({ err: error, topic, partition }, 'could not record the hold in Postgres; trying again'),
    );
  }

  /** Holds not saved yet are saved; holds that `wb offsets rebaseline` removed are released. */
  async poll(): Promise<void> {
    if (this.polling || this.held.size === 0) return;
    this.polling = true;
    try {
      for (const key of this.held.keys()) await this.save(key);
      const recorded = new Set((await this.holds.list(this.groupId)).map((h) => `${h.topic}/${h.partition}`));
      for (const [key, hold] of this.held) {
        if (recorded.has(key) || hold.unsaved) continue;
        const next = await this.offsets.next(this.groupId, hold.topic, hold.partition);
        if (next !== undefined)
          this.consumer?.seek({ topic: hold.topic, partition: hold.partition, offset: String(next) });
        this.consumer?.resume([{ topic: hold.topic, partitions: [hold.partition] }]);
        this.forget(key);
        this.logger.info(
          { topic: hold.topic, partition: hold.partition, next },
          'partition re-baselined: applying again',
        );
      }
    } catch (error) {
      this.errorLog.run((suppressed) =>
        this.logger.warn({ err: error, suppressed }, 'partition holds could not be read; trying again'),
      );
    } finally {
      this.polling = false;
    }
  }

  private async save(key: string): Promise<void> {
    const hold = this.held.get(key);
    if (!hold?.unsaved) return;
    await this.holds.hold({
      groupId: this.groupId,
      topic: hold.topic,
      partition: hold.partition,
      ...hold.unsaved,
      reason: 'stored offset beyond the end of the log',
      heldBy: `consumer ${hostname()}/${process.pid}`,
    });
    hold.unsaved = undefined;
  }

  private pause(topic: string, partition: number): void {
    try {
      this.consumer?.pause([{ topic, partitions: [partition] }]);
    } catch (error) {
      // Only before kafkajs runs; the batch check holds the partition again when it is delivered.
      this.logger.warn({ err: error, topic, partition }, 'could not pause the partition');
    }
  }

  private forget(key: string): void {
    const hold = this.held.get(key);
    if (!hold) return;
    this.held.delete(key);
    this.metrics.heldPartitions.remove({ topic: hold.topic, partition: String(hold.partition) });
    this.status.onReleased(key);
  }
}
