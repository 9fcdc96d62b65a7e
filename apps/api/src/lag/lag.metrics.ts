import { Injectable } from '@nestjs/common';
import type { PartitionLag } from '@app/lag';
import { MetricsRegistry } from '@app/metrics';
import { Counter, Gauge } from 'prom-client';

/**
 * The consumer group's lag as the API exports it (docs/metrics.md#consumer-lag), one series per group, topic and
 * partition: bounded by the partition count. Every API replica exports the same values; dashboards and alerts take
 * `max by (group, topic, partition)`.
 */
@Injectable()
export class LagMetrics {
  private readonly messages: Gauge<'group' | 'topic' | 'partition'>;
  private readonly seconds: Gauge<'group' | 'topic' | 'partition'>;
  private readonly position: Gauge<'group' | 'topic' | 'partition'>;
  private readonly end: Gauge<'topic' | 'partition'>;
  readonly refreshFailures: Counter<'group'>;
  readonly lastSuccess: Gauge<'group'>;
  readonly refreshSeconds: Gauge<'group'>;

  constructor(metrics: MetricsRegistry) {
    const registers = [metrics.registry];
    const labelNames = ['group', 'topic', 'partition'] as const;
    this.messages = new Gauge({
      name: 'writebehind_consumer_lag_messages',
      help: 'Events in the partition not applied to Postgres yet by the group (end offset minus applied position); 0 when caught up.',
      labelNames,
      registers,
    });
    this.seconds = new Gauge({
      name: 'writebehind_consumer_lag_seconds',
      help: 'Age of the oldest event of the partition not applied yet by the group (its Kafka timestamp to now); 0 when caught up, never NaN.',
      labelNames,
      registers,
    });
    this.position = new Gauge({
      name: 'writebehind_consumer_position_offset',
      help: "The group's next offset to apply in the partition: Postgres' stored offset, else Kafka's committed offset, else the log start.",
      labelNames,
      registers,
    });
    this.end = new Gauge({
      name: 'writebehind_topic_end_offset',
      help: 'End offset of the partition (the offset the next event will get): its rate is the ingest rate.',
      labelNames: ['topic', 'partition'],
      registers,
    });
    this.refreshFailures = new Counter({
      name: 'writebehind_consumer_lag_refresh_failures_total',
      help: 'Lag refreshes that failed (Kafka or Postgres unreachable); the lag metrics keep their last values meanwhile.',
      labelNames: ['group'],
      registers,
    });
    this.lastSuccess = new Gauge({
      name: 'writebehind_consumer_lag_last_success_timestamp_seconds',
      help: 'Unix time of the last successful lag refresh: the lag metrics are as old as this.',
      labelNames: ['group'],
      registers,
    });
    this.refreshSeconds = new Gauge({
      name: 'writebehind_consumer_lag_refresh_duration_seconds',
      help: 'Duration of the last lag refresh (Kafka admin requests and one Postgres query).',
      labelNames: ['group'],
      registers,
    });
  }

  /** Creates the group's bookkeeping series at 0, so that alerts on them have a series before anything fails. */
  register(group: string): void {
    this.refreshFailures.inc({ group }, 0);
    this.lastSuccess.set({ group }, 0);
    this.refreshSeconds.set({ group }, 0);
  }

  /**
   * Replaces the lag series with a snapshot. Reset and refill happen in one synchronous step, so a scrape never
   * sees half of it, and a partition that is gone (topic deleted) drops out.
   */
  publish(snapshot: readonly PartitionLag[]): void {
    this.messages.reset();
    this.seconds.reset();
    this.position.reset();
    this.end.reset();
    for (const p of snapshot) {
      const labels = { group: p.groupId, topic: p.topic, partition: String(p.partition) };
      this.messages.set(labels, finite(p.lagMessages));
      this.seconds.set(labels, finite(p.lagSeconds));
      this.position.set(labels, finite(p.position));
      this.end.set({ topic: p.topic, partition: labels.partition }, finite(p.endOffset));
    }
  }
}

/** Never NaN or infinite on the wire: a value that cannot be computed is 0, and the refresh metrics tell why. */
function finite(value: number): number {
  return Number.isFinite(value) ? value : 0;
}
