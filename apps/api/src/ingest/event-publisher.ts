import { Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { envelopeRecord, singleRecord } from '@app/events';
import { KafkaProducer, TopicPartitions } from '@app/kafka';
import { TRACEPARENT_HEADER } from '@app/platform';
import CircuitBreaker from 'opossum';
import type { Message, TopicMessages } from 'kafkajs';
import { PinoLogger } from 'nestjs-pino';
import { ApiMetrics } from './api.metrics.js';
import { KafkaUnavailableError, PublishQueueFullError } from './kafka-unavailable.error.js';

/** An event to publish: its topic and key (the partition), its JSON without `v` (eventBody), its request's trace. */
export interface OutgoingMessage {
  topic: string;
  key: string;
  body: string;
  /** The W3C traceparent of the request that accepted the event. */
  traceparent?: string | undefined;
}

interface Waiting {
  messages: OutgoingMessage[];
  bytes: number;
  resolve: () => void;
  reject: (error: Error) => void;
  /** performance.now() when it was queued: the linger and the deadline count from here. */
  queuedAt: number;
}

/**
 * Publishes change events to Kafka, batching across HTTP requests: kafkajs sends one request per `send`, so events
 * from concurrent requests are gathered for up to API_PRODUCE_LINGER_MS (or until the count or byte bound) and sent
 * in one acks=all request. One request is in flight at a time; while it runs, the next batch gathers, so batches
 * grow with load, and goes as soon as that request is answered (the linger applies only to a publisher that was
 * idle). In a request, the events of one partition travel as one record (format v2, an envelope; a lone event as a
 * plain v1 record): kafkajs encodes every record in JavaScript, and that per-record cost dominated the ingest of
 * batches.
 *
 * Memory is bounded: at most API_PRODUCE_MAX_QUEUED_EVENTS wait (past it, `publish` fails at once), and each waits
 * at most API_PRODUCE_TIMEOUT_MS. A circuit breaker (opossum) opens after repeated failures or timeouts; while it is
 * open `available` is false and writers go straight to write-through; after API_BREAKER_RESET_MS one batch tries
 * Kafka again (half-open) and closes the circuit if it succeeds.
 */
@Injectable()
export class EventPublisher implements OnModuleInit, OnApplicationShutdown {
  private readonly breaker: CircuitBreaker<[TopicMessages[]], unknown>;
  /**
   * The waiting entries, oldest first, from `head` on (an index rather than Array.shift, which is O(n)). A taken
   * entry's slot is emptied at once: a slot kept until the next compaction held its events (a batch request's
   * hundreds) after they were answered, and 1,024 of them ran a 96 MiB heap out of memory.
   */
  private queue: (Waiting | undefined)[] = [];
  private head = 0;
  private queuedEvents = 0;
  private queuedBytes = 0;
  private sending = false;
  private lingerTimer: NodeJS.Timeout | undefined;
  /** One timer for the oldest entry's deadline: every entry has the same timeout, so they expire in queue order. */
  private expiryTimer: NodeJS.Timeout | undefined;
  /** performance.now() when the last Kafka request was answered (or failed). */
  private lastSendEndedAt = -Infinity;
  /** The last kafkajs send, which may outlive its timeout: the next waits for it, so sends never pile up. */
  private lastSend: Promise<unknown> = Promise.resolve();
  private readonly settings: AppConfig['api']['produce'];

  constructor(
    private readonly producer: KafkaProducer,
    private readonly partitions: TopicPartitions,
    config: AppConfig,
    private readonly metrics: ApiMetrics,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext('EventPublisher');
    this.settings = config.api.produce;
    this.breaker = new CircuitBreaker(
      (topicMessages: TopicMessages[]) => {
        const send = this.producer.sendBatch(topicMessages, this.settings.timeoutMs);
        this.lastSend = send.catch(() => undefined);
        return send;
      },
      {
        timeout: this.settings.timeoutMs,
        resetTimeout: this.settings.breakerResetMs,
        errorThresholdPercentage: 50,
        volumeThreshold: 3,
        rollingCountTimeout: 10_000,
      },
    );
    let wasClosed = true;
    this.breaker.on('open', () => {
      this.metrics.breakerState.set(2);
      // A producer that saw the broker go away may never recover (tulios/kafkajs#919): start a fresh one,
      // once per outage (not on every failed half-open trial).
      if (wasClosed) {
        this.logger.warn('kafka circuit open: writes fall back to write-through');
        this.producer.reset();
      }
      wasClosed = false;
    });
    this.breaker.on('halfOpen', () => {
      this.metrics.breakerState.set(1);
      this.logger.info('kafka circuit half-open: trying Kafka again');
    });
    this.breaker.on('close', () => {
      wasClosed = true;
      this.metrics.breakerState.set(0);
      this.logger.info('kafka circuit closed: writes go to Kafka again');
    });
    this.metrics.breakerState.set(0);
    this.metrics.produceQueued(() => this.queuedEvents);
  }

  onModuleInit(): void {
    this.producer.connect().catch((error: unknown) => this.logger.warn({ err: error }, 'kafka not reachable at boot'));
  }

  /** False while the circuit is open: do not even try, write through. */
  get available(): boolean {
    return !this.breaker.opened;
  }

  /** Resolves when Kafka acknowledged every message (acks=all); rejects with KafkaUnavailableError otherwise. */
  publish(messages: OutgoingMessage[]): Promise<void> {
    if (this.breaker.opened) return Promise.reject(new KafkaUnavailableError('kafka circuit is open', false));
    if (this.queuedEvents + messages.length > this.settings.maxQueuedEvents) {
      return Promise.reject(new PublishQueueFullError(`${this.queuedEvents} events already wait for Kafka`));
    }
    return new Promise<void>((resolve, reject) => {
      let bytes = 0;
      for (const m of messages) bytes += m.body.length + m.key.length + (m.traceparent?.length ?? 0);
      this.queue.push({ messages, bytes, resolve, reject, queuedAt: performance.now() });
      this.queuedEvents += messages.length;
      this.queuedBytes += bytes;
      this.expiryTimer ??= setTimeout(() => this.expire(), this.settings.timeoutMs);
      this.schedule();
    });
  }

  private get waiting(): number {
    return this.queue.length - this.head;
  }

  /**
   * Entries still queued at their deadline (a stuck send ahead of them): Kafka is given up on, and they are never
   * sent later. Then the timer is set again for the oldest entry left.
   */
  private expire(): void {
    this.expiryTimer = undefined;
    const now = performance.now();
    const expired = this.take((entry) => now - entry.queuedAt >= this.settings.timeoutMs);
    const error = new KafkaUnavailableError(`not sent to Kafka within ${this.settings.timeoutMs} ms`, false);
    for (const entry of expired) entry.reject(error);
    this.armExpiry(now);
  }

  private armExpiry(now = performance.now()): void {
    const oldest = this.queue[this.head];
    if (oldest === undefined || this.expiryTimer !== undefined) return;
    this.expiryTimer = setTimeout(() => this.expire(), Math.max(1, oldest.queuedAt + this.settings.timeoutMs - now));
  }

  /** Takes entries from the head of the queue while `more` says so. */
  private take(more: (next: Waiting, taken: Waiting[]) => boolean): Waiting[] {
    const taken: Waiting[] = [];
    for (let next = this.queue[this.head]; next !== undefined && more(next, taken); next = this.queue[this.head]) {
      taken.push(next);
      this.queue[this.head] = undefined;
      this.head += 1;
      this.queuedEvents -= next.messages.length;
      this.queuedBytes -= next.bytes;
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    if (this.waiting === 0 && this.expiryTimer !== undefined) {
      clearTimeout(this.expiryTimer);
      this.expiryTimer = undefined;
    }
    return taken;
  }

  private schedule(): void {
    if (this.sending || this.waiting === 0) return;
    const full = this.queuedEvents >= this.settings.maxBatchEvents || this.queuedBytes >= this.settings.maxBatchBytes;
    // Lingering is for an idle publisher: it lets the first events after a quiet spell gather company. A busy one
    // (a request answered less than a linger ago) sends at once what gathered while that request was in flight and
    // in the same turn of the event loop: the batch grows with the load and the time Kafka takes, and no timer
    // stands between two requests. Lingering after every request capped a busy process at one request per
    // (linger + send time): 0.2x the throughput of a plain loop of the same batches (bench/producer.bench.ts).
    // The linger counts from the oldest waiting entry, as Kafka's linger.ms does.
    const now = performance.now();
    const busy = now - this.lastSendEndedAt < this.settings.lingerMs;
    const waited = now - (this.queue[this.head]?.queuedAt ?? now);
    if (full || busy || waited >= this.settings.lingerMs) {
      this.flushSoon();
    } else {
      this.lingerTimer ??= setTimeout(() => this.flushSoon(), this.settings.lingerMs - waited);
    }
  }

  private flushSoon(): void {
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    this.flush().catch((error: unknown) => this.logger.error({ err: error }, 'publish loop failed'));
  }

  private async flush(): Promise<void> {
    if (this.sending || this.waiting === 0) return;
    this.sending = true;
    let batch: Waiting[] = [];
    try {
      await this.lastSend;
      let events = 0;
      let bytes = 0;
      batch = this.take((next, taken) => {
        const fits =
          taken.length === 0 ||
          (events + next.messages.length <= this.settings.maxBatchEvents &&
            bytes + next.bytes <= this.settings.maxBatchBytes);
        if (fits) {
          events += next.messages.length;
          bytes += next.bytes;
        }
        return fits;
      });
      if (batch.length > 0) await this.send(batch, events);
    } finally {
      this.sending = false;
      if (batch.length > 0) this.lastSendEndedAt = performance.now();
      if (this.waiting > 0) setImmediate(() => this.schedule());
    }
  }

  private async send(batch: Waiting[], events: number): Promise<void> {
    const started = performance.now();
    this.metrics.produceBatchEvents.observe(events);
    try {
      await this.breaker.fire(this.records(batch));
      this.metrics.produceSeconds.observe({ outcome: 'ok' }, (performance.now() - started) / 1000);
      for (const entry of batch) entry.resolve();
    } catch (error) {
      this.metrics.produceSeconds.observe({ outcome: 'failed' }, (performance.now() - started) / 1000);
      this.logger.warn({ err: error, events }, 'kafka produce failed');
      const failure = new KafkaUnavailableError(
        `kafka did not acknowledge: ${(error as Error).message}`,
        mayHaveLanded(error),
        { cause: error },
      );
      for (const entry of batch) entry.reject(failure);
    }
  }

  /**
   * The Kafka records of a batch: per topic and partition, one record. Where a topic's partition count is not known
   * yet, each event goes as its own record and kafkajs places it by its key (the same partition either way).
   */
  private records(batch: Waiting[]): TopicMessages[] {
    const byTopic = new Map<string, { unplaced: Message[]; byPartition: Map<number, OutgoingMessage[]> }>();
    for (const entry of batch) {
      for (const m of entry.messages) {
        let topic = byTopic.get(m.topic);
        if (topic === undefined) byTopic.set(m.topic, (topic = { unplaced: [], byPartition: new Map() }));
        const partition = this.partitions.partitionOf(m.topic, m.key);
        if (partition === undefined) {
          topic.unplaced.push(single(m));
        } else {
          const group = topic.byPartition.get(partition);
          if (group) group.push(m);
          else topic.byPartition.set(partition, [m]);
        }
      }
    }
    return [...byTopic].map(([topic, { unplaced, byPartition }]) => {
      const messages = unplaced;
      for (const [partition, group] of byPartition) {
        const [first] = group;
        if (first === undefined) continue;
        messages.push(
          group.length === 1
            ? { ...single(first), partition }
            : { key: first.key, value: envelopeRecord(group), partition },
        );
      }
      return { topic, messages };
    });
  }

  async onApplicationShutdown(): Promise<void> {
    // The HTTP server has drained: nothing is queued any more. Stop the timers.
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.breaker.shutdown();
  }
}

/** One event as its own record (format v1), its trace in the `traceparent` header. */
function single(m: OutgoingMessage): Message {
  const value = singleRecord(m.body);
  return m.traceparent === undefined
    ? { key: m.key, value }
    : { key: m.key, value, headers: { [TRACEPARENT_HEADER]: m.traceparent } };
}

/**
 * Whether a failed send may still have reached the broker. Only two failures say it did not: the circuit was open
 * (opossum did not call the send), and no connection could be opened (every attempt was refused). A timeout, or an
 * error after the request went out, leaves the outcome unknown.
 */
function mayHaveLanded(error: unknown): boolean {
  if ((error as { code?: unknown }).code === 'EOPENBREAKER') return false;
  let e: unknown = error;
  for (let depth = 0; e instanceof Error && depth < 10; depth++) {
    if (e.name === 'KafkaJSConnectionError' && /ECONNREFUSED/.test(e.message)) return false;
    e = (e as { originalError?: unknown }).originalError ?? e.cause;
  }
  return true;
}
