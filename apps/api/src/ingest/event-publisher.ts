import { Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { KafkaProducer } from '@app/kafka';
import CircuitBreaker from 'opossum';
import type { TopicMessages } from 'kafkajs';
import { PinoLogger } from 'nestjs-pino';
import { ApiMetrics } from './api.metrics.js';
import { KafkaUnavailableError, PublishQueueFullError } from './kafka-unavailable.error.js';

export interface OutgoingMessage {
  topic: string;
  key: string;
  value: Buffer | string;
  /** Kafka headers, e.g. the W3C `traceparent` of the request that accepted the event. */
  headers?: Record<string, string> | undefined;
}

interface Waiting {
  messages: OutgoingMessage[];
  bytes: number;
  resolve: () => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
  /** performance.now() when it was queued: the linger counts from the oldest waiting entry. */
  queuedAt: number;
}

/**
 * Publishes change events to Kafka, batching across HTTP requests: kafkajs sends one request per `send`, so
 * events from concurrent requests are gathered for up to API_PRODUCE_LINGER_MS (or until the count or byte
 * bound) and sent in one acks=all request. One request is in flight at a time; while it runs, the next batch
 * gathers, so batches grow with load, and goes as soon as that request is answered (the linger applies only to
 * a publisher that was idle).
 *
 * Memory is bounded: at most API_PRODUCE_MAX_QUEUED_EVENTS wait (past it, `publish` fails at once), and each
 * waits at most API_PRODUCE_TIMEOUT_MS. A circuit breaker (opossum) opens after repeated failures or
 * timeouts; while it is open `available` is false and writers go straight to write-through; after
 * API_BREAKER_RESET_MS one batch tries Kafka again (half-open) and closes the circuit if it succeeds.
 */
@Injectable()
export class EventPublisher implements OnModuleInit, OnApplicationShutdown {
  private readonly breaker: CircuitBreaker<[TopicMessages[]], unknown>;
  private queue: Waiting[] = [];
  private queuedEvents = 0;
  private queuedBytes = 0;
  private sending = false;
  private lingerTimer: NodeJS.Timeout | undefined;
  /** performance.now() when the last Kafka request was answered (or failed). */
  private lastSendEndedAt = -Infinity;
  /** The last kafkajs send, which may outlive its timeout: the next waits for it, so sends never pile up. */
  private lastSend: Promise<unknown> = Promise.resolve();
  private readonly settings: AppConfig['api']['produce'];

  constructor(
    private readonly producer: KafkaProducer,
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
      const waiting: Waiting = {
        messages,
        bytes: messages.reduce((sum, m) => sum + m.value.length + m.key.length + headerBytes(m.headers), 0),
        resolve,
        reject,
        // Still queued at the deadline (a stuck send ahead of it): give up on Kafka, never send it later.
        timer: setTimeout(() => this.expire(waiting), this.settings.timeoutMs),
        queuedAt: performance.now(),
      };
      this.queue.push(waiting);
      this.queuedEvents += messages.length;
      this.queuedBytes += waiting.bytes;
      this.metrics.produceQueued.set(this.queuedEvents);
      this.schedule();
    });
  }

  private expire(waiting: Waiting): void {
    const index = this.queue.indexOf(waiting);
    if (index < 0) return;
    this.queue.splice(index, 1);
    this.dequeued([waiting]);
    waiting.reject(new KafkaUnavailableError(`not sent to Kafka within ${this.settings.timeoutMs} ms`, false));
  }

  private dequeued(entries: Waiting[]): void {
    for (const e of entries) {
      this.queuedEvents -= e.messages.length;
      this.queuedBytes -= e.bytes;
    }
    this.metrics.produceQueued.set(this.queuedEvents);
  }

  private schedule(): void {
    if (this.sending || this.queue.length === 0) return;
    const full = this.queuedEvents >= this.settings.maxBatchEvents || this.queuedBytes >= this.settings.maxBatchBytes;
    // Lingering is for an idle publisher: it lets the first events after a quiet spell gather company. A busy one
    // (a request answered less than a linger ago) sends at once what gathered while that request was in flight and
    // in the same turn of the event loop: the batch grows with the load and the time Kafka takes, and no timer
    // stands between two requests. Lingering after every request capped a busy process at one request per
    // (linger + send time): 0.2x the throughput of a plain loop of the same batches (bench/producer.bench.ts).
    // The linger counts from the oldest waiting entry, as Kafka's linger.ms does.
    const now = performance.now();
    const busy = now - this.lastSendEndedAt < this.settings.lingerMs;
    const waited = now - (this.queue[0]?.queuedAt ?? now);
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
    if (this.sending || this.queue.length === 0) return;
    this.sending = true;
    const batch: Waiting[] = [];
    try {
      await this.lastSend;
      let events = 0;
      let bytes = 0;
      while (this.queue.length > 0) {
        const next = this.queue[0];
        if (next === undefined) break;
        const fits =
          batch.length === 0 ||
          (events + next.messages.length <= this.settings.maxBatchEvents &&
            bytes + next.bytes <= this.settings.maxBatchBytes);
        if (!fits) break;
        this.queue.shift();
        clearTimeout(next.timer);
        batch.push(next);
        events += next.messages.length;
        bytes += next.bytes;
      }
      this.dequeued(batch);
      if (batch.length === 0) return;
      await this.send(batch, events);
    } finally {
      this.sending = false;
      if (batch.length > 0) this.lastSendEndedAt = performance.now();
      if (this.queue.length > 0) setImmediate(() => this.schedule());
    }
  }

  private async send(batch: Waiting[], events: number): Promise<void> {
    const byTopic = new Map<string, { key: string; value: Buffer | string; headers?: Record<string, string> }[]>();
    for (const entry of batch) {
      for (const m of entry.messages) {
        const list = byTopic.get(m.topic) ?? [];
        list.push(m.headers ? { key: m.key, value: m.value, headers: m.headers } : { key: m.key, value: m.value });
        byTopic.set(m.topic, list);
      }
    }
    const started = performance.now();
    this.metrics.produceBatchEvents.observe(events);
    try {
      await this.breaker.fire([...byTopic].map(([topic, messages]) => ({ topic, messages })));
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

  async onApplicationShutdown(): Promise<void> {
    // The HTTP server has drained: nothing is queued any more. Stop the breaker's timers.
    this.breaker.shutdown();
  }
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

function headerBytes(headers: Record<string, string> | undefined): number {
  if (!headers) return 0;
  let bytes = 0;
  for (const [name, value] of Object.entries(headers)) bytes += name.length + value.length;
  return bytes;
}
