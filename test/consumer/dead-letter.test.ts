import { randomUUID } from 'node:crypto';
import { encodeEvent } from '@app/events';
import { createTopicsAndWait } from '@app/kafka';
import {
  AppProcess,
  EventLoad,
  TestStack,
  consumerLag,
  readTopic,
  scrapeMetrics,
  waitFor,
  waitForLagZero,
} from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * G5: a record that can never be applied goes to `<topic>.dlq` with its reason and origin in headers, every other
 * record of its batch is applied, and the partition moves on. Each poison batch is produced while the consumer is
 * not running and in one request to partition 0, so that it reaches the consumer as one batch.
 */
describe('poison messages', () => {
  let stack: TestStack;
  let load: EventLoad;
  let consumer: AppProcess;
  const port = () => Number(stack.env['CONSUMER_PORT']);
  const topics = () => [stack.topics.counters, stack.topics.activities];
  const counterBatch = `poison:${randomUUID()}`;
  const hugeCounter = `huge:${randomUUID()}`;
  const actor = `poisoned-${randomUUID()}`;
  let schemaPoisonOffset = -1;
  let dataPoisonOffset = -1;
  const dataPoisonId = randomUUID();

  beforeAll(async () => {
    stack = await TestStack.create();
    load = new EventLoad(stack.kafka, stack.topics);
    await load.connect();

    // 500 counter events, the 251st of which is not an event at all.
    const events = Array.from({ length: 500 }, () => load.counterEvent(counterBatch, 1));
    const messages = events.map((e): { key: string; value: string | Buffer; partition: number } => ({
      key: e.key,
      value: encodeEvent(e),
      partition: 0,
    }));
    messages[250] = { key: counterBatch, value: Buffer.from('{"v":1,"id":"not-an-event","by":'), partition: 0 };
    schemaPoisonOffset = await endOffset(stack.topics.counters, 0);
    schemaPoisonOffset += 250;
    await load.sendRaw([{ topic: stack.topics.counters, messages }]);

    // 500 activities, the 101st of which passes the schema but Postgres refuses: jsonb cannot hold \u0000 (22P05).
    const activities = Array.from({ length: 500 }, (_, i) =>
      i === 100 ? load.activityEvent(actor, dataPoisonId, { note: 'nul \u0000 inside' }) : load.activityEvent(actor),
    );
    dataPoisonOffset = (await endOffset(stack.topics.activities, 0)) + 100;
    await load.sendRaw([
      {
        topic: stack.topics.activities,
        messages: activities.map((e) => ({ key: e.key, value: encodeEvent(e), partition: 0 })),
      },
    ]);

    // A counter that would pass Number.MAX_SAFE_INTEGER: the second increment can never be served exactly.
    const big = 2 ** 52;
    await load.sendRaw([
      {
        topic: stack.topics.counters,
        messages: [load.counterEvent(hugeCounter, big), load.counterEvent(hugeCounter, big)].map((e) => ({
          key: e.key,
          value: encodeEvent(e),
          partition: 1,
        })),
      },
    ]);

    consumer = new AppProcess('consumer', { ...stack.env, CONSUMER_STALL_UNREADY_MS: '1000' });
    await consumer.ready(port());
    await waitForLagZero(stack.kafka, stack.groupId, topics());
  });
  afterAll(async () => {
    await consumer?.stop();
    await load?.disconnect();
    await stack?.dispose();
  });

  async function endOffset(topic: string, partition: number): Promise<number> {
    const admin = stack.kafka.admin();
    await admin.connect();
    try {
      const offsets = await admin.fetchTopicOffsets(topic);
      return Number(offsets.find((o) => o.partition === partition)?.high ?? 0);
    } finally {
      await admin.disconnect();
    }
  }

  it('applies the 499 good counter events and dead-letters the bad one with its headers', async () => {
    const [row] = await stack.query<{ value: string }>('SELECT value FROM counters WHERE name = $1', [counterBatch]);
    expect(Number(row?.value)).toBe(499);

    const letters = (await readTopic(stack.kafka, `${stack.topics.counters}.dlq`)).filter(
      (m) => m.headers['dlq-error-class'] === 'invalid-event',
    );
    expect(letters).toHaveLength(1);
    const [letter] = letters;
    expect(letter?.key).toBe(counterBatch);
    expect(letter?.value?.toString()).toBe('{"v":1,"id":"not-an-event","by":');
    expect(letter?.headers).toMatchObject({
      'dlq-error-class': 'invalid-event',
      'dlq-attempts': '1',
      'dlq-original-topic': stack.topics.counters,
      'dlq-original-partition': '0',
      'dlq-original-offset': String(schemaPoisonOffset),
    });
    expect(letter?.headers['dlq-error-message']).toMatch(/not JSON/);
    expect(Date.parse(letter?.headers['dlq-first-failed-at'] ?? '')).not.toBeNaN();

    // It was one batch: the consumer's line for it counts 500 events, 499 applied, 1 dead letter.
    const lines = consumer.text
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(
      lines.filter((l) => l['msg'] === 'batch applied with dead letters' && l['topic'] === stack.topics.counters),
    ).toContainEqual(expect.objectContaining({ partition: 0, events: 500, applied: 499, deadLettered: 1 }));
  });

  it('splits a batch Postgres refuses, applies the 499 good activities and dead-letters the bad one', async () => {
    const rows = await stack.query<{ id: string }>('SELECT id FROM activities WHERE actor = $1', [actor]);
    expect(rows).toHaveLength(499);
    expect(rows.map((r) => r.id)).not.toContain(dataPoisonId);

    const letters = await readTopic(stack.kafka, `${stack.topics.activities}.dlq`);
    expect(letters).toHaveLength(1);
    const [letter] = letters;
    expect(letter?.key).toBe(actor);
    expect(JSON.parse(letter?.value?.toString() ?? '{}')).toMatchObject({ id: dataPoisonId });
    expect(letter?.headers).toMatchObject({
      'dlq-error-class': 'data-exception',
      'dlq-error-code': '22P05',
      'dlq-original-topic': stack.topics.activities,
      'dlq-original-partition': '0',
      'dlq-original-offset': String(dataPoisonOffset),
    });
    // Tried in the whole batch first, then in ever smaller halves.
    expect(Number(letter?.headers['dlq-attempts'])).toBeGreaterThan(1);
    expect(letter?.headers['dlq-error-message']).toMatch(/unicode|\\u0000/i);
  });

  it('dead-letters the increment that would take a counter past 2^53 and keeps the counter exact', async () => {
    const [row] = await stack.query<{ value: string }>('SELECT value FROM counters WHERE name = $1', [hugeCounter]);
    expect(Number(row?.value)).toBe(2 ** 52);
    const letters = (await readTopic(stack.kafka, `${stack.topics.counters}.dlq`)).filter(
      (m) => m.headers['dlq-error-class'] === 'unrepresentable-value',
    );
    expect(letters.map((l) => l.headers['dlq-original-partition'])).toEqual(['1']);
  });

  it('moves the partitions on: offsets past the poison in Kafka and Postgres, and later events applied', async () => {
    const lags = await consumerLag(stack.kafka, stack.groupId, topics());
    const stored = await stack.query<{ topic: string; partition: number; next_offset: string }>(
      'SELECT topic, partition, next_offset FROM consumer_offsets WHERE group_id = $1 AND partition = 0',
      [stack.groupId],
    );
    for (const topic of topics()) {
      const lag = lags.find((l) => l.topic === topic && l.partition === 0);
      expect(lag?.committed).toBe(lag?.high);
      expect(Number(stored.find((s) => s.topic === topic)?.next_offset)).toBe(lag?.high);
    }

    const later = load.counterEvent(counterBatch, 1000);
    await load.send([later], 0);
    await waitForLagZero(stack.kafka, stack.groupId, topics());
    const [row] = await stack.query<{ value: string }>('SELECT value FROM counters WHERE name = $1', [counterBatch]);
    expect(Number(row?.value)).toBe(1499);

    const metrics = await scrapeMetrics(port());
    expect(metrics.sum('writebehind_consumer_dead_letters_total', { topic: stack.topics.counters })).toBe(2);
    expect(
      metrics.sum('writebehind_consumer_dead_letters_total', {
        topic: stack.topics.activities,
        error_class: 'data-exception',
      }),
    ).toBe(1);
  });

  it('holds the partition until the dead letter is in Kafka, and is not ready meanwhile', async () => {
    const dlq = `${stack.topics.counters}.dlq`;
    const admin = stack.kafka.admin();
    await admin.connect();
    try {
      await admin.deleteTopics({ topics: [dlq] });
      const name = `held:${randomUUID()}`;
      const [first, last] = [load.counterEvent(name, 1), load.counterEvent(name, 10)];
      const firstOffset = await endOffset(stack.topics.counters, 2);
      await load.sendRaw([
        {
          topic: stack.topics.counters,
          messages: [
            { key: name, value: encodeEvent(first), partition: 2 },
            { key: name, value: Buffer.from('not json'), partition: 2 },
            { key: name, value: encodeEvent(last), partition: 2 },
          ],
        },
      ]);

      // The dead letter cannot be written: the batch is retried, never applied past the poison, and readiness says so.
      const down = await waitFor(
        async () => {
          const response = await fetch(`http://127.0.0.1:${port()}/health/ready`);
          const body = (await response.json()) as { error?: { kafka?: { message?: string } } };
          return response.status === 503 && body.error?.kafka?.message?.includes('retrying') ? body : undefined;
        },
        { timeoutMs: 60_000, description: 'readiness false while the dead letter cannot be written' },
      );
      expect(down.error?.kafka?.message).toMatch(/retrying a transient failure/);
      const held = await stack.query<{ next_offset: string }>(
        'SELECT next_offset FROM consumer_offsets WHERE group_id = $1 AND topic = $2 AND partition = 2',
        [stack.groupId, stack.topics.counters],
      );
      expect(Number(held[0]?.next_offset ?? 0)).toBeLessThanOrEqual(firstOffset);
      expect(await stack.query('SELECT 1 FROM counters WHERE name = $1', [name])).toEqual([]);
      expect(
        (await scrapeMetrics(port())).sum('writebehind_consumer_retries_total', { dependency: 'kafka' }),
      ).toBeGreaterThan(0);

      await waitFor(
        async () => {
          await createTopicsAndWait(admin, [{ topic: dlq, numPartitions: 3 }]);
          return (await admin.listTopics()).includes(dlq);
        },
        { timeoutMs: 60_000, description: 'the dead-letter topic back' },
      );
      await waitForLagZero(stack.kafka, stack.groupId, topics());
      const [row] = await stack.query<{ value: string }>('SELECT value FROM counters WHERE name = $1', [name]);
      expect(Number(row?.value)).toBe(11);
      const letters = await readTopic(stack.kafka, dlq);
      expect(letters.map((l) => l.headers['dlq-original-offset'])).toEqual([String(firstOffset + 1)]);
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port()}/health/ready`)).status === 200, {
        description: 'ready again',
      });
    } finally {
      await admin.disconnect();
    }
  });
});
