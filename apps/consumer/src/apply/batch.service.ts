import { Injectable } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { Database } from '@app/db';
import { type ChangeEvent, type DecodedEvent, decodeRecord } from '@app/events';
import { TRACEPARENT_HEADER } from '@app/platform';
import {
  ActivityRepository,
  type ActivityRecord,
  type CounterIncrement,
  CounterRepository,
  type CounterState,
  OffsetRepository,
} from '@app/store';
import type { EachBatchPayload, KafkaMessage } from 'kafkajs';
import { PinoLogger } from 'nestjs-pino';
import { ConsumerStatus } from '../health/consumer-status.service.js';
import { BatchAbandonedError } from './batch-abandoned.error.js';
import { type ChunkLimits, chunkMessages } from './chunk.js';
import { ConsumerMetrics } from './consumer.metrics.js';
import { type DeadLetter, DeadLetterProducer } from './dead-letter.producer.js';
import { classifyError } from './error-classifier.js';
import { isRebalancing } from './kafka-errors.js';
import { type RetryScope, RetryService } from './retry.service.js';
import { summarizeTraces } from './trace-summary.js';
import { OffsetGuard } from './offset-guard.js';
import { PartitionHeldError } from './partition-held.error.js';
import { RewindRequiredError } from './rewind-required.error.js';
import { ViewSyncService } from './view-sync.service.js';

/** A message of the batch that decoded into valid events: one (format v1), or an envelope of several (v2). */
interface DecodedRecord {
  offset: number;
  message: KafkaMessage;
  events: DecodedEvent[];
}

/** What the transactions of one chunk committed. */
interface Outcome {
  increments: CounterIncrement[];
  changed: Map<string, CounterState>;
  applied: number;
  duplicates: number;
  actors: Set<string>;
  deadLettered: DeadLetter[];
  /** Counter increments dead-lettered after Postgres rejected them. */
  dropped: CounterIncrement[];
}

const emptyOutcome = (): Outcome => ({
  increments: [],
  changed: new Map(),
  applied: 0,
  duplicates: 0,
  actors: new Set(),
  deadLettered: [],
  dropped: [],
});

function merge(into: Outcome, from: Outcome): Outcome {
  into.increments.push(...from.increments);
  for (const [name, state] of from.changed) {
    const known = into.changed.get(name);
    if (!known || known.version < state.version) into.changed.set(name, state);
  }
  into.applied += from.applied;
  into.duplicates += from.duplicates;
  for (const actor of from.actors) into.actors.add(actor);
  into.deadLettered.push(...from.deadLettered);
  into.dropped.push(...from.dropped);
  return into;
}

/** One kafkajs batch (one topic-partition) as the retry loops and the apply steps see it. */
class BatchScope implements RetryScope {
  readonly topic: string;
  readonly partition: number;
  readonly partitionKey: string;
  /** The batch's last offset: the final chunk commits past it (past trailing control records too). */
  readonly lastOffset: number;
  private readonly generation: number;

  constructor(
    readonly payload: EachBatchPayload,
    private readonly status: ConsumerStatus,
  ) {
    this.topic = payload.batch.topic;
    this.partition = payload.batch.partition;
    this.partitionKey = `${this.topic}/${this.partition}`;
    this.lastOffset = Number(payload.batch.lastOffset());
    this.generation = status.generation;
  }

  abandonReason(): 'stopping' | 'stale' | undefined {
    if (!this.payload.isRunning()) return 'stopping';
    return this.isStale() ? 'stale' : undefined;
  }

  /**
   * kafkajs' isStale() only reports a seek. A rebalance seen since the batch started counts too: the partition may
   * belong to another member now, and kafkajs has committed for partitions it no longer owned (#1046, #1764).
   */
  isStale(): boolean {
    return this.payload.isStale() || this.status.generation !== this.generation;
  }

  heartbeat(): Promise<void> {
    return this.payload.heartbeat();
  }
}

/**
 * Applies one kafkajs batch (one topic-partition) to Postgres, exactly once in effect (G2), never stalling on a bad
 * record (G5). The batch is cut into chunks (CONSUMER_BATCH_MAX_EVENTS / _BYTES); per chunk:
 *
 * 1. Skip the messages below the partition's next offset stored in Postgres: they are applied. That offset is
 *    written in the same transaction as the effects, so it is the truth, also for replays older than the ledger.
 * 2. Decode and validate; invalid messages go to the dead-letter topic first (acks=all), before any offset moves
 *    past them.
 * 3. ONE transaction: counter increments through the dedupe ledger (aggregated per counter, sorted), activities
 *    (the event id is the primary key), and the partition's next offset. A transient failure is retried with
 *    backoff; a permanent one (Postgres rejects one record) splits the chunk in halves until the bad record is
 *    alone, which is dead-lettered, so all the others are applied.
 * 4. Only after the commit: bring Redis up to date (best effort), then resolve and commit the offset in Kafka
 *    (unless the partition was revoked meanwhile) and heartbeat. Redis before Kafka: a crash between the two
 *    makes Kafka redeliver, and the redelivered (skipped) ids are reconciled then.
 *
 * Nothing is thrown out of `eachBatch` except a rebalance, to make kafkajs rejoin: with several partitions
 * consumed concurrently, one throw restarts them all (tulios/kafkajs#945). Stopping or a stale batch just ends it.
 */
@Injectable()
export class BatchService {
  private readonly groupId: string;
  private readonly limits: ChunkLimits;
  private readonly maxStatementAttempts: number;

  constructor(
    config: AppConfig,
    private readonly database: Database,
    private readonly counters: CounterRepository,
    private readonly activities: ActivityRepository,
    private readonly offsets: OffsetRepository,
    private readonly deadLetters: DeadLetterProducer,
    private readonly retry: RetryService,
    private readonly viewSync: ViewSyncService,
    private readonly status: ConsumerStatus,
    private readonly metrics: ConsumerMetrics,
    private readonly guard: OffsetGuard,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext('Batch');
    this.groupId = config.consumer.groupId;
    this.limits = config.consumer.batch;
    this.maxStatementAttempts = config.consumer.retry.maxAttempts;
  }

  /**
   * kafkajs `eachBatch` (with eachBatchAutoResolve off). Throws, before applying anything, RewindRequiredError when
   * the batch starts beyond what Postgres has applied (the caller seeks back), and PartitionHeldError when the
   * partition's stored offset belongs to an older log (the caller pauses the partition).
   */
  async handle(payload: EachBatchPayload): Promise<void> {
    const scope = new BatchScope(payload, this.status);
    try {
      const chunks = chunkMessages(payload.batch.messages, this.limits);
      const first = chunks[0]?.[0];
      if (first !== undefined) await this.checkForGap(scope, Number(first.offset));
      for (const [index, chunk] of chunks.entries()) {
        const why = scope.abandonReason();
        if (why) throw new BatchAbandonedError(why);
        await this.applyChunk(scope, chunk, index === chunks.length - 1);
      }
    } catch (error) {
      if (!(error instanceof BatchAbandonedError)) throw error;
      this.logger.info(
        { topic: scope.topic, partition: scope.partition, why: error.why },
        'batch abandoned: nothing more committed to Kafka for it; the Postgres offset covers what was applied',
      );
      if (error.rebalance !== undefined) throw error.rebalance;
    }
  }

  /**
   * A batch that starts beyond Postgres' applied offset, or on a partition whose stored offset belongs to an older
   * log, must not be applied: see OffsetGuard.
   */
  private async checkForGap(scope: BatchScope, delivered: number): Promise<void> {
    const highWatermark = Number(scope.payload.batch.highWatermark);
    const decision = await this.retry.run(scope, 'postgres', () =>
      this.guard.checkBatch(scope.topic, scope.partition, delivered, highWatermark),
    );
    if (decision.action === 'rewind')
      throw new RewindRequiredError(scope.topic, scope.partition, decision.offset, delivered);
    if (decision.action === 'hold') throw new PartitionHeldError(scope.topic, scope.partition, decision.finding);
  }

  private async applyChunk(scope: BatchScope, messages: KafkaMessage[], lastChunk: boolean): Promise<void> {
    const started = performance.now();
    const lastMessageOffset = Number(messages.at(-1)?.offset);
    const end = (lastChunk ? Math.max(lastMessageOffset, scope.lastOffset) : lastMessageOffset) + 1;

    const floor =
      (await this.retry.run(scope, 'postgres', () => this.offsets.next(this.groupId, scope.topic, scope.partition))) ??
      0;
    const valid: DecodedRecord[] = [];
    const invalid: DeadLetter[] = [];
    const skipped: CounterIncrement[] = [];
    let skippedCount = 0;
    let skippedEvents = 0;
    const traceparents: (string | undefined)[] = [];
    for (const message of messages) {
      const offset = Number(message.offset);
      const decoded = decodeRecord(message.value, headerValue(message, TRACEPARENT_HEADER));
      if (decoded.ok) for (const e of decoded.events) traceparents.push(e.traceparent);
      if (offset < floor) {
        skippedCount++;
        if (!decoded.ok) continue;
        skippedEvents += decoded.events.length;
        // Applied before: its ids may still be pending in the view if that consumer died before reconciling.
        for (const { event } of decoded.events)
          if (event.type === 'counter.incremented') skipped.push(toIncrement(event));
      } else if (decoded.ok) {
        valid.push({ offset, message, events: decoded.events });
      } else {
        invalid.push({
          message,
          topic: scope.topic,
          partition: scope.partition,
          errorClass: 'invalid-event',
          reason: decoded.reason,
          attempts: 1,
          firstFailedAt: Date.now(),
        });
      }
    }

    let outcome = emptyOutcome();
    if (invalid.length > 0) {
      await this.retry.run(scope, 'kafka', () => this.deadLetters.send(invalid), { retryAll: true });
      outcome.deadLettered.push(...invalid);
    }
    if (skippedCount < messages.length) {
      outcome = merge(outcome, await this.applyOrSplit(scope, valid, end, new Map()));
    }

    // Post-commit. Redis first, then Kafka: if the process dies in between, Kafka redelivers the chunk, its
    // messages are skipped (below the Postgres offset) but still reconciled, so the view never keeps applied
    // ids in `pending` under a base that already counts them (a double count). Redis failures do not block.
    await this.viewSync.afterCommit({
      increments: [...outcome.increments, ...skipped],
      changed: [...outcome.changed.values()],
      actors: outcome.actors,
      dropped: outcome.dropped,
    });
    // A revoked partition gets no Kafka commit from here (its new owner commits); Postgres has it.
    const stale = scope.isStale();
    const rebalance = stale ? undefined : await this.commitToKafka(scope, lastMessageOffset, end);

    const seconds = (performance.now() - started) / 1000;
    const events = traceparents.length + invalid.length;
    this.record(scope, { events, skipped: skippedEvents, traceparents }, outcome, seconds);
    if (stale) throw new BatchAbandonedError('stale');
    if (rebalance !== undefined) throw new BatchAbandonedError('rebalancing', rebalance);
  }

  /**
   * Applies `records` and moves the stored offset to `end` in one transaction. When Postgres rejects a record for
   * good, the range is halved and each half applied on its own (the left one up to the right one's first offset),
   * down to the single bad record, which is dead-lettered before the offset moves past it.
   *
   * A failure Postgres reports about the statement that repeats CONSUMER_RETRY_MAX_ATTEMPTS times in a row is split
   * the same way. Once a split is under way (`splitting`), a half is tried once before it is split further (splitting
   * is harmless: each part commits on its own), and a single record gets the full number of attempts again before it
   * is dead-lettered, so that a failure that only happened to recur on the whole chunk spares it.
   */
  private async applyOrSplit(
    scope: BatchScope,
    records: DecodedRecord[],
    end: number,
    attempts: Map<number, number>,
    firstFailedAt?: number,
  ): Promise<Outcome> {
    const splitting = firstFailedAt !== undefined;
    const maxStatementAttempts = splitting && records.length > 1 ? 1 : this.maxStatementAttempts;
    try {
      return await this.retry.run(
        scope,
        'postgres',
        () => {
          for (const r of records) attempts.set(r.offset, (attempts.get(r.offset) ?? 0) + 1);
          return this.transaction(scope, records, end);
        },
        { maxStatementAttempts },
      );
    } catch (error) {
      const classification = classifyError(error);
      if (error instanceof BatchAbandonedError || classification.kind !== 'permanent' || records.length === 0) {
        throw error;
      }
      const failedAt = firstFailedAt ?? Date.now();
      const [bad] = records;
      if (records.length === 1 && bad) {
        const letter: DeadLetter = {
          message: bad.message,
          topic: scope.topic,
          partition: scope.partition,
          errorClass: classification.errorClass,
          reason: error instanceof Error ? error.message : String(error),
          attempts: attempts.get(bad.offset) ?? 1,
          firstFailedAt: failedAt,
        };
        if (classification.code !== undefined) letter.errorCode = classification.code;
        await this.retry.run(scope, 'kafka', () => this.deadLetters.send([letter]), { retryAll: true });
        const rest = await this.retry.run(scope, 'postgres', () => this.transaction(scope, [], end), {
          retryAll: true,
        });
        rest.deadLettered.push(letter);
        for (const { event } of bad.events)
          if (event.type === 'counter.incremented') rest.dropped.push(toIncrement(event));
        return rest;
      }
      const middle = Math.ceil(records.length / 2);
      const left = records.slice(0, middle);
      const right = records.slice(middle);
      const leftEnd = right[0]?.offset ?? end;
      // A split of a large chunk is many transactions: stay in the group, and stop when the batch is given up.
      await this.retry.keepAlive(scope);
      const leftOutcome = await this.applyOrSplit(scope, left, leftEnd, attempts, failedAt);
      await this.retry.keepAlive(scope);
      return merge(leftOutcome, await this.applyOrSplit(scope, right, end, attempts, failedAt));
    }
  }

  private async transaction(scope: BatchScope, records: DecodedRecord[], end: number): Promise<Outcome> {
    const increments: CounterIncrement[] = [];
    const activities: ActivityRecord[] = [];
    const events: ChangeEvent[] = [];
    for (const record of records) for (const { event } of record.events) events.push(event);
    for (const event of events) {
      switch (event.type) {
        case 'counter.incremented':
          increments.push(toIncrement(event));
          break;
        case 'activity.recorded':
          activities.push({
            id: event.id,
            actor: event.key,
            verb: event.verb,
            object: event.object,
            occurredAt: event.occurredAt,
            data: event.data,
            acceptedAt: event.ts,
          });
          break;
      }
    }
    const { counters, inserted } = await this.database.db.tx(async (t) => {
      const counters = await this.counters.applyIncrements(t, increments, 'consumer');
      const inserted = await this.activities.insert(t, activities);
      await this.offsets.advance(t, this.groupId, scope.topic, scope.partition, end);
      return { counters, inserted };
    });
    const committedAt = Date.now();
    this.metrics.lastCommit.set({ topic: scope.topic, partition: String(scope.partition) }, committedAt / 1000);
    const endToEnd = this.metrics.endToEnd.labels({ topic: scope.topic });
    const applied = counters.appliedIds.length + inserted.length;
    // The end-to-end latency of each event applied now (not of duplicates). When every record was applied (the
    // usual case) no lookup by id is needed: a Map of thousands of ids per chunk was ~5% of the consumer's CPU.
    const appliedNow =
      applied === events.length ? undefined : new Set([...counters.appliedIds, ...inserted.map((a) => a.id)]);
    for (const event of events) {
      // An id twice in the chunk (a duplicate delivery) was applied once and is observed once.
      if (appliedNow === undefined || appliedNow.delete(event.id)) {
        endToEnd.observe(Math.max(0, committedAt - event.ts) / 1000);
      }
    }
    return {
      ...emptyOutcome(),
      increments,
      changed: new Map(counters.changed.map((c) => [c.name, c])),
      applied,
      duplicates: events.length - applied,
      actors: new Set(inserted.map((a) => a.actor)),
    };
  }

  /** Resolves and commits `end` in Kafka, then heartbeats. Returns the error of a rebalance, to rethrow later. */
  private async commitToKafka(scope: BatchScope, lastMessageOffset: number, end: number): Promise<Error | undefined> {
    const { payload } = scope;
    payload.resolveOffset(String(lastMessageOffset));
    try {
      await payload.commitOffsetsIfNecessary({
        topics: [{ topic: scope.topic, partitions: [{ partition: scope.partition, offset: String(end) }] }],
      });
    } catch (error) {
      if (isRebalancing(error)) return error;
      // The next commit carries a later offset, and the Postgres offset makes a redelivery harmless meanwhile.
      this.metrics.kafkaCommitFailures.inc({ topic: scope.topic });
      this.logger.warn({ err: error, topic: scope.topic, partition: scope.partition, end }, 'Kafka commit failed');
    }
    try {
      await payload.heartbeat();
    } catch (error) {
      if (isRebalancing(error)) return error;
      this.logger.debug({ err: error, partition: scope.partitionKey }, 'heartbeat failed');
    }
    return undefined;
  }

  /** Metrics and the one log line of a chunk: `events` counts the events of its records (an envelope holds many). */
  private record(
    scope: BatchScope,
    chunk: { events: number; skipped: number; traceparents: (string | undefined)[] },
    outcome: Outcome,
    seconds: number,
  ): void {
    const topic = scope.topic;
    const { events, skipped } = chunk;
    this.metrics.batchEvents.observe({ topic }, events);
    this.metrics.batchDuration.observe({ topic }, seconds);
    if (outcome.applied > 0) this.metrics.applied.inc({ topic }, outcome.applied);
    if (skipped > 0) this.metrics.deduplicated.inc({ topic, reason: 'offset' }, skipped);
    if (outcome.duplicates > 0) this.metrics.deduplicated.inc({ topic, reason: 'id' }, outcome.duplicates);
    for (const letter of outcome.deadLettered) this.metrics.deadLetter(topic, letter.errorClass);
    const line = {
      topic,
      partition: scope.partition,
      events,
      applied: outcome.applied,
      duplicates: outcome.duplicates,
      skipped,
      deadLettered: outcome.deadLettered.length,
      ms: Math.round(seconds * 1000),
      // The W3C traces of the batch's events (from the HTTP requests that accepted them): follow a write here.
      ...summarizeTraces(chunk.traceparents),
    };
    // One line per batch (one Postgres transaction), never one per event.
    if (outcome.deadLettered.length > 0) {
      this.logger.info(
        {
          ...line,
          deadLetters: outcome.deadLettered.map((l) => ({ offset: l.message.offset, errorClass: l.errorClass })),
        },
        'batch applied with dead letters',
      );
    } else {
      this.logger.info(line, 'batch applied');
    }
  }
}

/** A Kafka header's value as text (kafkajs gives Buffers, or an array for a repeated header: the first counts). */
function headerValue(message: KafkaMessage, name: string): string | undefined {
  const raw = message.headers?.[name];
  const value = Array.isArray(raw) ? raw[0] : raw;
  return value === undefined ? undefined : value.toString();
}

function toIncrement(event: Extract<ChangeEvent, { type: 'counter.incremented' }>): CounterIncrement {
  return { eventId: event.id, name: event.key, by: event.by };
}
