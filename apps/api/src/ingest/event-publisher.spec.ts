import type { AppConfig } from '@app/config';
import { decodeRecord } from '@app/events';
import type { KafkaProducer, TopicPartitions } from '@app/kafka';
import type { TopicMessages } from 'kafkajs';
import type { PinoLogger } from 'nestjs-pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiMetrics } from './api.metrics.js';
import { EventPublisher, type OutgoingMessage } from './event-publisher.js';
import { KafkaUnavailableError, PublishQueueFullError } from './kafka-unavailable.error.js';

/** Stands in for Kafka: records each request, answers when the test says so. */
class FakeProducer {
  readonly requests: TopicMessages[][] = [];
  private pending: { resolve: () => void; reject: (e: Error) => void }[] = [];
  failWith: Error | undefined;

  sendBatch(topicMessages: TopicMessages[]): Promise<unknown> {
    this.requests.push(topicMessages);
    if (this.failWith) return Promise.reject(this.failWith);
    return new Promise((resolve, reject) => this.pending.push({ resolve: () => resolve([]), reject }));
  }

  ackAll(): void {
    for (const p of this.pending.splice(0)) p.resolve();
  }

  async connect(): Promise<void> {}
  reset(): void {}
}

const quiet = { setContext() {}, info() {}, warn() {}, debug() {}, error() {} } as unknown as PinoLogger;
const body = (i: number) => `{"id":"e${i}","type":"counter.incremented","key":"k${i}","ts":1,"by":${i + 1}}`;
const message = (i: number): OutgoingMessage => ({ topic: 't', key: `k${i}`, body: body(i) });
/** Partitions as the brokers would give them: unknown (kafkajs places each record), or by the key's number. */
const partitionsBy = (count: number | undefined) =>
  ({
    partitionOf: (_topic: string, key: string) => (count === undefined ? undefined : Number(key.slice(1)) % count),
  }) as unknown as TopicPartitions;
const tick = () => new Promise((r) => setImmediate(r));

function makePublisher(overrides: Partial<AppConfig['api']['produce']> = {}, partitions?: number) {
  const producer = new FakeProducer();
  const config = {
    api: {
      maxInFlight: 100,
      produce: {
        lingerMs: 5,
        maxBatchEvents: 100,
        maxBatchBytes: 1024 * 1024,
        maxQueuedEvents: 1000,
        timeoutMs: 2000,
        breakerResetMs: 60_000,
        ...overrides,
      },
    },
  } as unknown as AppConfig;
  const metrics = new ApiMetrics({ registry: new Registry() }, config);
  const p = new EventPublisher(producer as unknown as KafkaProducer, partitionsBy(partitions), config, metrics, quiet);
  made.push(p);
  return { publisher: p, producer };
}
const made: EventPublisher[] = [];
afterEach(async () => {
  await Promise.all(made.splice(0).map((p) => p.onApplicationShutdown()));
});

describe('EventPublisher', () => {
  it('gathers concurrent publishes into one Kafka request', async () => {
    const { publisher, producer } = makePublisher();
    const done = Array.from({ length: 30 }, (_, i) => publisher.publish([message(i)]));
    await new Promise((r) => setTimeout(r, 20));
    expect(producer.requests).toHaveLength(1);
    expect(producer.requests[0]?.[0]?.messages).toHaveLength(30);
    producer.ackAll();
    await Promise.all(done);
  });

  it('sends a lone event as a v1 record with its traceparent header, placed by kafkajs while partitions are unknown', async () => {
    const { publisher, producer } = makePublisher({ lingerMs: 0 });
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const done = publisher.publish([{ ...message(1), traceparent }, message(2)]);
    await tick();
    expect(producer.requests[0]?.[0]?.messages).toEqual([
      { key: 'k1', value: `{"v":1,${body(1).slice(1)}`, headers: { traceparent } },
      { key: 'k2', value: `{"v":1,${body(2).slice(1)}` },
    ]);
    producer.ackAll();
    await done;
  });

  it('packs the events of one partition into one envelope record, each with its own trace, in its partition', async () => {
    const { publisher, producer } = makePublisher({ lingerMs: 5 }, 3);
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    // Keys k0..k9 over 3 partitions: 4, 3 and 3 events; k10 alone would share partition 1, so it is left out.
    const done = Array.from({ length: 10 }, (_, i) => publisher.publish([{ ...message(i), traceparent }]));
    await new Promise((r) => setTimeout(r, 20));
    const records = producer.requests[0]?.[0]?.messages ?? [];
    expect(records.map((r) => r.partition)).toEqual([0, 1, 2]);
    const decoded = records.map((r) => decodeRecord(String(r.value)));
    expect(decoded.map((d) => (d.ok ? d.events.map((e) => e.event.id) : d.reason))).toEqual([
      ['e0', 'e3', 'e6', 'e9'],
      ['e1', 'e4', 'e7'],
      ['e2', 'e5', 'e8'],
    ]);
    expect(decoded.every((d) => d.ok && d.events.every((e) => e.traceparent === traceparent))).toBe(true);
    // The record's key is one of its events' keys: a redrive of it lands in the same partition.
    expect(records.map((r) => r.key)).toEqual(['k0', 'k1', 'k2']);
    producer.ackAll();
    await Promise.all(done);
  });

  it('splits at the event bound and gathers the next batch while one is in flight', async () => {
    const { publisher, producer } = makePublisher({ maxBatchEvents: 10, lingerMs: 0 });
    const first = Array.from({ length: 25 }, (_, i) => publisher.publish([message(i)]));
    await tick();
    expect(producer.requests).toHaveLength(1);
    expect(producer.requests[0]?.[0]?.messages).toHaveLength(10);
    producer.ackAll();
    await tick();
    await tick();
    expect(producer.requests).toHaveLength(2);
    producer.ackAll();
    await tick();
    await tick();
    producer.ackAll();
    await Promise.all(first);
    expect(producer.requests.map((r) => r[0]?.messages.length)).toEqual([10, 10, 5]);
  });

  it('refuses at once past the queue bound', async () => {
    const { publisher, producer } = makePublisher({ maxQueuedEvents: 5, lingerMs: 1000 });
    const accepted = publisher.publish([message(1), message(2), message(3), message(4)]);
    await expect(publisher.publish([message(5), message(6)])).rejects.toBeInstanceOf(PublishQueueFullError);
    await publisher.onApplicationShutdown();
    void accepted.catch(() => undefined);
    expect(producer.requests).toHaveLength(0);
  });

  it('fails a queued publish at its deadline and never sends it later', async () => {
    const { publisher, producer } = makePublisher({ timeoutMs: 30, lingerMs: 0 });
    const stuck = publisher.publish([message(1)]); // in flight, never acknowledged
    await tick();
    const queued = publisher.publish([message(2)]);
    const [a, b] = await Promise.allSettled([stuck, queued]);
    expect(a.status === 'rejected' && a.reason instanceof KafkaUnavailableError).toBe(true);
    expect(b.status === 'rejected' && b.reason instanceof KafkaUnavailableError).toBe(true);
    producer.ackAll();
    await new Promise((r) => setTimeout(r, 20));
    expect(producer.requests.flatMap((r) => r.flatMap((t) => t.messages.map((m) => String(m.key))))).toEqual(['k1']);
  });

  it('opens the circuit after repeated failures: no more Kafka requests, writers told at once', async () => {
    const { publisher, producer } = makePublisher({ lingerMs: 0 });
    producer.failWith = new Error('broker down');
    for (let i = 0; i < 3; i++)
      await expect(publisher.publish([message(i)])).rejects.toBeInstanceOf(KafkaUnavailableError);
    expect(publisher.available).toBe(false);
    const sent = producer.requests.length;
    await expect(publisher.publish([message(9)])).rejects.toBeInstanceOf(KafkaUnavailableError);
    expect(producer.requests.length).toBe(sent);
  });
});
