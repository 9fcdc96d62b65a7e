import {
  type BeforeApplicationShutdown,
  Injectable,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppConfig } from '@app/config';
import { KafkaClient } from '@app/kafka';
import type { Consumer, EachBatchPayload } from 'kafkajs';
import { PinoLogger } from 'nestjs-pino';
import { ConsumerStatus } from '../health/consumer-status.service.js';
import { BatchService } from './batch.service.js';
import { ConsumerMetrics } from './consumer.metrics.js';
import { LedgerRetention } from './ledger-retention.service.js';
import { OffsetGuard } from './offset-guard.js';
import { PartitionHeldError } from './partition-held.error.js';
import { PartitionHolds } from './partition-holds.service.js';
import { RewindRequiredError } from './rewind-required.error.js';

const RESTART_MAX_DELAY_MS = 10_000;
const STOP_WAIT_FOR_START_MS = 5000;

/**
 * The kafkajs consumer group over the counter and activity topics (`CONSUMER_GROUP_ID`; run several processes to
 * share the partitions). Autocommit is off and so is eachBatchAutoResolve: an offset is resolved and committed only
 * after the Postgres transaction that applied its message committed (BatchService).
 *
 * Lifecycle (see libs/platform/src/lifecycle.service.ts for Nest's order):
 * - boot: started in the background, so the app boots and reports not-ready while Kafka is away; retried with
 *   backoff until it runs.
 * - crash: kafkajs restarts the consumer itself after retriable errors; after a non-retriable one it does not, so
 *   this service starts a new consumer. Readiness is false from the crash until the group is joined again.
 * - SIGTERM: `beforeApplicationShutdown` stops the consumer, which waits for the batch in flight (it finishes its
 *   chunk, or gives up a retry loop at once) and leaves the group, so its partitions move on without waiting for
 *   the session timeout; the connections close afterwards in `onApplicationShutdown`, after Postgres, Redis and the
 *   dead-letter producer were used for the last time.
 */
@Injectable()
export class PersistenceConsumer implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private consumer: Consumer | undefined;
  private starting: Promise<void> | undefined;
  /** The partitions this member owns since its last join, per topic, and its member id. */
  private assignment = new Map<string, Set<number>>();
  private memberId: string | undefined;
  private readonly stopping = new AbortController();

  constructor(
    private readonly config: AppConfig,
    private readonly client: KafkaClient,
    private readonly batches: BatchService,
    private readonly status: ConsumerStatus,
    private readonly metrics: ConsumerMetrics,
    private readonly guard: OffsetGuard,
    private readonly retention: LedgerRetention,
    private readonly holds: PartitionHolds,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext('PersistenceConsumer');
  }

  onApplicationBootstrap(): void {
    this.starting = this.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopping.abort();
    // A start blocked on an unreachable broker must not use up the drain: it notices the abort when it returns.
    await Promise.race([this.starting, sleep(STOP_WAIT_FOR_START_MS)]);
    await this.consumer?.stop();
    this.status.onStopped();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.consumer?.disconnect();
  }

  private create(): Consumer {
    const { consumer: settings } = this.config;
    const consumer = this.client.kafka.consumer({
      groupId: settings.groupId,
      sessionTimeout: settings.sessionTimeoutMs,
      heartbeatInterval: settings.heartbeatIntervalMs,
      // A fetch returns up to this much per partition; BatchService cuts it into transactions of the same bound.
      maxBytesPerPartition: settings.batch.maxBytes,
      maxBytes: Math.max(settings.batch.maxBytes, 10 * 1024 * 1024),
      minBytes: settings.fetch.minBytes,
      maxWaitTimeInMs: settings.fetch.maxWaitMs,
      allowAutoTopicCreation: false,
    });
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      this.memberId = payload.memberId;
      this.assignment = new Map(
        Object.entries(payload.memberAssignment).map(([topic, partitions]) => [topic, new Set(partitions)]),
      );
      this.status.onJoined();
      this.holds.onJoined(this.assignment);
      // Kafka resumes each partition at the group's committed offset; where Postgres is behind it (restored
      // from a backup), seek back now, before waiting for a message that may never come; where Postgres' offset
      // belongs to an older log (a recreated topic), hold the partition before anything is skipped.
      const assignment = this.assignment;
      this.guard
        .checkAssignment(assignment, (topic, partition, decision) => {
          if (this.assignment !== assignment) return;
          if (decision.action === 'rewind') consumer.seek({ topic, partition, offset: String(decision.offset) });
          if (decision.action === 'hold') void this.holds.hold(topic, partition, decision.finding);
        })
        .catch((error: unknown) =>
          this.logger.warn({ err: error }, 'could not compare Kafka and Postgres offsets after joining'),
        );
      this.logger.info(
        { memberId: payload.memberId, isLeader: payload.isLeader, assignment: payload.memberAssignment },
        'joined the consumer group',
      );
    });
    consumer.on(consumer.events.REBALANCING, () => {
      this.assignment = new Map();
      this.status.onRebalancing();
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      this.assignment = new Map();
      // kafkajs restarts with a new internal group, without the pauses: the next join holds again.
      this.holds.releaseAll();
      this.status.onCrashed(payload.error.message);
      this.metrics.crashes.inc();
      this.logger.error({ err: payload.error, restart: payload.restart }, 'the Kafka consumer crashed');
      // kafkajs gives up on non-retriable errors: start over with a new consumer rather than stay down for good.
      if (!payload.restart && !this.stopping.signal.aborted) this.starting = this.restart(consumer);
    });
    return consumer;
  }

  private async eachBatch(consumer: Consumer, payload: EachBatchPayload): Promise<void> {
    try {
      await this.batches.handle(payload);
    } catch (error) {
      // Nothing of this batch was applied in either case.
      if (error instanceof RewindRequiredError) {
        // The next fetch starts at Postgres' offset.
        consumer.seek({ topic: error.topic, partition: error.partition, offset: String(error.offset) });
      } else if (error instanceof PartitionHeldError) {
        await this.holds.hold(error.topic, error.partition, error.finding);
      } else {
        throw error;
      }
    }
  }

  /** Whether this member owns the partition now (since its last join). */
  owns(topic: string, partition: number): boolean {
    return this.assignment.get(topic)?.has(partition) ?? false;
  }

  get member(): string | undefined {
    return this.memberId;
  }

  /**
   * Moves this member's position on a partition it owns (an operator's replay). The batch in flight on it, if
   * any, turns stale and commits nothing more; fetching restarts at `offset`. Returns false if not owned.
   */
  seek(topic: string, partition: number, offset: number): boolean {
    if (!this.consumer || !this.owns(topic, partition)) return false;
    this.consumer.seek({ topic, partition, offset: String(offset) });
    return true;
  }

  /** Connects, subscribes and runs, retrying with backoff until it works or the app stops. */
  private async start(): Promise<void> {
    const { topics } = this.config.kafka;
    for (let attempt = 0; !this.stopping.signal.aborted; attempt++) {
      const consumer = this.create();
      this.consumer = consumer;
      this.holds.attach(consumer);
      try {
        await consumer.connect();
        if (this.stopping.signal.aborted) break;
        // Before joining: a ledger pruned sooner than the topics can return an event would let it apply twice.
        const problems = await this.retention.problems();
        if (problems.length > 0) refuseToStart(problems);
        // fromBeginning: a new group starts at the earliest offset; the Postgres offsets skip what is applied.
        await consumer.subscribe({ topics: [topics.counters, topics.activities], fromBeginning: true });
        await consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          partitionsConsumedConcurrently: this.config.consumer.partitionsConcurrently,
          eachBatch: (payload) => this.eachBatch(consumer, payload),
        });
        if (this.stopping.signal.aborted) await consumer.stop();
        return;
      } catch (error) {
        this.logger.warn({ err: error, attempt }, 'could not start the Kafka consumer; retrying');
        await consumer.disconnect().catch(() => undefined);
        await this.pause(Math.min(500 * 2 ** attempt, RESTART_MAX_DELAY_MS));
      }
    }
  }

  private async restart(crashed: Consumer): Promise<void> {
    await crashed.disconnect().catch(() => undefined);
    await this.pause(1000);
    await this.start();
  }

  /** Waits, unless the app is stopping. */
  private async pause(ms: number): Promise<void> {
    await sleep(ms, undefined, { signal: this.stopping.signal }).catch(() => undefined);
  }
}

/**
 * A setting that cannot be right, found once Kafka answers: the process ends as a bad environment does at boot
 * (libs/config), with one line per problem and exit code 78, before it joined the group or applied anything.
 */
function refuseToStart(problems: string[]): never {
  const lines = problems.map((p) => `  CONSUMER_LEDGER_RETENTION_MS: ${p}`).join('\n');
  process.stderr.write(`Invalid configuration:\n${lines}\nRefusing to start. See docs/configuration.md.\n`);
  process.exit(78);
}
