import { type BeforeApplicationShutdown, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { LedgerRepository } from '@app/store';
import { PinoLogger } from 'nestjs-pino';
import { ConsumerMetrics } from './consumer.metrics.js';
import { LedgerRetention } from './ledger-retention.service.js';

/** The first run comes at a random moment within this, so that processes started together do not prune together. */
const FIRST_RUN_SPREAD_MS = 60_000;

/**
 * Deletes dedupe-ledger rows older than CONSUMER_LEDGER_RETENTION_MS, every CONSUMER_LEDGER_PRUNE_INTERVAL_MS.
 * The ledger catches duplicates that arrive at other offsets (producer retries, a client retry, a write-through
 * whose Kafka send succeeded after all), which come within minutes; a replay of old offsets is caught by the
 * offsets stored in Postgres instead, so pruning never makes a replay inexact. Every consumer process prunes:
 * the deletes are idempotent and small (LedgerRepository deletes in batches).
 */
@Injectable()
export class LedgerPruner implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly config: AppConfig,
    private readonly ledger: LedgerRepository,
    private readonly retention: LedgerRetention,
    private readonly metrics: ConsumerMetrics,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext('LedgerPruner');
  }

  onApplicationBootstrap(): void {
    const { pruneIntervalMs } = this.config.consumer.ledger;
    const schedule = (delay: number) => {
      this.timer = setTimeout(() => {
        this.running = this.prune()
          .then(() => undefined)
          .finally(() => {
            this.running = undefined;
            if (!this.stopped) schedule(pruneIntervalMs);
          });
      }, delay);
      this.timer.unref();
    };
    schedule(Math.floor(Math.random() * Math.min(pruneIntervalMs, FIRST_RUN_SPREAD_MS)));
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /**
   * One pruning pass; failures (Postgres away) are logged and left to the next pass. Skipped while the topics can
   * hold events longer than the ledger keeps ids (their retention raised since this process started, or Kafka not
   * answering the check): pruning then could let a re-read apply an event twice.
   */
  async prune(): Promise<number> {
    const retentionSeconds = Math.floor(this.config.consumer.ledger.retentionMs / 1000);
    try {
      const problems = await this.retention.problems();
      if (problems.length > 0) {
        this.logger.error(
          { problems },
          'dedupe ledger not pruned: CONSUMER_LEDGER_RETENTION_MS does not cover the topics',
        );
        return 0;
      }
    } catch (error) {
      this.logger.warn({ err: error }, "dedupe ledger not pruned: the topics' retention could not be read");
      return 0;
    }
    try {
      const deleted = await this.ledger.prune(retentionSeconds);
      this.metrics.ledgerPruned.inc(deleted);
      if (deleted > 0) this.logger.info({ deleted, retentionSeconds }, 'pruned the dedupe ledger');
      return deleted;
    } catch (error) {
      this.logger.warn({ err: error }, 'pruning the dedupe ledger failed; next attempt at the next interval');
      return 0;
    }
  }
}
