import { type BeforeApplicationShutdown, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppConfig } from '@app/config';
import { LagMonitor } from '@app/lag';
import { LogThrottle } from '@app/platform';
import { PinoLogger } from 'nestjs-pino';
import { LagMetrics } from './lag.metrics.js';

/** At shutdown, how long to wait for a refresh in progress before closing the connections under it. */
const STOP_WAIT_MS = 2000;

/**
 * Exports the persistence consumer group's lag (CONSUMER_GROUP_ID, on the counter and activity topics) from the API
 * process: the API is always up, stateless and replicated, whereas the consumers are what the lag is about, so the
 * metrics must keep coming while every consumer process is down. Every API_LAG_EXPORT_INTERVAL_MS one
 * `LagMonitor.snapshot` (Kafka end and committed offsets, Postgres' applied offsets, the age of the oldest
 * unapplied event) replaces the lag series. Refreshes never overlap: the next is scheduled when one ends. A failed
 * refresh keeps the last values, counts a failure and leaves the last-success time behind, which an alert watches.
 */
@Injectable()
export class LagExporter implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly groupId: string;
  private readonly topics: string[];
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<void> | undefined;
  private stopped = false;
  private failing = false;
  private readonly warnings = new LogThrottle(60_000);

  constructor(
    config: AppConfig,
    private readonly monitor: LagMonitor,
    private readonly metrics: LagMetrics,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext('LagExporter');
    this.groupId = config.consumer.groupId;
    this.topics = [config.kafka.topics.counters, config.kafka.topics.activities];
    this.intervalMs = config.api.lagExport.intervalMs;
  }

  onApplicationBootstrap(): void {
    if (this.intervalMs === 0) return;
    this.metrics.register(this.groupId);
    this.loop();
  }

  /** Runs before any connection closes (Kafka's admin client, the Postgres pool): a refresh in progress ends first. */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.current) await Promise.race([this.current, sleep(STOP_WAIT_MS)]);
  }

  private loop(): void {
    this.current = this.refresh().finally(() => {
      this.current = undefined;
      if (!this.stopped) this.timer = setTimeout(() => this.loop(), this.intervalMs).unref();
    });
  }

  /** One refresh; never throws. */
  async refresh(): Promise<void> {
    const group = this.groupId;
    const started = performance.now();
    try {
      const snapshot = await this.monitor.snapshot(group, this.topics);
      this.metrics.publish(snapshot);
      this.metrics.lastSuccess.set({ group }, Date.now() / 1000);
      if (this.failing) this.logger.info({ group }, 'consumer lag refresh works again');
      this.failing = false;
    } catch (error) {
      this.metrics.refreshFailures.inc({ group });
      this.failing = true;
      this.warnings.run((suppressed) =>
        this.logger.warn({ err: error, group, suppressed }, 'consumer lag refresh failed; keeping the last values'),
      );
    } finally {
      this.metrics.refreshSeconds.set({ group }, (performance.now() - started) / 1000);
    }
  }
}
