import { randomUUID } from 'node:crypto';
import { Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { ViewSweep } from '@app/counter-view';
import { TopicPartitions } from '@app/kafka';
import { LagMonitor, appliedThrough } from '@app/lag';
import { MetricsRegistry } from '@app/metrics';
import { RedisClient } from '@app/redis';
import { PinoLogger } from 'nestjs-pino';
import { Counter } from 'prom-client';

/** The lease that makes one consumer process sweep per interval (ioredis adds REDIS_KEY_PREFIX). */
const LEASE_KEY = 'view-sweep:lease';

/**
 * Sweeps the Redis view's pending deltas every CONSUMER_VIEW_SWEEP_INTERVAL_MS (ViewSweep): applied ones that a
 * failed reconcile left behind go out with Postgres' value, and deltas that will never be applied go out once the
 * group has applied the counter's partition past them. Without it an over-count on a hot counter never heals (its
 * base never expires, so it is never refilled), and an orphan stays for as long as the pending hash lives.
 *
 * The horizon of a partition comes from the consumer lag (LagMonitor): the timestamp of its oldest event not applied,
 * or now when it is caught up. One consumer process sweeps per interval (a Redis lease).
 */
@Injectable()
export class ViewSweeper implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly owner = randomUUID();
  private readonly healed: Counter<'reason'>;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopping = false;

  constructor(
    private readonly config: AppConfig,
    private readonly sweep: ViewSweep,
    private readonly lag: LagMonitor,
    private readonly partitions: TopicPartitions,
    private readonly redis: RedisClient,
    metrics: MetricsRegistry,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext('ViewSweeper');
    this.healed = new Counter({
      name: 'writebehind_view_pending_healed_total',
      help: 'Pending deltas the view sweep took out: applied (a reconcile was missed) or orphaned (never applied).',
      labelNames: ['reason'],
      registers: [metrics.registry],
    });
    for (const reason of ['applied', 'orphaned']) this.healed.inc({ reason }, 0);
  }

  onApplicationBootstrap(): void {
    const { intervalMs } = this.config.consumer.viewSweep;
    if (intervalMs === 0) return;
    this.timer = setInterval(() => {
      this.running ??= this.runOnce().finally(() => (this.running = undefined));
    }, intervalMs).unref();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** One pass, when this process holds the lease for the interval. */
  private async runOnce(): Promise<void> {
    const { intervalMs, minAgeMs } = this.config.consumer.viewSweep;
    try {
      if ((await this.redis.redis.set(LEASE_KEY, this.owner, 'PX', intervalMs, 'NX')) !== 'OK') return;
      const now = Date.now();
      const topic = this.config.kafka.topics.counters;
      const horizons = await this.horizons(topic, now);
      await this.partitions.load([topic]);
      let applied = 0;
      let orphaned = 0;
      for await (const names of this.sweep.withPending()) {
        if (this.stopping) break;
        const findings = await this.sweep.check(names, {
          now,
          minAgeMs,
          repair: true,
          appliedThrough: (name) => {
            const partition = this.partitions.partitionOf(topic, name);
            return partition === undefined ? undefined : horizons?.get(partition);
          },
        });
        for (const f of findings) {
          applied += f.applied.length;
          orphaned += f.orphaned.length;
        }
      }
      this.healed.inc({ reason: 'applied' }, applied);
      this.healed.inc({ reason: 'orphaned' }, orphaned);
      if (applied + orphaned > 0) this.logger.info({ applied, orphaned }, 'view sweep took out pending deltas');
    } catch (error) {
      this.logger.warn({ err: error }, 'view sweep failed; the next one tries again');
    }
  }

  /** Per partition, the time before which every event is applied; undefined while the lag is not known. */
  private async horizons(topic: string, now: number): Promise<Map<number, number> | undefined> {
    try {
      return appliedThrough(await this.lag.snapshot(this.config.consumer.groupId, [topic], now), now);
    } catch (error) {
      this.logger.debug({ err: error }, 'consumer lag not known: no pending delta is taken as an orphan this time');
      return undefined;
    }
  }
}
