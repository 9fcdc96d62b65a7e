import { Injectable } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { MetricsRegistry } from '@app/metrics';
import { Counter, Gauge, Histogram } from 'prom-client';
import { ConsumerStatus } from '../health/consumer-status.service.js';
import { PERMANENT_ERROR_CLASSES, type PermanentErrorClass, RETRY_CAUSES } from './error-classifier.js';

/**
 * The consumer's metrics (docs/architecture.md section 9, docs/metrics.md). Labels are bounded: `topic` (the two change-event
 * topics), `partition` (their partitions), `reason`, `dependency`, `cause` and `error_class` from fixed sets; never
 * keys or event ids. The counters are created at 0 for every label value at boot: alerts on failures (dead letters,
 * retries) then have a series before the first failure, and `increase()` sees the first one.
 */
@Injectable()
export class ConsumerMetrics {
  /** Events per Postgres transaction (one chunk of a fetched batch), skipped and dead-lettered ones included. */
  readonly batchEvents: Histogram<'topic'>;
  /** From the start of a chunk to its Kafka commit. */
  readonly batchDuration: Histogram<'topic'>;
  readonly applied: Counter<'topic'>;
  /** `offset`: below the partition's offset stored in Postgres; `id`: the event id was applied before. */
  readonly deduplicated: Counter<'topic' | 'reason'>;
  /** `cause`: see RETRY_CAUSES. */
  readonly retries: Counter<'topic' | 'dependency' | 'cause'>;
  readonly deadLetters: Counter<'topic' | 'error_class'>;
  /** From the event's acceptance (`ts`) to the commit of the transaction that applied it. */
  readonly endToEnd: Histogram<'topic'>;
  /** Per partition this process applied: the newest of the processes is the group's last commit there. */
  readonly lastCommit: Gauge<'topic' | 'partition'>;
  /** Post-commit updates of Redis that failed (reconciles are tried again; the feed cache expires). */
  readonly redisFailures: Counter<'target'>;
  /** Failed reconciles dropped from the retry queue (over its bound): the view sweep heals them. */
  readonly reconcileRetriesDropped: Counter;
  readonly kafkaCommitFailures: Counter<'topic'>;
  readonly crashes: Counter;
  /** Batches that started beyond Postgres' applied offset: `rewound` (sought back) or `lost` (deleted by retention). */
  readonly offsetGaps: Counter<'topic' | 'outcome'>;
  /** Events between the applied offset and the log start, deleted by retention before they were applied. */
  readonly eventsLost: Counter<'topic'>;
  readonly ledgerPruned: Counter;
  /** 1 per partition this process holds (its stored offset belongs to an older log); absent otherwise. */
  readonly heldPartitions: Gauge<'topic' | 'partition'>;

  constructor(metrics: MetricsRegistry, status: ConsumerStatus, config: AppConfig) {
    const registers = [metrics.registry];
    this.batchEvents = new Histogram({
      name: 'writebehind_consumer_batch_events',
      help: 'Events per applied batch (one Postgres transaction)',
      labelNames: ['topic'],
      buckets: [1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 25_000],
      registers,
    });
    this.batchDuration = new Histogram({
      name: 'writebehind_consumer_batch_duration_seconds',
      help: 'Time to apply one batch: decode, Postgres transaction, Kafka commit',
      labelNames: ['topic'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.applied = new Counter({
      name: 'writebehind_consumer_events_applied_total',
      help: 'Events whose effect was applied to Postgres',
      labelNames: ['topic'],
      registers,
    });
    this.deduplicated = new Counter({
      name: 'writebehind_consumer_events_deduplicated_total',
      help: 'Events delivered again and not applied again (reason: offset = below the stored offset, id = event id already applied)',
      labelNames: ['topic', 'reason'],
      registers,
    });
    this.retries = new Counter({
      name: 'writebehind_consumer_retries_total',
      help: 'Retries of work that failed transiently, by dependency (postgres, kafka) and cause (connection, timeout, serialization, deadlock, unavailable, permanent, other)',
      labelNames: ['topic', 'dependency', 'cause'],
      registers,
    });
    this.deadLetters = new Counter({
      name: 'writebehind_consumer_dead_letters_total',
      help: 'Events sent to the dead-letter topic because they can never be applied',
      labelNames: ['topic', 'error_class'],
      registers,
    });
    this.endToEnd = new Histogram({
      name: 'writebehind_consumer_end_to_end_latency_seconds',
      help: 'From the acceptance of an event (its ts) to the Postgres commit that applied it',
      labelNames: ['topic'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600],
      registers,
    });
    this.lastCommit = new Gauge({
      name: 'writebehind_consumer_last_commit_timestamp_seconds',
      help: 'Unix time of the last successful Postgres commit of a batch, per partition applied by this process',
      labelNames: ['topic', 'partition'],
      registers,
    });
    this.redisFailures = new Counter({
      name: 'writebehind_consumer_redis_update_failures_total',
      help: 'Post-commit Redis updates that failed (target: counter_view or feed_cache); reconciles are tried again in the background, never block offsets',
      labelNames: ['target'],
      registers,
    });
    this.reconcileRetriesDropped = new Counter({
      name: 'writebehind_consumer_reconcile_retries_dropped_total',
      help: 'Failed view reconciles dropped from the retry queue, past its bound of 100,000 increments (the view sweep heals them)',
      registers,
    });
    this.kafkaCommitFailures = new Counter({
      name: 'writebehind_consumer_kafka_commit_failures_total',
      help: 'Kafka offset commits that failed after the Postgres commit (the Postgres offset stays the truth)',
      labelNames: ['topic'],
      registers,
    });
    this.offsetGaps = new Counter({
      name: 'writebehind_consumer_offset_gaps_total',
      help: 'Batches that started beyond the offset applied in Postgres: rewound to it, or lost to retention',
      labelNames: ['topic', 'outcome'],
      registers,
    });
    this.eventsLost = new Counter({
      name: 'writebehind_consumer_events_lost_total',
      help: 'Events deleted by retention before they were applied (between the applied offset and the log start)',
      labelNames: ['topic'],
      registers,
    });
    this.crashes = new Counter({
      name: 'writebehind_consumer_crashes_total',
      help: 'Times the kafkajs consumer crashed and was restarted',
      registers,
    });
    this.ledgerPruned = new Counter({
      name: 'writebehind_consumer_ledger_pruned_total',
      help: 'Event ids deleted from the dedupe ledger after the retention window',
      registers,
    });
    this.heldPartitions = new Gauge({
      name: 'writebehind_consumer_held_partitions',
      help: 'Partitions this process does not apply because the offset stored in Postgres belongs to an older log (a recreated topic, lost broker data): 1 until `wb offsets rebaseline`',
      labelNames: ['topic', 'partition'],
      registers,
    });
    new Gauge({
      name: 'writebehind_consumer_retrying_partitions',
      help: 'Partitions whose batch is retrying a transient failure now',
      registers,
      collect() {
        this.set(status.retryingPartitions);
      },
    });

    for (const topic of [config.kafka.topics.counters, config.kafka.topics.activities]) {
      this.applied.inc({ topic }, 0);
      for (const reason of ['offset', 'id']) this.deduplicated.inc({ topic, reason }, 0);
      for (const dependency of ['postgres', 'kafka']) {
        for (const cause of RETRY_CAUSES) this.retries.inc({ topic, dependency, cause }, 0);
      }
      for (const errorClass of PERMANENT_ERROR_CLASSES) this.deadLetters.inc({ topic, error_class: errorClass }, 0);
      this.kafkaCommitFailures.inc({ topic }, 0);
      for (const outcome of ['rewound', 'lost']) this.offsetGaps.inc({ topic, outcome }, 0);
      this.eventsLost.inc({ topic }, 0);
    }
    for (const target of ['counter_view', 'feed_cache']) this.redisFailures.inc({ target }, 0);
  }

  deadLetter(topic: string, errorClass: PermanentErrorClass, count = 1): void {
    this.deadLetters.inc({ topic, error_class: errorClass }, count);
  }
}
