import { Injectable, type OnApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { LogThrottle } from '@app/platform';
import { ReplayRequestRepository } from '@app/store';
import { PinoLogger } from 'nestjs-pino';
import { PersistenceConsumer } from '../apply/persistence.consumer.js';

const POLL_MS = 1000;

/**
 * Carries out operators' replays on a running group (`cli replay --execute`): Kafka lets no one move a live
 * group's offsets from outside, so each member polls `replay_requests` and seeks the partitions it owns,
 * then acknowledges. Messages below Postgres' applied offset are skipped when re-read (no-ops), so a
 * replay re-applies only what Postgres is missing.
 */
@Injectable()
export class ReplayListener implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  /** While Postgres is down every poll fails: one warning per 10 s, with the count of those left out. */
  private readonly errorLog = new LogThrottle();

  constructor(
    private readonly config: AppConfig,
    private readonly requests: ReplayRequestRepository,
    private readonly consumer: PersistenceConsumer,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext('ReplayListener');
  }

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.poll(), POLL_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const open = await this.requests.open(this.config.consumer.groupId);
      const done: number[] = [];
      for (const request of open) {
        if (this.consumer.seek(request.topic, request.partition, request.targetOffset)) {
          done.push(request.id);
          this.logger.info(
            { topic: request.topic, partition: request.partition, offset: request.targetOffset, request: request.id },
            'replay: sought partition',
          );
        }
      }
      await this.requests.acknowledge(done, this.consumer.member ?? 'unknown');
    } catch (error) {
      this.errorLog.run((suppressed) =>
        this.logger.warn({ err: error, suppressed }, 'replay requests could not be read; trying again'),
      );
    } finally {
      this.polling = false;
    }
  }
}
